package io.stint

import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.ByteByReference
import java.time.Duration

/**
 * Stint, the session-tracking SDK: a thin layer over the C API of `libstint` (all session logic
 * is in the library). Every call may be made from any thread.
 *
 * Two kinds of calls:
 * - [initialize], [flush] and [shutdown] may fail in ways the app must handle: a status other than
 *   OK throws [StintException] carrying that status and the library's message.
 * - Fire-and-forget calls ([openSession], [closeSession], [changeUser], [logCustomEvent],
 *   [requestImmediateDataFlush], [trackingEnabled]'s setter, [setNetworkEnabled], [wipeData])
 *   never throw, whatever happens (a bad argument, a call before [initialize], the library
 *   failing to load): they return the [StintStatus] and report a failure to the log handler
 *   (see [setLogHandler]), so that analytics can never crash the app.
 *
 * The library is loaded on first use: from the path in the system property `stint.library.path`
 * if set, else as "stint" (`libstint.so` from the app's `jniLibs`, or `jna.library.path`).
 */
object Stint {
    private val loadedLibrary: StintLibrary by lazy { StintLibrary.load() }

    /**
     * The library, loaded on first use. A library that cannot be loaded is a [StintException]
     * (INTERNAL_ERROR, naming the cause) rather than an UnsatisfiedLinkError, so that an app
     * catching [StintException] around [initialize] catches this too; the next use tries again.
     */
    private val library: StintLibrary
        get() = try {
            loadedLibrary
        } catch (error: LinkageError) {
            throw StintException(StintStatus.INTERNAL_ERROR, "libstint could not be loaded: $error")
        }

    /** The hot calls, direct-mapped on first use (after [library], which loads the library). */
    private val registeredNative: StintNative by lazy {
        library
        StintNative.register()
        StintNative
    }

    /** [registeredNative], a load failure being a [StintException] as for [library]. */
    private val native: StintNative
        get() = try {
            registeredNative
        } catch (error: LinkageError) {
            throw StintException(StintStatus.INTERNAL_ERROR, "libstint could not be loaded: $error")
        }

    /** The session listener, read by [sessionTrampoline] on each call. */
    @Volatile
    private var sessionListener: ((StintSessionEvent) -> Unit)? = null

    @Volatile
    private var logHandler: ((StintLogLevel, String) -> Unit)? = null

    /** The handler set by [setLogHandler], if any (io.stint.android installs logcat only without one). */
    internal val currentLogHandler: ((StintLogLevel, String) -> Unit)?
        get() = logHandler

