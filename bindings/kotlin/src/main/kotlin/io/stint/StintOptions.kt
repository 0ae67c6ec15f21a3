package io.stint

/**
 * The options of [Stint.initialize]; every field is a key of the C API's options JSON, with the
 * same default except [keepOpenWhileForeground] (true here, false in C). The library validates
 * them (ranges, absolute path, https) and names the key at fault in a [StintException] with
 * [StintStatus.INVALID_ARGUMENT].
 */
data class StintOptions @JvmOverloads constructor(
    /** A session ends after this long without activity (1..31536000). */
    val sessionTimeoutInSeconds: Int = 1800,
    /**
     * Never end a session while the app is in the foreground (between openSession and
     * closeSession). True here, as in other mobile SDKs: a foreground app never loses its session
     * to an idle stretch (reading, video). The C API's default is false (web semantics).
     */
    val keepOpenWhileForeground: Boolean = true,
    /**
     * Absolute path of the directory holding the queue and session state; created 0700 if missing.
     * Null: the library's default (XDG data dir on Linux). On Android pass `filesDir + "/stint"`.
     */
    val dataDirectory: String? = null,
    /** The collector, `https://...` (`http://` only for loopback hosts). Null: store only, send nothing. */
    val baseUrl: String? = null,
    /** How often queued datapoints are sent (1..86400). */
    val flushIntervalInSeconds: Int = 10,
    /** Queue capacity (100..10000000); beyond it the oldest custom events are dropped first. */
    val maxQueuedDatapoints: Int = 100000,
    /** The least severe level passed to the log handler. */
    val logLevel: StintLogLevel = StintLogLevel.WARN,
    /**
     * With no saved choice in the data directory, start with tracking disabled until the app sets
     * [Stint.trackingEnabled] to true (the user's consent). A saved choice wins over this option.
     */
    val requireConsent: Boolean = false,
    /** The app's version, sent with each session start (1-64 printable bytes). Null: not sent. */
    val appVersion: String? = null
) {
    /**
     * The options JSON passed to `stint_initialize`: every key, but null ones and a false
     * `requireConsent` (the library's default) left out.
     */
    fun toJson(): String {
        val options = LinkedHashMap<String, Any?>()
        options["sessionTimeoutInSeconds"] = sessionTimeoutInSeconds
        options["keepOpenWhileForeground"] = keepOpenWhileForeground
        if (dataDirectory != null) options["dataDirectory"] = dataDirectory
        if (baseUrl != null) options["baseUrl"] = baseUrl
        options["flushIntervalInSeconds"] = flushIntervalInSeconds
        options["maxQueuedDatapoints"] = maxQueuedDatapoints
        options["logLevel"] = logLevel.jsonName
        if (requireConsent) options["requireConsent"] = true
        if (appVersion != null) options["appVersion"] = appVersion
        return StintJson.encode(options, "options")
    }
}
