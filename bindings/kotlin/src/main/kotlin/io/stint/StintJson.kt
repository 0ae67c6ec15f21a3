package io.stint

import java.math.BigDecimal
import java.math.BigInteger

/**
 * A small JSON writer for the options and for custom event properties: strings, numbers,
 * booleans, null, maps with string keys, and lists/arrays, nested freely.
 */
object StintJson {
    /**
     * [value] as JSON text. A value JSON cannot hold (NaN, infinity, a map key that is not a
     * string, an object of another type) is a [StintException] with
     * [StintStatus.INVALID_ARGUMENT] naming where it is, starting at [name]; so is nesting deeper
     * than 64 levels (a map or list that contains itself).
     */
    @JvmStatic
    @JvmOverloads
    fun encode(value: Any?, name: String = "value"): String {
        val out = StringBuilder()
        write(value, out, name, 0)
        return out.toString()
    }

    /**
     * [encode] into [out] (the hot path of `logCustomEvent`: a reused native buffer), building no
     * path strings: on a value it must refuse, it encodes again with paths for the message.
     */
    internal fun encodeTo(value: Any?, out: Appendable, name: String) {
        try {
            write(value, out, null, 0)
        } catch (refused: PathNeeded) {
            encode(value, name) // throws the StintException naming the path
            throw IllegalStateException("$name was refused, then accepted")
        }
    }

    /** Deeper than this is refused: a map or list that contains itself would never end. */
    private const val MAX_DEPTH = 64

    /** Thrown instead of a [StintException] when there is no path to name (see [encodeTo]). */
    private object PathNeeded : RuntimeException() {
        override fun fillInStackTrace(): Throwable = this
    }

    /** Refuses a value; [path] null: the fast pass, which leaves the message to a second pass. */
    private inline fun refuse(path: String?, message: (String) -> String): Nothing {
        if (path == null) throw PathNeeded
        throw StintException(StintStatus.INVALID_ARGUMENT, message(path))
    }

    private fun write(value: Any?, out: Appendable, path: String?, depth: Int) {
        if (depth > MAX_DEPTH) refuse(path) { "$it is nested more than $MAX_DEPTH levels deep (a cycle?)" }
        when (value) {
            null -> out.append("null")
            is Boolean -> out.append(if (value) "true" else "false")
            is CharSequence -> writeString(value, out)
            is Char -> writeString(value.toString(), out)
            is Int -> writeInteger(value.toLong(), out)
            is Long -> writeInteger(value, out)
            is Short -> writeInteger(value.toLong(), out)
            is Byte -> writeInteger(value.toLong(), out)
            is BigInteger -> out.append(value.toString())
            is BigDecimal -> out.append(value.toString())
            is Double -> writeFloating(value, out, path)
            is Float -> {
                if (value.isNaN() || value.isInfinite()) refuse(path) { "$it is $value, which JSON cannot hold" }
                out.append(value.toString()) // 0.1f stays "0.1"
            }
            is Number -> writeFloating(value.toDouble(), out, path)
            is Map<*, *> -> {
                out.append('{')
                var first = true
                for ((key, item) in value) {
                    if (key !is String) refuse(path) { "$it has a key that is not a string: $key" }
                    if (!first) out.append(',')
                    first = false
                    writeString(key, out)
                    out.append(':')
                    write(item, out, if (path == null) null else "$path.$key", depth + 1)
                }
                out.append('}')
            }
            is Iterable<*> -> writeList(value.iterator(), out, path, depth)
            is Array<*> -> writeList(value.iterator(), out, path, depth)
            is IntArray -> writeList(value.iterator(), out, path, depth)
            is LongArray -> writeList(value.iterator(), out, path, depth)
            is ShortArray -> writeList(value.iterator(), out, path, depth)
            is ByteArray -> writeList(value.iterator(), out, path, depth)
            is DoubleArray -> writeList(value.iterator(), out, path, depth)
            is FloatArray -> writeList(value.iterator(), out, path, depth)
            is BooleanArray -> writeList(value.iterator(), out, path, depth)
            else -> refuse(path) { "$it is a ${value.javaClass.name}; use strings, numbers, booleans, null, maps and lists" }
        }
    }

    private fun writeList(items: Iterator<*>, out: Appendable, path: String?, depth: Int) {
        out.append('[')
        var index = 0
        for (item in items) {
            if (index > 0) out.append(',')
            write(item, out, if (path == null) null else "$path[$index]", depth + 1)
            index++
        }
        out.append(']')
    }

    /** Digits straight into [out]: no String per number on the hot path. */
    private fun writeInteger(value: Long, out: Appendable) {
        if (value == Long.MIN_VALUE) {
            out.append(value.toString())
            return
        }
        var rest = value
        if (rest < 0) {
            out.append('-')
            rest = -rest
        }
        var divisor = 1L
        while (rest / divisor >= 10) divisor *= 10
        while (divisor > 0) {
            out.append('0' + (rest / divisor).toInt())
            rest %= divisor
            divisor /= 10
        }
    }

    private fun writeFloating(value: Double, out: Appendable, path: String?) {
        if (value.isNaN() || value.isInfinite()) refuse(path) { "$it is $value, which JSON cannot hold" }
        // Double.toString gives "1.0", "1.0E-7", "1.5E10": all valid JSON numbers.
        out.append(value.toString())
    }

    private fun writeString(value: CharSequence, out: Appendable) {
        out.append('"')
        for (index in 0 until value.length) {
            val c = value[index]
            when (c) {
                '"' -> out.append("\\\"")
                '\\' -> out.append("\\\\")
                '\n' -> out.append("\\n")
                '\r' -> out.append("\\r")
                '\t' -> out.append("\\t")
                '\b' -> out.append("\\b")
                '\u000C' -> out.append("\\f")
                else -> if (c < ' ') {
                    val code = c - '\u0000'
                    out.append("\\u00").append(HEX[code shr 4]).append(HEX[code and 0xF])
                } else {
                    out.append(c)
                }
            }
        }
        out.append('"')
    }

    private const val HEX = "0123456789abcdef"
}
