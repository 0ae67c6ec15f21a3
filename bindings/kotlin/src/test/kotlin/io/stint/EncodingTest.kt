package io.stint

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The hot path writes names and properties as UTF-8 straight into reused native buffers
 * (NativeText): what reaches the collector must be exactly what `String.toByteArray(UTF_8)` and
 * [StintJson.encode] give, whatever the text, the buffer's growth, the name cache or reentry.
 */
class EncodingTest : StintTestBase() {
    private fun startWithCollector(): String {
        TestCollector.reset()
        Stint.initialize("kotlin-encoding-key", StintOptions(dataDirectory = dataDirectory, baseUrl = TestCollector.url))
        Stint.openSession()
        return Stint.sessionId!!
    }

    /** The custom events of [session] at the collector, as (name, properties). */
    private fun events(session: String): List<Pair<Any?, Any?>> {
        Stint.flush(PATIENCE)
        return TestCollector.datapoints()
            .filter { it["session_id"] == session && it["name"] == "ce" }
            .map { point -> (point["data"] as Map<*, *>).let { it["n"] to it["p"] } }
    }

    /** What the JDK's encoder makes of [text]: an unpaired surrogate becomes '?'. */
    private fun jdk(text: String) = String(text.toByteArray(Charsets.UTF_8), Charsets.UTF_8)

    @Test
    fun textArrivesAsTheJdksUtf8() {
        val session = startWithCollector()
        val names = listOf(
            "ascii", "caf\u00e9 \u4e2d\u6587", "emoji \uD83D\uDE00", "lone high \uD83D here", "lone low \uDE00 here",
            "ends high \uD83D", "\uD83D\uD83D\uDE00 two highs", "x".repeat(255)
        )
        val properties = linkedMapOf<String, Any?>(
            "caf\u00e9" to "\u4e2d\uD83D\uDE00\uD800?",
            "control" to "\u0000\u0001\u001f \"quoted\" \\",
            "numbers" to listOf(0, -42, Int.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE, 3.5, 1.0e-7, (-7).toShort(), 9.toByte()),
            "nested" to mapOf("list" to listOf(mapOf("k" to null, "\uDE00" to true)))
        )
        for (name in names) assertEquals(name, StintStatus.OK, Stint.logCustomEvent(name, properties))
        // Bigger than the first buffer, several times over: it grows, and the text stays whole.
        val big = mapOf("text" to "\u00e9\uD83D\uDE00".repeat(5000))
        assertEquals(StintStatus.OK, Stint.logCustomEvent("big", big))
        assertEquals(StintStatus.OK, Stint.logCustomEvent("after big", properties))

        val expectedProperties = TestJson.parse(jdk(StintJson.encode(properties)))
        val expected = names.map { jdk(it) to expectedProperties } +
            listOf("big" to TestJson.parse(jdk(StintJson.encode(big))), "after big" to expectedProperties)
        assertEquals(expected, events(session))
    }

    @Test
    fun theNameCacheFollowsTheStringPassed() {
        val session = startWithCollector()
        val first = "first"
        val second = StringBuilder("sec").append("ond").toString()
        assertEquals(StintStatus.OK, Stint.logCustomEvent(first))
        assertEquals(StintStatus.OK, Stint.logCustomEvent(second))
        assertEquals(StintStatus.OK, Stint.logCustomEvent(first))
        assertEquals(StintStatus.INVALID_ARGUMENT, Stint.logCustomEvent("bad\u0000name"))
        assertEquals(StintStatus.OK, Stint.logCustomEvent(first))
        assertEquals(StintStatus.OK, Stint.changeUser("someone")) // the same buffer, another string
        val newSession = Stint.sessionId!!
        assertEquals(StintStatus.OK, Stint.logCustomEvent(first))
        assertEquals(listOf("first", "second", "first", "first"), events(session).map { it.first })
        assertEquals(listOf("first"), events(newSession).map { it.first })
    }

    @Test
    fun aCallFromInsideTheEncoderGetsItsOwnBuffers() {
        val session = startWithCollector()
        var inner = StintStatus.INTERNAL_ERROR
        // A property value whose reading logs an event itself, while the outer call holds the buffers.
        val sneaky = object : CharSequence {
            private val text = "outer value"
            private var logged = false
            override val length get() = text.length
            override fun get(index: Int): Char {
                if (!logged) {
                    logged = true
                    inner = Stint.logCustomEvent("inner", mapOf("from" to "inside"))
                }
                return text[index]
            }
            override fun subSequence(startIndex: Int, endIndex: Int) = text.subSequence(startIndex, endIndex)
            override fun toString() = text
        }
        assertEquals(StintStatus.OK, Stint.logCustomEvent("outer", mapOf("value" to sneaky)))
        assertEquals(StintStatus.OK, inner)
        assertEquals(
            listOf("inner" to mapOf("from" to "inside"), "outer" to mapOf("value" to "outer value")),
            events(session)
        )
    }

    @Test
    fun aValueRefusedOnTheFastPathIsNamedByItsPath() {
        val logs = Inbox<Pair<StintLogLevel, String>>()
        Stint.setLogHandler { level, message -> logs.add(level to message) }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        val properties = mapOf("a" to listOf(1, mapOf("b" to Float.NaN)))
        assertEquals(StintStatus.INVALID_ARGUMENT, Stint.logCustomEvent("e", properties))
        val message = logs.next("the report").second
        assertEquals("logCustomEvent failed: INVALID_ARGUMENT: properties.a[1].b is NaN, which JSON cannot hold", message)
        val error = expectStintException { StintJson.encode(properties, "properties") }
        assertTrue(message.endsWith(error.message))
        assertEquals(StintStatus.OK, Stint.logCustomEvent("e", mapOf("a" to listOf(1, mapOf("b" to 1.5f)))))
    }
}
