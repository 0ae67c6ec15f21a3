package io.stint.android

import android.app.Activity
import android.app.Application
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.util.Log
import io.stint.Inbox
import io.stint.Stint
import io.stint.StintLogLevel
import io.stint.StintOptions
import io.stint.StintSessionEvent
import io.stint.StintSessionEvent.Kind
import io.stint.StintStatus
import io.stint.StintTestBase
import io.stint.TestCollector
import io.stint.assertThrowsStatus
import io.stint.stubs.Logcat
import io.stint.stubs.MainThread
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import java.io.File
import java.util.concurrent.TimeUnit

/**
 * io.stint.android driven as Android would drive it, on the JVM against the real libstint: the
 * activity callbacks in the order the platform calls them, the background delay on the stub
 * main looper's virtual clock ([MainThread]), sessions seen by the listener and the collector.
 */
class AndroidLifecycleTest : StintTestBase() {
    /** An app as the platform gives it: its private files directory, and what it registered. */
    class TestApplication(private val files: File) : Application() {
        val registered = ArrayList<ActivityLifecycleCallbacks>()

        override fun getFilesDir(): File = files

        override fun registerActivityLifecycleCallbacks(callback: ActivityLifecycleCallbacks) {
            super.registerActivityLifecycleCallbacks(callback)
            registered.add(callback)
        }

        override fun unregisterActivityLifecycleCallbacks(callback: ActivityLifecycleCallbacks) {
            super.unregisterActivityLifecycleCallbacks(callback)
            registered.remove(callback)
        }
    }

    private lateinit var app: TestApplication
    private lateinit var sessions: Inbox<StintSessionEvent>

    @Before
    fun resetAndroid() {
        MainThread.reset()
        Logcat.clear()
        app = TestApplication(File(temp, "files"))
        sessions = recordSessions()
    }

    /**
     * A 1-second session timeout: a closed session ends (and the listener hears it) a second after
     * closeSession, and never while the app is in the foreground (keepOpenWhileForeground). A day
     * between flushes: what reaches the collector was sent by requestImmediateDataFlush.
     */
    private fun options() = StintOptions(
        sessionTimeoutInSeconds = 1,
        flushIntervalInSeconds = 86400,
        baseUrl = TestCollector.url
    )

    private fun startStint(): Application.ActivityLifecycleCallbacks {
        StintAndroid.start(app, "android-key", options())
        assertEquals("start registers one callbacks object", 1, app.registered.size)
        return app.registered[0]
    }

    // The platform's order of callbacks for an activity coming up and going away.
    private fun Application.ActivityLifecycleCallbacks.show(activity: Activity, saved: Bundle? = null) {
        onActivityCreated(activity, saved)
        onActivityStarted(activity)
        onActivityResumed(activity)
    }

    private fun Application.ActivityLifecycleCallbacks.hide(activity: Activity, destroy: Boolean = false) {
        onActivityPaused(activity)
        onActivityStopped(activity)
        onActivitySaveInstanceState(activity, Bundle())
        if (destroy) onActivityDestroyed(activity)
    }

    /** No session ended within a few seconds: long enough for a 1-second timeout to show. */
    private fun assertNoSessionEnds(why: String) {
        Thread.sleep(TimeUnit.SECONDS.toMillis(3))
        val events = sessions.drain()
        assertTrue("$why: $events", events.none { it.kind == Kind.ENDED })
    }

    @Test
    fun aColdStartOpensASessionInTheAppsFilesDirectory() {
        val callbacks = startStint()
        assertTrue("the data directory defaults to filesDir/stint", File(temp, "files/stint/device_id").isFile)
        assertEquals("no session before an activity starts", null, Stint.sessionId)

        callbacks.show(Activity())
        val started = sessions.next("the session opened by the first activity")
        assertEquals(Kind.STARTED, started.kind)
        assertEquals(started.sessionId, Stint.sessionId)
        assertEquals("nothing is posted while in the foreground", 0, MainThread.pending())
    }

