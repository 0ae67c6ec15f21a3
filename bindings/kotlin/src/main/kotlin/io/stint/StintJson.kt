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

    /** Deeper than this is refused: a map or list that contains itself would never end. */
    private const val MAX_DEPTH = 64

    private fun write(value: Any?, out: StringBuilder, path: String, depth: Int) {
        if (depth > MAX_DEPTH) throw invalid("$path is nested more than $MAX_DEPTH levels deep (a cycle?)")
        when (value) {
            null -> out.append("null")
            is Boolean -> out.append(if (value) "true" else "false")
            is CharSequence -> writeString(value, out)
            is Char -> writeString(value.toString(), out)
            is Byte, is Short, is Int, is Long, is BigInteger -> out.append(value.toString())
            is BigDecimal -> out.append(value.toString())
            is Double -> writeFloating(value, out, path)
            is Float -> {
                if (value.isNaN() || value.isInfinite()) throw invalid("$path is $value, which JSON cannot hold")
                out.append(value.toString()) // 0.1f stays "0.1"
            }
            is Number -> writeFloating(value.toDouble(), out, path)
            is Map<*, *> -> {
                out.append('{')
                var first = true
                for ((key, item) in value) {
                    if (key !is String) {
                        throw invalid("$path has a key that is not a string: $key")
                    }
                    if (!first) out.append(',')
                    first = false
                    writeString(key, out)
                    out.append(':')
                    write(item, out, "$path.$key", depth + 1)
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
            else -> throw invalid(
                "$path is a ${value.javaClass.name}; use strings, numbers, booleans, null, maps and lists"
            )
        }
    }

    private fun writeList(items: Iterator<*>, out: StringBuilder, path: String, depth: Int) {
        out.append('[')
        var index = 0
        for (item in items) {
            if (index > 0) out.append(',')
            write(item, out, "$path[$index]", depth + 1)
            index++
        }
        out.append(']')
    }

    private fun writeFloating(value: Double, out: StringBuilder, path: String) {
        if (value.isNaN() || value.isInfinite()) {
            throw invalid("$path is $value, which JSON cannot hold")
        }
        // Double.toString gives "1.0", "1.0E-7", "1.5E10": all valid JSON numbers.
        out.append(value.toString())
    }

    private fun writeString(value: CharSequence, out: StringBuilder) {
        out.append('"')
        for (c in value) {
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

    private fun invalid(message: String) = StintException(StintStatus.INVALID_ARGUMENT, message)
}
