package io.stint

import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native
import com.sun.jna.Pointer
import java.time.Duration

/**
 * Stint, the session-tracking SDK: a thin layer over the C API of `libstint` (all session logic
 * is in the library). Every call may be made from any thread. A call whose C function returns a
 * status other than OK throws [StintException] carrying that status and the library's message.
 *
 * The library is loaded on first use: from the path in the system property `stint.library.path`
 * if set, else as "stint" (`libstint.so` from the app's `jniLibs`, or `jna.library.path`).
 */
object Stint {
    private val library: StintLibrary by lazy { StintLibrary.load() }

    /** The session listener, read by [sessionTrampoline] on each call. */
    @Volatile
    private var sessionListener: ((StintSessionEvent) -> Unit)? = null

    @Volatile
    private var logHandler: ((StintLogLevel, String) -> Unit)? = null

    /**
     * The one JNA callback ever registered as the session listener. A field of this object, so it
     * is strongly reachable for the life of the class: the GC can never free the native
     * trampoline under the library's feet.
     */
    private val sessionTrampoline: NativeSessionListener = object : NativeSessionListener {
        override fun invoke(event: Pointer?, userData: Pointer?) {
            val listener = sessionListener ?: return
            if (event == null) return
            try {
                listener(readEvent(NativeSessionEvent(event)))
            } catch (error: Throwable) {
                // Nothing can be thrown back into C: report it and carry on.
                System.err.println("stint: the session listener threw $error")
                error.printStackTrace()
            }
        }
    }

    /** The one JNA callback ever registered as the log handler; kept reachable likewise. */
    private val logTrampoline: NativeLogHandler = object : NativeLogHandler {
        override fun invoke(level: Int, message: Pointer?, userData: Pointer?) {
            val handler = logHandler ?: return
            try {
                handler(StintLogLevel.fromCode(level), message?.getString(0, "UTF-8") ?: "")
            } catch (error: Throwable) {
                System.err.println("stint: the log handler threw $error")
                error.printStackTrace()
            }
        }
    }

    init {
        // The library calls back on its own long-lived thread: keep it attached to the JVM (no
        // attach/detach per call) and as a daemon (it must not keep the JVM alive).
        Native.setCallbackThreadInitializer(sessionTrampoline, CallbackThreadInitializer(true, false, "stint-dispatch"))
        Native.setCallbackThreadInitializer(logTrampoline, CallbackThreadInitializer(true, false, "stint-dispatch"))
    }

    /**
     * Starts Stint: opens the data directory, recovers queued datapoints and the saved session,
     * and starts the background worker. [apiKey]: 1-256 bytes, no control characters.
     * Throws [StintException]: INVALID_ARGUMENT (naming the option at fault), ALREADY_INITIALIZED,
     * DATA_DIRECTORY_LOCKED, STORAGE_ERROR. On any error nothing is initialized.
     */
    @JvmStatic
    @JvmOverloads
    fun initialize(apiKey: String, options: StintOptions = StintOptions()) {
        val key = cString(apiKey, "apiKey")
        val json = cString(options.toJson(), "options")
        checkStatus(library.stint_initialize(key, json))
    }

    /**
     * Stops Stint: tries to deliver queued datapoints for at most [timeout], makes everything
     * durable and stops the worker; [initialize] may be called again afterwards. Records no
     * datapoint: an open session continues if the app comes back within the session timeout.
     * Throws [StintException] with TIMEOUT if datapoints stayed queued: Stint is shut down all
     * the same, and they are sent by the next run.
     */
    @JvmStatic
    @JvmOverloads
    fun shutdown(timeout: Duration = Duration.ofSeconds(5)) {
        checkStatus(library.stint_shutdown(timeoutMillis(timeout)))
    }

    /** [shutdown] with a timeout in milliseconds (for Android below API 26 without desugaring). */
    @JvmStatic
    fun shutdown(timeoutMillis: Long) {
        checkStatus(library.stint_shutdown(clampMillis(timeoutMillis)))
    }

    /** The app came to the foreground: starts a session unless one is open. */
    @JvmStatic
    fun openSession() = checkStatus(library.stint_open_session())

    /** The app went to the background: activity on the open session, records nothing, syncs to disk. */
    @JvmStatic
    fun closeSession() = checkStatus(library.stint_close_session())

    /**
     * Sets the current user ([userId]: 1-997 bytes UTF-8). A different user ends the open session
     * and starts a new one for the new user; the same user is only activity.
     */
    @JvmStatic
    fun changeUser(userId: String) = checkStatus(library.stint_change_user(cString(userId, "userId")))

    /**
     * Records a custom event in the open session, if any (it does not start one). [name]: 1-255
     * bytes UTF-8. [properties]: strings, numbers, booleans, null, nested maps and lists; at most
     * 50 KB as JSON. An empty map sends no properties.
     */
    @JvmStatic
    @JvmOverloads
    fun logCustomEvent(name: String, properties: Map<String, Any?> = emptyMap()) {
        val json = if (properties.isEmpty()) null else cString(StintJson.encode(properties, "properties"), "properties")
        checkStatus(library.stint_log_custom_event(cString(name, "name"), json))
    }

    /** Asks the worker to deliver queued datapoints now. Never blocks. */
    @JvmStatic
    fun requestImmediateDataFlush() = checkStatus(library.stint_request_immediate_data_flush())

    /**
     * Blocks until every datapoint recorded before the call is delivered, or [timeout] passes
     * (TIMEOUT; the data stays queued). Without a `baseUrl` it only makes the data durable.
     * Timeouts are whole milliseconds, at most 2^32-1 ms (about 49 days).
     */
    @JvmStatic
    fun flush(timeout: Duration) = checkStatus(library.stint_flush(timeoutMillis(timeout)))