    @Test
    fun aRotationWithinTheDelayClosesNothing() {
        val callbacks = startStint()
        val first = Activity()
        callbacks.show(first)
        val started = sessions.next("the session start")

        // A configuration change: the activity is stopped and destroyed, a new one created and
        // started, all within the delay.
        callbacks.hide(first, destroy = true)
        assertEquals("the background is only pending", 1, MainThread.pending())
        MainThread.advanceBy(300)
        val second = Activity()
        callbacks.show(second, Bundle())
        assertEquals("the restart cancels the pending background", 0, MainThread.pending())
        MainThread.advanceBy(10_000)
        assertNoSessionEnds("the session stays open across a rotation")
        assertEquals(started.sessionId, Stint.sessionId)

        // It could have closed: going away for real ends it.
        callbacks.hide(second)
        MainThread.advanceBy(700)
        val ended = sessions.next("the end after going to the background")
        assertEquals(Kind.ENDED, ended.kind)
        assertEquals(started.sessionId, ended.sessionId)
    }

    @Test
    fun theBackgroundAfterTheDelayClosesTheSessionAndSendsAtOnce() {
        TestCollector.reset()
        val callbacks = startStint()
        val activity = Activity()
        callbacks.show(activity)
        val started = sessions.next("the session start")
        val ours = { points: List<Map<String, Any?>> -> points.filter { it["session_id"] == started.sessionId } }

        callbacks.hide(activity)
        MainThread.advanceBy(699)
        assertEquals("still within the delay", 1, MainThread.pending())
        assertNoSessionEnds("nothing closes before the delay has passed")
        assertTrue("nothing sent before the background (a day between flushes)", ours(TestCollector.datapoints()).isEmpty())

        MainThread.advanceBy(1)
        assertEquals(0, MainThread.pending())
        // requestImmediateDataFlush: the session start arrives long before the flush interval.
        TestCollector.awaitDatapoints("the session start, sent at once") { points -> ours(points).any { it["name"] == "ss" } }
        val ended = sessions.next("the end, a second after closeSession")
        assertEquals(Kind.ENDED, ended.kind)
        assertEquals(started.sessionId, ended.sessionId)

        // Back after the timeout: a new session.
        callbacks.show(activity)
        val next = sessions.next("the next session")
        assertEquals(Kind.STARTED, next.kind)
        assertNotEquals(started.sessionId, next.sessionId)
    }

    @Test
    fun twoActivitiesKeepTheAppInTheForegroundUntilTheLastStops() {
        val callbacks = startStint()
        val main = Activity()
        val detail = Activity()
        callbacks.show(main)
        val started = sessions.next("the session start")
        callbacks.show(detail) // on top of main: main is stopped after detail starts
        callbacks.hide(main)
        assertEquals("one activity is still started", 0, MainThread.pending())
        MainThread.advanceBy(10_000)
        assertNoSessionEnds("the app is still in the foreground")
        assertTrue("one session only: ${sessions.drain()}", sessions.isEmpty())

        callbacks.hide(detail, destroy = true)
        MainThread.advanceBy(700)
        val ended = sessions.next("the end once the last activity stopped")
        assertEquals(started.sessionId, ended.sessionId)
    }

    @Test
    fun startTwiceThrowsAlreadyInitializedAndRegistersNothing() {
        startStint()
        val handler = Stint.currentLogHandler
        val error = assertThrowsStatus(StintStatus.ALREADY_INITIALIZED) { StintAndroid.start(app, "android-key", options()) }
        assertTrue(error.message, error.message.contains("already"))
        assertEquals("nothing more registered", 1, app.registered.size)
        assertTrue("the log handler is unchanged", Stint.currentLogHandler === handler)
        val other = TestApplication(File(temp, "other"))
        assertThrowsStatus(StintStatus.ALREADY_INITIALIZED) { StintAndroid.start(other, "android-key") }
        assertEquals(0, other.registered.size)
    }

    @Test
    fun aFailedStartRegistersNothingAndLeavesNoLogHandler() {
        assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { StintAndroid.start(app, "", options()) }
        assertEquals(0, app.registered.size)
        assertEquals(null, Stint.currentLogHandler)
        assertThrowsStatus(StintStatus.INVALID_ARGUMENT) {
            StintAndroid.start(app, "android-key", StintOptions(dataDirectory = "relative/path"))
        }
        assertEquals(0, app.registered.size)
    }

