package io.stint.android

import android.app.Activity
import android.app.Application
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import io.stint.Stint
import io.stint.StintLogLevel

/**
 * Follows the app's foreground and background from its activities, as androidx's
 * `ProcessLifecycleOwner` does, without androidx:
 * - foreground: the first activity started (the started count goes from 0 to 1) calls
 *   `Stint.openSession()`;
 * - background: the started count reaching 0 and staying there for [backgroundDelayMillis]
 *   calls `Stint.closeSession()` and `Stint.requestImmediateDataFlush()`. A rotation, which
 *   stops and restarts the activity within the delay, closes nothing.
 *
 * Registered by [StintAndroid.start]; an app that initialises Stint itself may register one with
 * `Application.registerActivityLifecycleCallbacks`. Never throws from a callback: Stint's calls
 * return their failure (reported to the log handler), and anything else is logged.
 *
 * Android calls these on the main thread, and the delay runs on a main-looper [Handler], so the
 * state needs no lock.
 */
class StintActivityLifecycleCallbacks(private val backgroundDelayMillis: Long = 700) :
    Application.ActivityLifecycleCallbacks {

    /** Created on first use: a `Handler(Looper.getMainLooper())` unless one was given. */
    private var handler: Handler? = null

    /** With the [Handler] the background delay is posted to, for tests (or a looper of the app's). */
    constructor(backgroundDelayMillis: Long, handler: Handler) : this(backgroundDelayMillis) {
        this.handler = handler
    }

    init {
        require(backgroundDelayMillis >= 0) { "backgroundDelayMillis must be 0 or more, not $backgroundDelayMillis" }
    }

    private var startedActivities = 0
    private var inForeground = false

    private val goToBackground = Runnable {
        guarded("the background delay") {
            if (startedActivities == 0 && inForeground) {
                inForeground = false
                Stint.closeSession()
                Stint.requestImmediateDataFlush()
            }
        }
    }

    // Parameters are nullable so that Kotlin adds no null check that could throw.
    override fun onActivityStarted(activity: Activity?) = guarded("onActivityStarted") {
        startedActivities++
        if (startedActivities == 1) {
            handler?.removeCallbacks(goToBackground)
            if (!inForeground) {
                inForeground = true
                Stint.openSession()
            }
        }
    }

    override fun onActivityStopped(activity: Activity?) = guarded("onActivityStopped") {
        // A stop without its start (callbacks registered while an activity was started) is ignored.
        if (startedActivities == 0) return@guarded
        startedActivities--
        if (startedActivities == 0) mainHandler().postDelayed(goToBackground, backgroundDelayMillis)
    }

    override fun onActivityCreated(activity: Activity?, savedInstanceState: Bundle?) {}

    override fun onActivityResumed(activity: Activity?) {}

    override fun onActivityPaused(activity: Activity?) {}

    override fun onActivitySaveInstanceState(activity: Activity?, outState: Bundle?) {}

    override fun onActivityDestroyed(activity: Activity?) {}

    /** After a shutdown and a new start: the app may be in the foreground, whose session to reopen. */
    internal fun resumeAfterRestart() = guarded("restart") {
        if (inForeground) Stint.openSession()
    }

    private fun mainHandler(): Handler = handler ?: Handler(Looper.getMainLooper()).also { handler = it }

    private inline fun guarded(what: String, block: () -> Unit) {
        try {
            block()
        } catch (error: Throwable) {
            StintAndroid.logQuietly(StintLogLevel.ERROR, "$what failed: $error")
        }
    }
}
