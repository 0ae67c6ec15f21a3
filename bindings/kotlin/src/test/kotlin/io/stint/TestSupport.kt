package io.stint

import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.fail
import org.junit.Before
import java.io.File
import java.net.HttpURLConnection
import java.net.URI
import java.nio.file.Files
import java.time.Duration
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/** Generous waits: the tests run on a slow, shared 2-core machine. */
val PATIENCE: Duration = Duration.ofSeconds(60)

/** A minimal JSON reader for the tests: objects become maps, arrays lists, integers Long. */
object TestJson {
    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipSpace()
        if (reader.pos != text.length) throw IllegalArgumentException("trailing text at ${reader.pos}: $text")
        return value
    }

    private class Reader(val text: String) {
        var pos = 0

        fun skipSpace() {
            while (pos < text.length && (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t')) pos++
        }

        fun value(): Any? {
            skipSpace()
            if (pos >= text.length) throw IllegalArgumentException("unexpected end of JSON")
            val c = text[pos]
            return when {
                c == '{' -> obj()
                c == '[' -> array()
                c == '"' -> string()
                text.startsWith("true", pos) -> { pos += 4; true }
                text.startsWith("false", pos) -> { pos += 5; false }
                text.startsWith("null", pos) -> { pos += 4; null }
                else -> number()
            }
        }

        fun obj(): Map<String, Any?> {
            val map = LinkedHashMap<String, Any?>()
            pos++
            skipSpace()
            if (text[pos] == '}') { pos++; return map }
            while (true) {
                skipSpace()
                val key = string()
                skipSpace()
                expect(':')
                map[key] = value()
                skipSpace()
                if (text[pos] == ',') { pos++; continue }
                expect('}')
                return map
            }
        }

        fun array(): List<Any?> {
            val list = ArrayList<Any?>()
            pos++
            skipSpace()
            if (text[pos] == ']') { pos++; return list }
            while (true) {
                list.add(value())
                skipSpace()
                if (text[pos] == ',') { pos++; continue }
                expect(']')
                return list
            }
        }

        fun string(): String {
            expect('"')
            val out = StringBuilder()
            while (true) {
                val c = text[pos++]
                when {
                    c == '"' -> return out.toString()
                    c == '\\' -> {
                        val e = text[pos++]
                        when (e) {
                            '"' -> out.append('"')
                            '\\' -> out.append('\\')
                            '/' -> out.append('/')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000C')
                            'u' -> {
                                out.append(Integer.parseInt(text.substring(pos, pos + 4), 16).toChar())
                                pos += 4
                            }
                            else -> throw IllegalArgumentException("bad escape \\$e")
                        }
                    }
                    c < ' ' -> throw IllegalArgumentException("raw control character in a JSON string")
                    else -> out.append(c)
                }
            }
        }

        fun number(): Any {
            val start = pos
            while (pos < text.length && "+-0123456789.eE".indexOf(text[pos]) >= 0) pos++
            val literal = text.substring(start, pos)
            if (literal.length == 0) throw IllegalArgumentException("unexpected '${text[pos]}' at $pos")
            return if (literal.indexOf('.') < 0 && literal.indexOf('e') < 0 && literal.indexOf('E') < 0) {
                try {
                    literal.toLong()
                } catch (tooBig: NumberFormatException) {
                    java.math.BigInteger(literal)
                }
            } else {
                literal.toDouble()
            }
        }

        fun expect(c: Char) {
            if (pos >= text.length || text[pos] != c) throw IllegalArgumentException("expected '$c' at $pos in $text")
            pos++
        }
    }
}

/** The loopback collector started by test.sh; its URL comes in the `stint.collector.url` property. */
object TestCollector {
    val url: String by lazy {
        val value = System.getProperty("stint.collector.url")
        if (value == null || value.length == 0) {
            throw IllegalStateException("set -Dstint.collector.url (test.sh starts the collector)")
        }
        value.trimEnd('/')
    }

    fun reset() {
        post("/admin/faults", "{}")
        post("/admin/reset", "")
    }

    fun setFaults(json: String) {
        post("/admin/faults", json)
    }

    /** The de-duplicated datapoints the collector received, in arrival order. */
    @Suppress("UNCHECKED_CAST")
    fun datapoints(): List<Map<String, Any?>> =
        (get("/api/datapoints") as Map<String, Any?>)["datapoints"] as List<Map<String, Any?>>

    @Suppress("UNCHECKED_CAST")
    fun users(): List<Map<String, Any?>> = (get("/api/users") as Map<String, Any?>)["users"] as List<Map<String, Any?>>

    /** Polls until [predicate] holds for the datapoints, failing after [PATIENCE]. */
    fun awaitDatapoints(what: String, predicate: (List<Map<String, Any?>>) -> Boolean): List<Map<String, Any?>> {
        val deadline = System.nanoTime() + PATIENCE.toNanos()
        while (true) {
            val points = datapoints()
            if (predicate(points)) return points
            if (System.nanoTime() > deadline) fail("the collector never got $what; it has ${points.size} datapoints: $points")
            Thread.sleep(200)
        }
    }

    private fun get(path: String): Any? = TestJson.parse(request("GET", path, null))

    private fun post(path: String, body: String) {
        request("POST", path, body)
    }

    private fun request(method: String, path: String, body: String?): String {
        val connection = URI(url + path).toURL().openConnection() as HttpURLConnection
        connection.requestMethod = method
        connection.connectTimeout = 10000
        connection.readTimeout = 30000
        if (body != null) {
            connection.doOutput = true
            connection.setRequestProperty("Content-Type", "application/json")
            connection.outputStream.use { it.write(body.toByteArray(Charsets.UTF_8)) }
        }
        val status = connection.responseCode
        val stream = if (status >= 400) connection.errorStream else connection.inputStream
        val text = stream?.use { String(it.readBytes(), Charsets.UTF_8) } ?: ""
        connection.disconnect()
        if (status != 200) throw AssertionError("$method $path -> $status: $text")
        return text
    }
}

/** Collects what a listener receives, for the test thread to wait on. */
class Inbox<T> {
    private val queue = LinkedBlockingQueue<T>()

    fun add(item: T) {
        queue.add(item)
    }

    fun next(what: String): T = queue.poll(PATIENCE.toMillis(), TimeUnit.MILLISECONDS)
        ?: throw AssertionError("timed out waiting for $what")

    fun isEmpty(): Boolean = queue.isEmpty()

    fun drain(): List<T> {
        val items = ArrayList<T>()
        queue.drainTo(items)
        return items
    }
}

/** Runs [block] and returns the [StintException] it must throw. */
fun expectStintException(block: () -> Unit): StintException {
    try {
        block()
    } catch (error: StintException) {
        return error
    }
    throw AssertionError("expected a StintException")
}

fun assertThrowsStatus(status: StintStatus, block: () -> Unit): StintException {
    val error = expectStintException(block)
    assertEquals("status of $error", status, error.status)
    if (error.message.trim().length == 0) throw AssertionError("empty message for $status")
    return error
}

/**
 * Every test starts uninitialized with no listener or log handler and a fresh temp directory;
 * Stint is shut down afterwards whatever happened.
 */
open class StintTestBase {
    lateinit var temp: File

    /** A data directory no other test uses. */
    val dataDirectory: String get() = File(temp, "data").absolutePath

    @Before
    fun startClean() {
        temp = Files.createTempDirectory("stint-kotlin-test").toFile()
        shutdownQuietly()
        Stint.setSessionListener(null)
        Stint.setLogHandler(null)
    }

    @After
    fun cleanUp() {
        shutdownQuietly()
        Stint.setSessionListener(null)
        Stint.setLogHandler(null)
        temp.deleteRecursively()
    }

    fun shutdownQuietly() {
        try {
            Stint.shutdown(Duration.ofSeconds(10))
        } catch (expected: StintException) {
            // NOT_INITIALIZED (nothing to stop) or TIMEOUT (stopped, data kept on disk).
        }
    }

    /** A session listener that files every event into the returned inbox. */
    fun recordSessions(): Inbox<StintSessionEvent> {
        val inbox = Inbox<StintSessionEvent>()
        Stint.setSessionListener { event -> inbox.add(event) }
        return inbox
    }
}
