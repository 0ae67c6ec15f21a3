package io.stint

import io.stint.StintSessionEvent.Kind
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.math.BigDecimal
import java.math.BigInteger

class OptionsTest : StintTestBase() {
    @Test
    fun defaultsAreTheCApiDefaultsButKeepOpenWhileForegroundIsTrue() {
        assertEquals(
            """{"sessionTimeoutInSeconds":1800,"keepOpenWhileForeground":true,"flushIntervalInSeconds":10,""" +
                """"maxQueuedDatapoints":100000,"logLevel":"warn"}""",
            StintOptions().toJson()
        )
        assertEquals(true, StintOptions().keepOpenWhileForeground)
        assertEquals(true, (TestJson.parse(StintOptions(dataDirectory = "/d", baseUrl = "https://c.example").toJson()) as Map<*, *>)["keepOpenWhileForeground"])
        assertEquals(false, (TestJson.parse(StintOptions(keepOpenWhileForeground = false).toJson()) as Map<*, *>)["keepOpenWhileForeground"])
    }

    @Test
    fun requireConsentAndAppVersionAreWrittenOnlyWhenSet() {
        val options = StintOptions(requireConsent = true, appVersion = "2.4.1 (build 77)")
        val parsed = TestJson.parse(options.toJson()) as Map<*, *>
        assertEquals(true, parsed["requireConsent"])
        assertEquals("2.4.1 (build 77)", parsed["appVersion"])
        val defaults = TestJson.parse(StintOptions().toJson()) as Map<*, *>
        assertTrue("false is the library's default: $defaults", !defaults.containsKey("requireConsent"))
        assertTrue("no appVersion unless set: $defaults", !defaults.containsKey("appVersion"))
    }

    @Test
    fun everyKeyIsSerialised() {
        val options = StintOptions(
            sessionTimeoutInSeconds = 60,
            keepOpenWhileForeground = false,
            dataDirectory = "/data/user/0/com.example/files/stint",
            baseUrl = "https://collector.example.com",
            flushIntervalInSeconds = 30,
            maxQueuedDatapoints = 5000,
            logLevel = StintLogLevel.DEBUG,
            requireConsent = true,
            appVersion = "1.2.3"
        )
        assertEquals(
            """{"sessionTimeoutInSeconds":60,"keepOpenWhileForeground":false,""" +
                """"dataDirectory":"/data/user/0/com.example/files/stint","baseUrl":"https://collector.example.com",""" +
                """"flushIntervalInSeconds":30,"maxQueuedDatapoints":5000,"logLevel":"debug",""" +
                """"requireConsent":true,"appVersion":"1.2.3"}""",
            options.toJson()
        )
        val names = StintLogLevel.values().map { StintOptions(logLevel = it).toJson() }
            .map { (TestJson.parse(it) as Map<*, *>)["logLevel"] }
        assertEquals(listOf("off", "error", "warn", "info", "debug"), names)
    }

    @Test
    fun pathsAreEscaped() {
        val awkward = "/tmp/a \"quoted\" \\ back\\slash/\u00e9\u4e2d\uD83D\uDE00/tab\there/nl\n/\u0001\u001f\u007f"
        val json = StintOptions(dataDirectory = awkward).toJson()
        assertTrue(json, json.contains(""""dataDirectory":"/tmp/a \"quoted\" \\ back\\slash/"""))
        assertTrue(json, json.contains("""tab\there/nl\n/\u0001\u001f"""))
        assertEquals(awkward, (TestJson.parse(json) as Map<*, *>)["dataDirectory"])
    }

    @Test
    fun propertiesOfEveryKindAreSerialised() {
        val properties = linkedMapOf<String, Any?>(
            "s" to "text \"q\" \\ \u0000 \b\u000C\n\r\t \u2028 ü",
            "i" to 42,
            "l" to 9007199254740993L,
            "neg" to -7,
            "d" to 2.5,
            "tiny" to 1.0E-7,
            "f" to 0.5f,
            "big" to BigInteger("123456789012345678901234567890"),
            "dec" to BigDecimal("0.1"),
            "t" to true,
            "no" to false,
            "null" to null,
            "c" to 'x',
            "list" to listOf(1, "a", null, listOf<Any>()),
            "array" to arrayOf("x", 2),
            "ints" to intArrayOf(1, 2),
            "nested" to mapOf("deeper" to mapOf("deepest" to listOf(mapOf("k" to "v")))),
            "empty" to emptyMap<String, Any>()
        )
        val json = StintJson.encode(properties)
        assertEquals(
            """{"s":"text \"q\" \\ \u0000 \b\f\n\r\t """ + "\u2028" + """ ü","i":42,"l":9007199254740993,"neg":-7,""" +
                """"d":2.5,"tiny":1.0E-7,"f":0.5,"big":123456789012345678901234567890,"dec":0.1,"t":true,"no":false,""" +
                """"null":null,"c":"x","list":[1,"a",null,[]],"array":["x",2],"ints":[1,2],""" +
                """"nested":{"deeper":{"deepest":[{"k":"v"}]}},"empty":{}}""",
            json
        )
        val parsed = TestJson.parse(json) as Map<*, *>
        assertEquals(properties["s"], parsed["s"])
        assertEquals(9007199254740993L, parsed["l"])
    }