    /**
     * The `logLevel` of the running instance (WARN when none runs): the binding's own reports of
     * failed fire-and-forget calls pass the same filter as the library's messages.
     */
    @Volatile
    private var reportLevel: StintLogLevel = StintLogLevel.WARN

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
        reportLevel = options.logLevel
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
        shutdownMillis(timeoutMillis(timeout))
    }

    /** [shutdown] with a timeout in milliseconds (for Android below API 26 without desugaring). */
    @JvmStatic
    fun shutdown(timeoutMillis: Long) {
        shutdownMillis(clampMillis(timeoutMillis))
    }

    private fun shutdownMillis(millis: Int) {
        val status = library.stint_shutdown(millis)
        // Stopped whatever the status (TIMEOUT too): reports fall back to the default level.
        reportLevel = StintLogLevel.WARN
        checkStatus(status)
    }

    /**
     * The app came to the foreground: starts a session unless one is open. Never throws; a
     * failure (e.g. NOT_INITIALIZED) is returned and reported to the log handler.
     */
    @JvmStatic
    fun openSession(): StintStatus = fireAndForget("openSession") { native.stint_open_session() }

    /**
     * The app went to the background: activity on the open session, records nothing. Never
     * waits on the disk; never throws (a failure is returned and reported to the log handler).
     */
    @JvmStatic
    fun closeSession(): StintStatus = fireAndForget("closeSession") { native.stint_close_session() }

    /**
     * Sets the current user ([userId]: 1-997 bytes UTF-8). A different user ends the open session
     * and starts a new one for the new user; the same user is only activity. Never throws: a bad
     * [userId] is INVALID_ARGUMENT, returned and reported to the log handler.
     */
    @JvmStatic
    fun changeUser(userId: String?): StintStatus = fireAndForget("changeUser") {
        withBuffers { buffers -> native.stint_change_user(userId?.let { buffers.name.cString(it, "userId") }) }
    }

    /**
     * Records a custom event in the open session, if any (it does not start one). [name]: 1-255
     * bytes UTF-8. [properties]: strings, numbers, booleans, null, nested maps and lists; at most
     * 50 KB as JSON. An empty map sends no properties. Never throws: bad arguments are
     * INVALID_ARGUMENT, returned and reported to the log handler, and record nothing.
     */
    @JvmStatic
    @JvmOverloads
    fun logCustomEvent(name: String?, properties: Map<String, Any?>? = emptyMap()): StintStatus = fireAndForget("logCustomEvent") {
        // UTF-8 straight into this thread's native buffers: the hot path allocates nothing.
        withBuffers { buffers ->
            val json = if (properties == null || properties.isEmpty()) {
                null
            } else {
                buffers.properties.clear()
                StintJson.encodeTo(properties, buffers.properties, "properties")
                buffers.properties.terminate()
            }
            native.stint_log_custom_event(name?.let { buffers.name.cString(it, "name") }, json)
        }
    }

    /** Asks the worker to deliver queued datapoints now. Never blocks, never throws. */
    @JvmStatic
    fun requestImmediateDataFlush(): StintStatus =
        fireAndForget("requestImmediateDataFlush") { native.stint_request_immediate_data_flush() }

    /**
     * Whether Stint records and sends anything; the user's choice, kept in the data directory
     * across restarts (with the `requireConsent` option, false until the app sets it true).
     *
     * Setting false drops the open session without recording its end and deletes every
     * undelivered datapoint, on disk too; from then on the fire-and-forget calls return OK and
     * record nothing. Setting true starts again: the next [openSession] starts a new session.
     * The setter never throws (a failure is reported to the log handler); the getter is false
     * while Stint is not initialized (nothing is tracked then) and never throws either.
     */
    @JvmStatic
    var trackingEnabled: Boolean
        get() {
            val out = ByteByReference()
            val status = query("trackingEnabled") { library.stint_get_tracking_enabled(out) }
            return status == StintStatus.OK && out.value != 0.toByte()
        }
        set(enabled) {
            fireAndForget("trackingEnabled") { library.stint_set_tracking_enabled(if (enabled) 1 else 0) }
        }

    /**
     * Lets the worker send (true, the state each [initialize] starts in) or holds every request
     * (false: recording goes on, a request in flight may finish, [flush] throws TIMEOUT at once).
     * Not persisted. Use it for the app's own network policy (e.g. Wi-Fi only). Never throws.
     */
    @JvmStatic
    fun setNetworkEnabled(enabled: Boolean): StintStatus =
        fireAndForget("setNetworkEnabled") { library.stint_set_network_enabled(if (enabled) 1 else 0) }

    /**
     * Deletes every undelivered datapoint, the saved session, the user and the device id, on disk
     * too (for a user's deletion request); Stint goes on with a new [deviceId], no user and no
     * session. Nothing recorded before is sent after it returns; the tracking choice is kept.
     * Never throws.
     */
    @JvmStatic
    fun wipeData(): StintStatus = fireAndForget("wipeData") { library.stint_wipe_data() }

    /**
     * The id of this installation (a UUID), as sent with every datapoint: what a user's deletion
     * request names. Null while Stint is not initialized. Never throws.
     */
    @JvmStatic
    val deviceId: String?
        get() {
            val buffer = ByteArray(SESSION_ID_BUFFER_LEN)
            val status = query("deviceId") { library.stint_get_device_id(buffer, SizeT(buffer.size.toLong())) }
            if (status != StintStatus.OK) return null
            val id = fromCString(buffer)
            return if (id.length == 0) null else id
        }

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
     * Sets the log handler (null removes it: messages then go to stderr, where Android's logcat
     * shows them under the tag System.err). Messages at or above the `logLevel` option arrive on a
     * library thread; never the API key. A fire-and-forget call that fails reports it here too,
     * on the calling thread, at WARN for NOT_INITIALIZED and ERROR otherwise. So the handler may
     * run on several threads at once. Same guarantees as [setSessionListener].
     */
    @JvmStatic
    fun setLogHandler(handler: ((StintLogLevel, String) -> Unit)?) {
        logHandler = handler
        // Set on this side even without a library: reports of failed calls (the library failing
        // to load among them) still reach it.
        try {
            library
        } catch (error: StintException) {
            report("setLogHandler", error.status, error.message)
            return
        }
        if (handler != null) {
            checkStatus(library.stint_set_log_handler(logTrampoline, null))
        } else {
            checkStatus(library.stint_set_log_handler(null, null))
            if (logHandler != null) checkStatus(library.stint_set_log_handler(logTrampoline, null))
        }
    }

    /** The buffer size `stint_get_session_id` and `stint_get_device_id` need: a UUID and its NUL. */
    const val SESSION_ID_BUFFER_LEN = 37

    private fun readEvent(event: NativeSessionEvent) = StintSessionEvent(
        kind = if (event.kind == 0) StintSessionEvent.Kind.STARTED else StintSessionEvent.Kind.ENDED,
        sessionId = event.session_id?.getString(0, "UTF-8") ?: "",
        userId = event.user_id?.getString(0, "UTF-8"),
        startTime = event.start_time,
        endTime = event.end_time
    )

    /**
     * Runs a fire-and-forget [call] and returns its status; nothing escapes: a non-OK status, a
     * [StintException] from the binding (a NUL in a string, a property JSON cannot hold) and any
     * other throwable (the library failing to load: UnsatisfiedLinkError) are reported to the log
     * handler and returned as a status. OK allocates nothing.
     */
    private inline fun fireAndForget(what: String, call: () -> Int): StintStatus {
        val code = try {
            call()
        } catch (error: Throwable) {
            return failed(what, error, reportNotInitialized = true)
        }
        return if (code == StintStatus.OK.code) StintStatus.OK else failed(what, code, reportNotInitialized = true)
    }

    /** Like [fireAndForget], for a query: NOT_INITIALIZED is an answer (null, false), not reported. */
    private inline fun query(what: String, call: () -> Int): StintStatus {
        val code = try {
            call()
        } catch (error: Throwable) {
            return failed(what, error, reportNotInitialized = false)
        }
        return if (code == StintStatus.OK.code) StintStatus.OK else failed(what, code, reportNotInitialized = false)
    }

    /** A call that returned a non-OK [code]: its status, with this thread's message reported. */
    private fun failed(what: String, code: Int, reportNotInitialized: Boolean): StintStatus {
        val message = try {
            lastErrorMessage()
        } catch (error: Throwable) {
            "(no message: $error)" // never thrown from a fire-and-forget call
        }
        val known = StintStatus.fromCode(code)
        val status = known ?: StintStatus.INTERNAL_ERROR
        if (status != StintStatus.NOT_INITIALIZED || reportNotInitialized) {
            report(what, status, if (known != null) message else "unknown status $code from libstint: $message")
        }
        return status
    }

    /** A call that threw: a [StintException] from the binding, or any other throwable (a bug, no library). */
    private fun failed(what: String, error: Throwable, reportNotInitialized: Boolean): StintStatus {
        val status = if (error is StintException) error.status else StintStatus.INTERNAL_ERROR
        if (status != StintStatus.NOT_INITIALIZED || reportNotInitialized) {
            report(what, status, if (error is StintException) error.message else "$error")
        }
        return status
    }

    /** Runs [call] with this thread's [CallBuffers] (a fresh set if they are in use further up). */
    private inline fun withBuffers(call: (CallBuffers) -> Int): Int {
        val buffers = CallBuffers.take()
        try {
            return call(buffers)
        } finally {
            CallBuffers.give(buffers)
        }
    }

    /** True on a thread while it runs the log handler for a report. */
    private val reporting = ThreadLocal<Boolean>()

    /** Passes a failed fire-and-forget call to the log handler, or stderr without one. Never throws. */
    private fun report(what: String, status: StintStatus, message: String) {
        val level = if (status == StintStatus.NOT_INITIALIZED) StintLogLevel.WARN else StintLogLevel.ERROR
        if (reportLevel == StintLogLevel.OFF || level.code > reportLevel.code) return
        val line = "$what failed: $status: $message"
        try {
            val handler = logHandler
            // A handler whose own Stint call fails is not called again for it (no endless loop).
            if (handler != null && reporting.get() != true) {
                reporting.set(true)
                try {
                    handler(level, line)
                } finally {
                    reporting.set(false)
                }
            } else {
                System.err.println("stint [${level.jsonName}] $line")
            }
        } catch (error: Throwable) {
            try {
                System.err.println("stint: the log handler threw $error while reporting: $line")
            } catch (ignored: Throwable) {
                // Nowhere left to report to.
            }
        }
    }

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