    /** [flush] with a timeout in milliseconds (for Android below API 26 without desugaring). */
    @JvmStatic
    fun flush(timeoutMillis: Long) = checkStatus(library.stint_flush(clampMillis(timeoutMillis)))

    /** The open session's id, or null if no session is open. Throws NOT_INITIALIZED before [initialize]. */
    @JvmStatic
    val sessionId: String?
        get() {
            val buffer = ByteArray(SESSION_ID_BUFFER_LEN)
            checkStatus(library.stint_get_session_id(buffer, SizeT(buffer.size.toLong())))
            val id = fromCString(buffer)
            return if (id.length == 0) null else id
        }

    /** The library's counters. Throws NOT_INITIALIZED before [initialize]. */
    @JvmStatic
    val stats: StintStats
        get() {
            val out = NativeStats()
            checkStatus(library.stint_get_stats(out))
            out.read()
            return StintStats(
                sessionsStarted = out.sessions_started,
                sessionsEnded = out.sessions_ended,
                datapointsRecorded = out.datapoints_recorded,
                datapointsPending = out.datapoints_pending,
                datapointsDelivered = out.datapoints_delivered,
                datapointsDropped = out.datapoints_dropped
            )
        }

    /** The library's version, e.g. "0.1.0". */
    @JvmStatic
    val version: String
        get() = library.stint_version()?.getString(0, "UTF-8") ?: ""

    /**
     * Sets the session listener (null removes it). It is called on a library thread, in the order
     * sessions started and ended, and may call any Stint function. Once this returns, the previous
     * listener is never called again (when called from inside a listener: once that call returns).
     * May be set before [initialize]; stays across [shutdown]. To keep that promise this waits for
     * a listener call in progress: do not call it while holding a lock your listener takes. A
     * listener must not throw: what it throws is printed to stderr and dropped.
     */
    @JvmStatic
    fun setSessionListener(listener: ((StintSessionEvent) -> Unit)?) {
        sessionListener = listener
        if (listener != null) {
            // Also the barrier that waits for a call to the previous listener in progress.
            checkStatus(library.stint_set_session_listener(sessionTrampoline, null))
        } else {
            checkStatus(library.stint_set_session_listener(null, null))
            // A concurrent setSessionListener(non-null) may have been overtaken by ours: restore it.
            if (sessionListener != null) checkStatus(library.stint_set_session_listener(sessionTrampoline, null))
        }
    }

    /**
     * Sets the log handler (null removes it: the library then writes to stderr). Messages at or
     * above the `logLevel` option arrive on a library thread; never the API key. Same guarantees
     * as [setSessionListener].
     */
    @JvmStatic
    fun setLogHandler(handler: ((StintLogLevel, String) -> Unit)?) {
        logHandler = handler
        if (handler != null) {
            checkStatus(library.stint_set_log_handler(logTrampoline, null))
        } else {
            checkStatus(library.stint_set_log_handler(null, null))
            if (logHandler != null) checkStatus(library.stint_set_log_handler(logTrampoline, null))
        }
    }

    /** The buffer size `stint_get_session_id` needs: a UUID and its NUL. */
    const val SESSION_ID_BUFFER_LEN = 37

    private fun readEvent(event: NativeSessionEvent) = StintSessionEvent(
        kind = if (event.kind == 0) StintSessionEvent.Kind.STARTED else StintSessionEvent.Kind.ENDED,
        sessionId = event.session_id?.getString(0, "UTF-8") ?: "",
        userId = event.user_id?.getString(0, "UTF-8"),
        startTime = event.start_time,
        endTime = event.end_time
    )

    /** Throws for a non-OK status, with this thread's last error message (read right away). */
    private fun checkStatus(status: Int) {
        if (status == StintStatus.OK.code) return
        val message = lastErrorMessage()
        val known = StintStatus.fromCode(status)
        throw if (known != null) {
            StintException(known, message)
        } else {
            StintException(StintStatus.INTERNAL_ERROR, "unknown status $status from libstint: $message")
        }
    }

    private fun lastErrorMessage(): String {
        var buffer = ByteArray(512)
        val length = library.stint_last_error_message(buffer, SizeT(buffer.size.toLong())).toLong()
        if (length >= buffer.size) {
            buffer = ByteArray(length.toInt() + 1)
            library.stint_last_error_message(buffer, SizeT(buffer.size.toLong()))
        }
        return fromCString(buffer)
    }

    private fun fromCString(buffer: ByteArray): String {
        var end = 0
        while (end < buffer.size && buffer[end] != 0.toByte()) end++
        return String(buffer, 0, end, Charsets.UTF_8)
    }

    /** [value] as NUL-terminated UTF-8; a NUL inside would silently cut it, so it is refused. */
    private fun cString(value: String, name: String): ByteArray {
        if (value.indexOf('\u0000') >= 0) {
            throw StintException(StintStatus.INVALID_ARGUMENT, "$name must not contain NUL characters")
        }
        val bytes = value.toByteArray(Charsets.UTF_8)
        return bytes.copyOf(bytes.size + 1)
    }

    private fun timeoutMillis(timeout: Duration): Int {
        val millis = try {
            timeout.toMillis()
        } catch (overflow: ArithmeticException) {
            Long.MAX_VALUE
        }
        return clampMillis(millis)
    }

    /** The C API takes a uint32_t: clamp to 0..2^32-1 and pass its bits. */
    private fun clampMillis(millis: Long): Int = millis.coerceIn(0L, 0xFFFFFFFFL).toInt()
}