    @Test
    fun valuesJsonCannotHoldAreRefused() {
        val nan = assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { StintJson.encode(mapOf("a" to listOf(1, Double.POSITIVE_INFINITY)), "properties") }
        assertTrue(nan.message, nan.message.startsWith("properties.a[1]"))
        val key = assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { StintJson.encode(mapOf("m" to mapOf(1 to 2)), "properties") }
        assertTrue(key.message, key.message.contains("properties.m"))
        val type = assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { StintJson.encode(mapOf("o" to Any()), "properties") }
        assertTrue(type.message, type.message.contains("java.lang.Object"))
    }

    /**
     * Every key through stint_initialize, each checked by what it does: an unknown key or a
     * wrong type would be refused, a key ignored would show in the behaviour.
     */
    @Test
    fun everyKeyTakesEffectThroughInitialize() {
        TestCollector.reset()
        val logs = Inbox<Pair<StintLogLevel, String>>()
        Stint.setLogHandler { level, message -> logs.add(level to message) }
        val sessions = recordSessions()
        Stint.initialize(
            "kotlin-options-key",
            StintOptions(
                sessionTimeoutInSeconds = 1,
                keepOpenWhileForeground = true,
                dataDirectory = dataDirectory,
                baseUrl = TestCollector.url,
                flushIntervalInSeconds = 1,
                maxQueuedDatapoints = 100000,
                logLevel = StintLogLevel.INFO
            )
        )
        // logLevel "info": the info line of initialize reaches the handler.
        val initialized = logs.next("the info message of initialize")
        assertEquals(StintLogLevel.INFO, initialized.first)
        assertTrue(initialized.second, initialized.second.contains("initialized"))
        // dataDirectory: created, and locked by this process.
        assertTrue(File(dataDirectory, "lock").isFile)

        Stint.openSession()
        val started = sessions.next("the start")
        // keepOpenWhileForeground: well past the 1 s timeout, the foreground session stays open.
        Thread.sleep(3000)
        assertTrue("no end while in the foreground: ${sessions.drain()}", sessions.isEmpty())
        assertEquals(started.sessionId, Stint.sessionId)
        // sessionTimeoutInSeconds: once in the background, it ends 1 s after the last activity.
        Stint.closeSession()
        val ended = sessions.next("the end after the timeout")
        assertEquals(Kind.ENDED, ended.kind)
        assertEquals(started.sessionId, ended.sessionId)
        assertTrue("ended at its last activity, > 3 s after the start: $ended", ended.endTime - ended.startTime >= 2.9)

        // baseUrl + flushIntervalInSeconds: delivered with no flush call.
        TestCollector.awaitDatapoints("the session's start and end") { points ->
            points.filter { it["session_id"] == started.sessionId }.map { it["name"] } == listOf("ss", "se")
        }
        Stint.shutdown(PATIENCE)

        // maxQueuedDatapoints (and logLevel "warn"): the oldest custom events are dropped, with a warning.
        logs.drain()
        Stint.initialize(
            "kotlin-options-key",
            StintOptions(dataDirectory = File(temp, "small").absolutePath, maxQueuedDatapoints = 100, logLevel = StintLogLevel.WARN)
        )
        for (i in 1..150) Stint.logCustomEvent("filler", mapOf("i" to i))
        val stats = Stint.stats
        assertEquals(150L, stats.datapointsRecorded)
        assertEquals(100L, stats.datapointsPending)
        assertEquals(50L, stats.datapointsDropped)
        // Messages arrive in order: the info line of this initialize would come before the warning.
        val before = ArrayList<Pair<StintLogLevel, String>>()
        var next = logs.next("the warning about dropped datapoints")
        while (next.first != StintLogLevel.WARN) {
            before.add(next)
            next = logs.next("the warning about dropped datapoints")
        }
        assertTrue("dropped datapoints are logged: $next", next.second.contains("drop"))
        assertTrue("no info line at logLevel warn: $before", before.none { it.first == StintLogLevel.INFO && it.second.contains("initialized") })
    }
}