    @Test
    fun callbacksWhenStintIsNotInitializedReportAndNeverThrow() {
        val logs = Inbox<Pair<StintLogLevel, String>>()
        Stint.setLogHandler { level, message -> logs.add(level to message) }
        val callbacks = StintActivityLifecycleCallbacks()
        val activity = Activity()
        callbacks.show(activity, Bundle())
        val (level, message) = logs.next("the failed openSession")
        assertEquals(StintLogLevel.WARN, level)
        assertTrue(message, message.startsWith("openSession failed: NOT_INITIALIZED"))
        callbacks.hide(activity, destroy = true)
        MainThread.advanceBy(700)
        assertTrue(logs.next("the failed closeSession").second.startsWith("closeSession failed: NOT_INITIALIZED"))
        assertTrue(logs.next("the failed flush request").second.startsWith("requestImmediateDataFlush failed: NOT_INITIALIZED"))
        // Whatever Android passes, nothing escapes.
        callbacks.onActivityStarted(null)
        callbacks.onActivityStopped(null)
        callbacks.onActivityStopped(null) // unbalanced
        callbacks.onActivityCreated(null, null)
        callbacks.onActivitySaveInstanceState(null, null)
        MainThread.advanceBy(700)
    }

    @Test
    fun messagesGoToLogcatUnlessTheAppSetAHandler() {
        startStint()
        assertEquals(StintStatus.INVALID_ARGUMENT, Stint.logCustomEvent(""))
        val line = Logcat.lines().single { it.contains("logCustomEvent failed") }
        assertTrue(line, line.startsWith("${Log.ERROR}/Stint: logCustomEvent failed: INVALID_ARGUMENT"))
        Stint.shutdown(10_000L)
        Logcat.clear()

        // The app's handler wins, and start leaves it in place.
        val logs = Inbox<Pair<StintLogLevel, String>>()
        val handler: (StintLogLevel, String) -> Unit = { level, message -> logs.add(level to message) }
        Stint.setLogHandler(handler)
        StintAndroid.start(app, "android-key", options())
        assertTrue(Stint.currentLogHandler === handler)
        assertEquals(StintStatus.INVALID_ARGUMENT, Stint.logCustomEvent(""))
        assertTrue(logs.next("the app's handler").second.startsWith("logCustomEvent failed: INVALID_ARGUMENT"))
        assertTrue("nothing in logcat: ${Logcat.lines()}", Logcat.lines().none { it.contains("logCustomEvent") })
    }

    @Test
    fun aStartAfterShutdownKeepsFollowingTheSameApp() {
        // A timeout no slow machine reaches between the shutdown and the new start.
        val options = options().copy(sessionTimeoutInSeconds = 1800)
        StintAndroid.start(app, "android-key", options)
        val callbacks = app.registered.single()
        callbacks.show(Activity())
        val first = sessions.next("the first session")
        Stint.shutdown(10_000L)
        StintAndroid.start(app, "android-key", options)
        assertEquals("the same callbacks, not a second set", listOf(callbacks), app.registered)
        assertEquals("still in the foreground: the session continues", first.sessionId, Stint.sessionId)
    }

    @Test
    fun anInjectedHandlerCarriesTheDelay() {
        Stint.initialize("android-key", options().copy(dataDirectory = dataDirectory))
        val handler = Handler(Looper.getMainLooper())
        val callbacks = StintActivityLifecycleCallbacks(50, handler)
        val activity = Activity()
        callbacks.show(activity)
        val started = sessions.next("the session start")
        callbacks.hide(activity)
        MainThread.advanceBy(49)
        assertEquals(1, MainThread.pending())
        MainThread.advanceBy(1)
        val ended = sessions.next("the end after the 50 ms delay")
        assertNotNull(ended)
        assertEquals(started.sessionId, ended.sessionId)
    }

    @Test
    fun aNegativeDelayIsRefused() {
        val error = try {
            StintActivityLifecycleCallbacks(-1)
            null
        } catch (expected: IllegalArgumentException) {
            expected
        }
        assertTrue("$error", error?.message?.contains("backgroundDelayMillis") == true)
    }
}
