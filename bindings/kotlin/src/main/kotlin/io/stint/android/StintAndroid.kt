package io.stint.android

import android.app.Application
import android.util.Log
import io.stint.Stint
import io.stint.StintException
import io.stint.StintLogLevel
import io.stint.StintOptions
import io.stint.StintStatus
import java.io.File

/**
 * Stint for an Android app in one call, from `Application.onCreate`:
 * `StintAndroid.start(this, apiKey, options)` initialises Stint and follows the app's lifecycle
 * with [StintActivityLifecycleCallbacks] (foreground: `openSession`; background:
 * `closeSession` and `requestImmediateDataFlush`). No androidx dependency.
 */
object StintAndroid {
    /** The `android.util.Log` tag of Stint's messages. */
    const val LOG_TAG = "Stint"

    /** The callbacks registered by the last successful [start], and where. Guarded by `this`. */
    private var registered: Pair<Application, StintActivityLifecycleCallbacks>? = null

    /** Stint's messages to logcat, used when the app has set no log handler of its own. */
    private val logcat: (StintLogLevel, String) -> Unit = { level, message ->
        Log.println(priorityOf(level), LOG_TAG, message)
    }

    /**
     * Initialises Stint for this app and follows its lifecycle. Throws StintException as
     * Stint.initialize does; a second call throws ALREADY_INITIALIZED and registers nothing.
     *
     * `dataDirectory` defaults to `File(application.filesDir, "stint")`. Stint's messages go to
     * `android.util.Log` (tag [LOG_TAG]) unless the app has set a log handler
     * (`Stint.setLogHandler`). Call it before the first activity starts (`Application.onCreate`):
     * foreground is counted from the activities started after it. After `Stint.shutdown`, a new
     * [start] with the same application keeps its callbacks and reopens a session if an activity
     * is started.
     */
    @JvmStatic
    @JvmOverloads
    fun start(application: Application, apiKey: String, options: StintOptions = StintOptions()) {
        synchronized(this) {
            val resolved = if (options.dataDirectory != null) options else options.copy(dataDirectory = defaultDataDirectory(application))
            // Logcat from the start, so that initialize's own messages are seen; undone on failure.
            val installedLogcat = Stint.currentLogHandler == null
            if (installedLogcat) Stint.setLogHandler(logcat)
            try {
                Stint.initialize(apiKey, resolved)
            } catch (error: Throwable) {
                if (installedLogcat && Stint.currentLogHandler === logcat) Stint.setLogHandler(null)
                throw error
            }
            val previous = registered
            if (previous != null && previous.first === application) {
                previous.second.resumeAfterRestart()
                return
            }
            if (previous != null) previous.first.unregisterActivityLifecycleCallbacks(previous.second)
            val callbacks = StintActivityLifecycleCallbacks()
            application.registerActivityLifecycleCallbacks(callbacks)
            registered = application to callbacks
        }
    }

    private fun defaultDataDirectory(application: Application): String {
        // Declared non-null since API 30, but older platforms may answer null on a broken storage.
        val files: File? = application.filesDir
        if (files == null) {
            throw StintException(
                StintStatus.STORAGE_ERROR,
                "Application.getFilesDir() returned null: pass StintOptions(dataDirectory = ...)"
            )
        }
        return File(files, "stint").absolutePath
    }

    internal fun priorityOf(level: StintLogLevel): Int = when (level) {
        StintLogLevel.ERROR -> Log.ERROR
        StintLogLevel.WARN -> Log.WARN
        StintLogLevel.INFO -> Log.INFO
        else -> Log.DEBUG
    }

    /** Writes to logcat and never throws: what a lifecycle callback uses to report its own failure. */
    internal fun logQuietly(level: StintLogLevel, message: String) {
        try {
            Log.println(priorityOf(level), LOG_TAG, message)
        } catch (ignored: Throwable) {
            // Nowhere left to report to (a JVM without android.util.Log).
        }
    }
}
