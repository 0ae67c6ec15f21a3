package io.stint

import com.sun.jna.Callback
import com.sun.jna.IntegerType
import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.ByteByReference

/**
 * The C API of `include/stint.h`, one method per export, as JNA maps it. Strings go in as
 * NUL-terminated UTF-8 byte arrays (see [Stint]) so that no platform default charset is involved.
 * Not meant to be used directly: [Stint] is the API.
 */
interface StintLibrary : Library {
    fun stint_initialize(apiKey: ByteArray?, optionsJson: ByteArray?): Int
    fun stint_shutdown(timeoutMs: Int): Int
    fun stint_open_session(): Int
    fun stint_close_session(): Int
    fun stint_change_user(userId: ByteArray?): Int
    fun stint_log_custom_event(name: ByteArray?, propertiesJson: ByteArray?): Int
    fun stint_request_immediate_data_flush(): Int
    fun stint_flush(timeoutMs: Int): Int
    fun stint_get_session_id(buffer: ByteArray?, bufferLen: SizeT): Int
    fun stint_get_stats(outStats: NativeStats?): Int
    fun stint_last_error_message(buffer: ByteArray?, bufferLen: SizeT): SizeT
    fun stint_set_session_listener(listener: NativeSessionListener?, userData: Pointer?): Int
    fun stint_set_log_handler(handler: NativeLogHandler?, userData: Pointer?): Int
    fun stint_version(): Pointer?

    // C `bool` is one byte: passed as a Byte (0 or 1) and read through a ByteByReference. JNA's
    // Kotlin/Java `boolean` would be a 4-byte int, which is not the C type.
    fun stint_set_tracking_enabled(enabled: Byte): Int
    fun stint_get_tracking_enabled(outEnabled: ByteByReference?): Int
    fun stint_wipe_data(): Int
    fun stint_get_device_id(buffer: ByteArray?, bufferLen: SizeT): Int
    fun stint_set_network_enabled(enabled: Byte): Int

    companion object {
        /** System property: the full path of `libstint` to load instead of looking up "stint". */
        const val LIBRARY_PATH_PROPERTY = "stint.library.path"

        /** Loads the library: the path in [LIBRARY_PATH_PROPERTY] if set, else "stint" on JNA's search path. */
        fun load(): StintLibrary = Native.load(libraryName(), StintLibrary::class.java)

        /** The path in [LIBRARY_PATH_PROPERTY] if set, else "stint". */
        fun libraryName(): String {
            val override = System.getProperty(LIBRARY_PATH_PROPERTY)
            return if (override != null && override.isNotEmpty()) override else "stint"
        }
    }
}

/** C `size_t`: its width follows the platform (4 bytes on armeabi-v7a, 8 on arm64-v8a). */
class SizeT(value: Long = 0) : IntegerType(Native.SIZE_T_SIZE, value, true) {
    // kotlin.Number declares these abstract (older compilers); java.lang.Number has no such methods.
    override fun toByte(): Byte = toInt().toByte()
    override fun toShort(): Short = toInt().toShort()
    override fun toChar(): Char = toInt().toChar()
}

/** C `StintStats`. */
@Structure.FieldOrder(
    "sessions_started",
    "sessions_ended",
    "datapoints_recorded",
    "datapoints_pending",
    "datapoints_delivered",
    "datapoints_dropped"
)
class NativeStats : Structure() {
    @JvmField var sessions_started: Long = 0
    @JvmField var sessions_ended: Long = 0
    @JvmField var datapoints_recorded: Long = 0
    @JvmField var datapoints_pending: Long = 0
    @JvmField var datapoints_delivered: Long = 0
    @JvmField var datapoints_dropped: Long = 0
}

/** C `StintSessionEvent`, read from the pointer the listener receives. */
@Structure.FieldOrder("kind", "session_id", "user_id", "start_time", "end_time")
class NativeSessionEvent(pointer: Pointer) : Structure(pointer) {
    @JvmField var kind: Int = 0
    @JvmField var session_id: Pointer? = null
    @JvmField var user_id: Pointer? = null
    @JvmField var start_time: Double = 0.0
    @JvmField var end_time: Double = 0.0

    init {
        read()
    }
}

/** C `StintSessionListener`. */
interface NativeSessionListener : Callback {
    fun invoke(event: Pointer?, userData: Pointer?)
}

/** C `StintLogHandler`. */
interface NativeLogHandler : Callback {
    fun invoke(level: Int, message: Pointer?, userData: Pointer?)
}
