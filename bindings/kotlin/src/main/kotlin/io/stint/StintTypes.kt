package io.stint

/** The C API's `StintStatus`, with its stable numeric codes. */
enum class StintStatus(val code: Int) {
    OK(0),
    /** NULL, bad UTF-8, too long, bad JSON or a bad option; the message names it. */
    INVALID_ARGUMENT(1),
    /** Called before [Stint.initialize] or after [Stint.shutdown]. */
    NOT_INITIALIZED(2),
    /** [Stint.initialize] was already called. */
    ALREADY_INITIALIZED(3),
    /** The data directory is unusable: cannot be created, disk full, permissions, I/O error. */
    STORAGE_ERROR(4),
    /** Another process (or another Stint instance) uses this data directory. */
    DATA_DIRECTORY_LOCKED(5),
    /** [Stint.flush] or [Stint.shutdown] did not finish in time; nothing is lost. */
    TIMEOUT(6),
    /** A bug inside the library was caught; the library stays usable. */
    INTERNAL_ERROR(7);

    companion object {
        /** The status with this code, or null for a code this binding does not know. */
        @JvmStatic
        fun fromCode(code: Int): StintStatus? = values().firstOrNull { it.code == code }
    }
}

/**
 * A Stint call returned [status] instead of OK. [message] is the library's own message for this
 * failure (it names the argument or option at fault), or the binding's when it refused an
 * argument it cannot pass to C (a string with a NUL character, a property value that is not JSON).
 */
class StintException(val status: StintStatus, override val message: String) : RuntimeException(message) {
    override fun toString(): String = "StintException($status): $message"
}

/** Counters; all but [datapointsPending] count since [Stint.initialize]. */
data class StintStats(
    val sessionsStarted: Long,
    val sessionsEnded: Long,
    val datapointsRecorded: Long,
    /** Recorded and not yet delivered, including those recovered from earlier runs. */
    val datapointsPending: Long,
    val datapointsDelivered: Long,
    /** Dropped because the queue was full or the collector rejected them. */
    val datapointsDropped: Long
)

/** A session started or ended, as passed to the listener of [Stint.setSessionListener]. */
data class StintSessionEvent(
    val kind: Kind,
    val sessionId: String,
    /** The user the session belongs to; null when anonymous. */
    val userId: String?,
    /** Seconds since the Unix epoch, millisecond precision. */
    val startTime: Double,
    /** Seconds since the Unix epoch; 0.0 for [Kind.STARTED]. */
    val endTime: Double
) {
    enum class Kind { STARTED, ENDED }
}

/**
 * The `logLevel` option (messages at this level and more severe reach the log handler) and the
 * level of each message passed to it ([OFF] only as an option).
 */
enum class StintLogLevel(val jsonName: String, val code: Int) {
    OFF("off", 0),
    ERROR("error", 1),
    WARN("warn", 2),
    INFO("info", 3),
    DEBUG("debug", 4);

    companion object {
        /** The level of a C `StintLogLevel`; an unknown code is reported as [ERROR]. */
        @JvmStatic
        fun fromCode(code: Int): StintLogLevel = values().firstOrNull { it.code == code && it != OFF } ?: ERROR
    }
}
