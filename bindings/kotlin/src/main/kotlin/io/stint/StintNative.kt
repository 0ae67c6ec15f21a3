package io.stint

import com.sun.jna.Native
import com.sun.jna.NativeLibrary
import com.sun.jna.Pointer
import java.nio.ByteBuffer

/**
 * The hot calls of the C API by JNA direct mapping (`Native.register`): each is a JNI native
 * method bound to the C function, with no proxy, reflection or argument conversion per call
 * (a [Pointer] passes its address). Strings go in as [NativeText]'s NUL-terminated UTF-8. The
 * rest of the API stays in [StintLibrary]. Registered by [Stint] on first use.
 */
internal object StintNative {
    external fun stint_open_session(): Int
    external fun stint_close_session(): Int
    external fun stint_change_user(userId: Pointer?): Int
    external fun stint_log_custom_event(name: Pointer?, propertiesJson: Pointer?): Int
    external fun stint_request_immediate_data_flush(): Int

    /** Binds the methods above to [StintLibrary.load]'s library (throws UnsatisfiedLinkError). */
    fun register() {
        Native.register(StintNative::class.java, NativeLibrary.getInstance(StintLibrary.libraryName(), StintLibrary::class.java.classLoader))
    }
}

/**
 * A reused native buffer holding one NUL-terminated UTF-8 string, written a char at a time (an
 * [Appendable], so [StintJson] writes properties straight into it). Encodes as
 * `String.toByteArray(UTF_8)` does: an unpaired surrogate becomes '?'.
 */
internal class NativeText(private val initialCapacity: Int) : Appendable {
    private var buffer: ByteBuffer = ByteBuffer.allocateDirect(initialCapacity)
    private var address: Pointer = Native.getDirectBufferPointer(buffer)
    private var length = 0
    private var highSurrogate = 0.toChar()

    /** The String last written by [cString], whose bytes are still here (Strings are immutable). */
    private var holds: String? = null

    /**
     * [value] as a C string, re-encoded only when it is not the String passed last time.
     * [what] names the argument in the error a NUL inside would be (it would cut the string).
     */
    fun cString(value: String, what: String): Pointer {
        if (value === holds) return address
        clear()
        for (index in 0 until value.length) {
            val c = value[index]
            if (c == '\u0000') {
                throw StintException(StintStatus.INVALID_ARGUMENT, "$what must not contain NUL characters")
            }
            append(c)
        }
        val pointer = terminate()
        holds = value
        return pointer
    }

    /** Empties it for a new string; then [append], then [terminate]. */
    fun clear() {
        length = 0
        highSurrogate = 0.toChar()
        holds = null
    }

    /** Ends the string with its NUL and gives its address (valid until the next write). */
    fun terminate(): Pointer {
        flushSurrogate()
        put(0)
        return address
    }

    /** Back to the first size if a big string grew it, so that a thread keeps little memory. */
    fun shrink() {
        if (buffer.capacity() > MAX_KEPT_BYTES) {
            buffer = ByteBuffer.allocateDirect(initialCapacity)
            address = Native.getDirectBufferPointer(buffer)
            clear()
        }
    }

    override fun append(c: Char): Appendable {
        val code = c - '\u0000'
        if (highSurrogate != 0.toChar()) {
            if (Character.isLowSurrogate(c)) {
                val point = Character.toCodePoint(highSurrogate, c)
                highSurrogate = 0.toChar()
                put(0xF0 or (point shr 18))
                put(0x80 or ((point shr 12) and 0x3F))
                put(0x80 or ((point shr 6) and 0x3F))
                put(0x80 or (point and 0x3F))
                return this
            }
            flushSurrogate()
        }
        when {
            code < 0x80 -> put(code)
            code < 0x800 -> {
                put(0xC0 or (code shr 6))
                put(0x80 or (code and 0x3F))
            }
            Character.isHighSurrogate(c) -> highSurrogate = c
            Character.isLowSurrogate(c) -> put(REPLACEMENT)
            else -> {
                put(0xE0 or (code shr 12))
                put(0x80 or ((code shr 6) and 0x3F))
                put(0x80 or (code and 0x3F))
            }
        }
        return this
    }

    override fun append(text: CharSequence?): Appendable {
        val chars = text ?: "null"
        for (index in 0 until chars.length) append(chars[index])
        return this
    }

    override fun append(text: CharSequence?, start: Int, end: Int): Appendable = append((text ?: "null").subSequence(start, end))

    /** An unpaired high surrogate is written as '?', as the JDK's encoder does. */
    private fun flushSurrogate() {
        if (highSurrogate != 0.toChar()) {
            highSurrogate = 0.toChar()
            put(REPLACEMENT)
        }
    }

    private fun put(byte: Int) {
        if (length == buffer.capacity()) grow()
        buffer.put(length++, byte.toByte())
    }

    private fun grow() {
        val bigger = ByteBuffer.allocateDirect(buffer.capacity() * 2)
        for (index in 0 until length) bigger.put(index, buffer.get(index))
        buffer = bigger
        address = Native.getDirectBufferPointer(bigger)
    }

    private companion object {
        const val MAX_KEPT_BYTES = 64 * 1024

        /** '?', what the JDK's UTF-8 encoder writes for an unpaired surrogate. */
        const val REPLACEMENT = 0x3F
    }
}

/**
 * A thread's buffers for the hot calls, so that they allocate nothing: the name (or user id) and
 * the properties' JSON. Taken and given back around each call; a call made while they are taken
 * (from code the encoder runs, such as a map's iterator) gets a fresh set.
 */
internal class CallBuffers {
    val name = NativeText(256)
    val properties = NativeText(1024)
    private var taken = false

    companion object {
        private val perThread = object : ThreadLocal<CallBuffers>() {
            override fun initialValue() = CallBuffers()
        }

        fun take(): CallBuffers {
            val buffers = perThread.get()
            if (buffers.taken) return CallBuffers()
            buffers.taken = true
            return buffers
        }

        fun give(buffers: CallBuffers) {
            buffers.properties.shrink()
            buffers.name.shrink()
            buffers.taken = false
        }
    }
}
