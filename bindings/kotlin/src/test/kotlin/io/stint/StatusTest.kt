package io.stint

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.net.ServerSocket
import java.time.Duration
import java.util.concurrent.TimeUnit

class StatusTest : StintTestBase() {
    @Test
    fun statusCodesHaveTheNumbersOfTheCApi() {
        val expected = listOf(
            "OK" to 0, "INVALID_ARGUMENT" to 1, "NOT_INITIALIZED" to 2, "ALREADY_INITIALIZED" to 3,
            "STORAGE_ERROR" to 4, "DATA_DIRECTORY_LOCKED" to 5, "TIMEOUT" to 6, "INTERNAL_ERROR" to 7
        )
        assertEquals(expected, StintStatus.values().map { it.name to it.code })
        for (status in StintStatus.values()) assertEquals(status, StintStatus.fromCode(status.code))
        assertNull(StintStatus.fromCode(8))
    }

    @Test
    fun fireAndForgetCallsBeforeInitializeReturnNotInitializedWithoutThrowingAndReachTheLogHandler() {
        val logs = Inbox<Pair<StintLogLevel, String>>()
        Stint.setLogHandler { level, message -> logs.add(level to message) }
        val calls = linkedMapOf<String, () -> StintStatus>(
            "openSession" to { Stint.openSession() },
            "closeSession" to { Stint.closeSession() },
            "changeUser" to { Stint.changeUser("dave") },
            "logCustomEvent" to { Stint.logCustomEvent("e", mapOf("k" to 1)) },
            "requestImmediateDataFlush" to { Stint.requestImmediateDataFlush() },
            "setNetworkEnabled" to { Stint.setNetworkEnabled(false) },
            "wipeData" to { Stint.wipeData() }
        )
        for ((name, call) in calls) {
            assertEquals(name, StintStatus.NOT_INITIALIZED, call())
            val (level, message) = logs.next("the report of $name")
            assertEquals(name, StintLogLevel.WARN, level)
            assertTrue(message, message.startsWith("$name failed: NOT_INITIALIZED"))
            assertTrue(message, message.contains("not initialized"))
        }
        Stint.trackingEnabled = false // a setter: nothing to return, reported all the same
        assertTrue(logs.next("the report of trackingEnabled").second.startsWith("trackingEnabled failed: NOT_INITIALIZED"))
        assertEquals("nothing is tracked before initialize", false, Stint.trackingEnabled)
        assertNull(Stint.deviceId)
        assertTrue("queries that answer are not reported: ${logs.drain()}", logs.isEmpty())
    }

    @Test
    fun callsTheAppMustHandleStillThrowNotInitialized() {
        val calls = linkedMapOf<String, () -> Unit>(
            "flush" to { Stint.flush(Duration.ofSeconds(1)) },
            "flushMillis" to { Stint.flush(1000L) },
            "sessionId" to { Stint.sessionId; Unit },
            "stats" to { Stint.stats; Unit },
            "shutdown" to { Stint.shutdown(Duration.ofSeconds(1)) }
        )
        for ((name, call) in calls) {
            val error = assertThrowsStatus(StintStatus.NOT_INITIALIZED, call)
            assertTrue("$name: ${error.message}", error.message.contains("not initialized"))
        }
    }

    @Test
    fun withoutALogHandlerAFailedCallIsReportedOnStandardError() {
        val saved = System.err
        val captured = java.io.ByteArrayOutputStream()
        System.setErr(java.io.PrintStream(captured, true, "UTF-8"))
        val status = try {
            Stint.logCustomEvent("before-initialize")
        } finally {
            System.setErr(saved)
        }
        assertEquals(StintStatus.NOT_INITIALIZED, status)
        val text = captured.toString("UTF-8")
        assertTrue(text, text.contains("stint [warn] logCustomEvent failed: NOT_INITIALIZED"))
    }

    @Test
    fun aThrowingLogHandlerDoesNotMakeAFireAndForgetCallThrow() {
        Stint.setLogHandler { _, _ -> throw IllegalStateException("thrown on purpose by the test") }
        assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
        assertEquals(StintStatus.INVALID_ARGUMENT, Stint.changeUser("a\u0000b"))
    }

    @Test
    fun aLogHandlerWhoseOwnCallFailsIsNotCalledAgainForIt() {
        val seen = Inbox<String>()
        Stint.setLogHandler { _, message ->
            seen.add(message)
            Stint.logCustomEvent("from the handler") // fails too: reported to stderr, not here
        }
        assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
        assertTrue(seen.next("the report").startsWith("openSession failed"))
        assertTrue("one report, no loop: ${seen.drain()}", seen.isEmpty())
    }

    @Test
    fun aLibraryThatCannotBeLoadedMakesFireAndForgetCallsFailQuietlyAndInitializeThrowStintException() {
        // A file that is not a shared library: loading it throws UnsatisfiedLinkError.
        val notALibrary = File(temp, "libnot-stint.so")
        notALibrary.writeText("not a shared object")
        val saved = System.getProperty(StintLibrary.LIBRARY_PATH_PROPERTY)
        System.setProperty(StintLibrary.LIBRARY_PATH_PROPERTY, notALibrary.absolutePath)
        val results = try {
            val isolated = Class.forName("io.stint.IsolatedCalls", true, FreshStintLoader())
            @Suppress("UNCHECKED_CAST")
            isolated.getMethod("run").invoke(null) as List<String>
        } finally {
            if (saved != null) System.setProperty(StintLibrary.LIBRARY_PATH_PROPERTY, saved)
            else System.clearProperty(StintLibrary.LIBRARY_PATH_PROPERTY)
        }
        assertEquals(
            listOf(
                "openSession=INTERNAL_ERROR", "logCustomEvent=INTERNAL_ERROR", "wipeData=INTERNAL_ERROR",
                "trackingEnabled=false", "deviceId=null", "initialize threw INTERNAL_ERROR"
            ),
            results.filter { !it.startsWith("log ") }
        )
        val logs = results.filter { it.startsWith("log ") }
        assertEquals(
            "one report per failed call: $logs",
            listOf("setLogHandler", "openSession", "logCustomEvent", "wipeData", "trackingEnabled", "deviceId"),
            logs.map { it.removePrefix("log ERROR ").substringBefore(" failed: INTERNAL_ERROR: libstint could not be loaded") }
        )
        assertTrue(logs.toString(), logs.all { it.contains("UnsatisfiedLinkError") })
    }

    @Test
    fun aBadOptionIsInvalidArgumentNamingItAndInitializesNothing() {
        val bad = listOf(
            "sessionTimeoutInSeconds" to StintOptions(sessionTimeoutInSeconds = 0),
            "sessionTimeoutInSeconds" to StintOptions(sessionTimeoutInSeconds = 31536001),
            "flushIntervalInSeconds" to StintOptions(flushIntervalInSeconds = 0),
            "maxQueuedDatapoints" to StintOptions(maxQueuedDatapoints = 99),
            "dataDirectory" to StintOptions(dataDirectory = "relative/dir"),
            "baseUrl" to StintOptions(baseUrl = "http://collector.example.com"),
            "baseUrl" to StintOptions(baseUrl = "not a url")
        )
        for ((key, options) in bad) {
            val withDirectory = if (key == "dataDirectory") options else options.copy(dataDirectory = dataDirectory)
            val error = assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.initialize("key", withDirectory) }
            assertTrue("message names $key: ${error.message}", error.message.contains(key))
            assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
        }
        val zero = expectStintException { Stint.initialize("key", StintOptions(sessionTimeoutInSeconds = 0, dataDirectory = dataDirectory)) }
        assertEquals("sessionTimeoutInSeconds must be an integer >= 1, got 0", zero.message)
        assertTrue("nothing was created", !File(dataDirectory).exists())
    }

    @Test
    fun badArgumentsAreInvalidArgumentReturnedNotThrownAndReachTheLogHandler() {
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.initialize("", StintOptions(dataDirectory = dataDirectory)) }
            .message.contains("api_key"))
        val logs = Inbox<Pair<StintLogLevel, String>>()
        Stint.setLogHandler { level, message -> logs.add(level to message) }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        val cyclic = HashMap<String, Any?>()
        cyclic["self"] = cyclic
        // Each call, and the argument the report must name.
        val calls = listOf<Triple<String, String, () -> StintStatus>>(
            Triple("changeUser", "user_id", { Stint.changeUser("") }),
            Triple("changeUser", "user_id", { Stint.changeUser("x".repeat(998)) }),
            Triple("changeUser", "user_id", { Stint.changeUser(null) }),
            Triple("logCustomEvent", "name", { Stint.logCustomEvent("") }),
            Triple("logCustomEvent", "name", { Stint.logCustomEvent("n".repeat(256)) }),
            Triple("logCustomEvent", "name", { Stint.logCustomEvent(null) }),
            Triple("logCustomEvent", "properties_json", { Stint.logCustomEvent("big", mapOf("text" to "x".repeat(60 * 1024))) }),
            // Refused by the binding before C: NUL would cut the string, NaN is no JSON, a cycle never ends.
            Triple("changeUser", "userId", { Stint.changeUser("a\u0000b") }),
            Triple("logCustomEvent", "properties.x", { Stint.logCustomEvent("e", mapOf("x" to Double.NaN)) }),
            Triple("logCustomEvent", "properties.o", { Stint.logCustomEvent("e", mapOf("o" to Any())) }),
            Triple("logCustomEvent", "properties.self", { Stint.logCustomEvent("e", cyclic) })
        )
        for ((name, argument, call) in calls) {
            assertEquals("$name naming $argument", StintStatus.INVALID_ARGUMENT, call())
            var report = logs.next("the report of $name naming $argument")
            // The library's own messages (if any) may come in between.
            while (!report.second.startsWith("$name failed")) report = logs.next("the report of $name naming $argument")
            assertEquals(report.second, StintLogLevel.ERROR, report.first)
            assertTrue(report.second, report.second.startsWith("$name failed: INVALID_ARGUMENT: $argument"))
        }
        assertEquals("no state changed", 0L, Stint.stats.datapointsRecorded)
        assertEquals("a good call after the bad ones records", StintStatus.OK, Stint.logCustomEvent("fine"))
    }

    @Test
    fun withLogLevelOffAFailedCallIsNotReported() {
        val logs = Inbox<Pair<StintLogLevel, String>>()
        Stint.setLogHandler { level, message -> logs.add(level to message) }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory, logLevel = StintLogLevel.OFF))
        assertEquals(StintStatus.INVALID_ARGUMENT, Stint.changeUser(""))
        assertEquals(StintStatus.OK, Stint.openSession())
        Stint.shutdown(PATIENCE)
        assertTrue("nothing reported at logLevel off: ${logs.drain()}", logs.isEmpty())
        // Stopped: the default level (warn) applies again.
        assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
        assertTrue(logs.next("the report after shutdown").second.startsWith("openSession failed: NOT_INITIALIZED"))
    }

    @Test
    fun aMessageLongerThanTheFirstBufferArrivesWhole() {
        // Longer than the binding's first 512-byte buffer, short enough to be shown whole.
        val url = "ftp://" + "a".repeat(700) + ".example.com"
        val error = assertThrowsStatus(StintStatus.INVALID_ARGUMENT) {
            Stint.initialize("key", StintOptions(dataDirectory = dataDirectory, baseUrl = url))
        }
        assertTrue(error.message, error.message.startsWith("baseUrl"))
        assertTrue(error.message, error.message.contains(url))
    }

    @Test
    fun aSecondInitializeIsAlreadyInitialized() {
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        val error = assertThrowsStatus(StintStatus.ALREADY_INITIALIZED) {
            Stint.initialize("key", StintOptions(dataDirectory = File(temp, "other").absolutePath))
        }
        assertTrue(error.message, error.message.contains("already initialized"))
        Stint.openSession() // the first instance still runs
        Stint.shutdown(PATIENCE)
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory)) // and after shutdown it may start again
    }

    @Test
    fun aDataDirectoryLockedByAnotherProcessIsDataDirectoryLocked() {
        val directory = File(dataDirectory)
        assertTrue(directory.mkdirs())
        // flock(1) takes the same flock(2) lock the library takes on <dataDirectory>/lock, and
        // holds it (-o: only flock itself, not its child) until its child `cat` sees end of input.
        val holder = ProcessBuilder("flock", "-n", "-o", File(directory, "lock").path, "sh", "-c", "echo locked; exec cat")
            .redirectErrorStream(true)
            .start()
        try {
            val line = BufferedReader(InputStreamReader(holder.inputStream)).readLine()
            assertEquals("flock holds the lock", "locked", line)
            val error = assertThrowsStatus(StintStatus.DATA_DIRECTORY_LOCKED) {
                Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
            }
            assertTrue(error.message, error.message.contains(dataDirectory))
            assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
        } finally {
            holder.outputStream.close()
            if (!holder.waitFor(30, TimeUnit.SECONDS)) holder.destroyForcibly().waitFor()
        }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory)) // free again
    }

    @Test
    fun aDataDirectoryThatCannotBeCreatedIsStorageError() {
        val file = File(temp, "a-regular-file")
        file.writeText("not a directory")
        val below = File(file, "stint").absolutePath
        val error = assertThrowsStatus(StintStatus.STORAGE_ERROR) { Stint.initialize("key", StintOptions(dataDirectory = below)) }
        assertTrue(error.message, error.message.contains(below))
        assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
    }

    @Test
    fun flushAndShutdownAgainstAClosedPortAreTimeoutAndLoseNothing() {
        val closedPort = ServerSocket(0).use { it.localPort }
        TestCollector.reset()
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory, baseUrl = "http://127.0.0.1:$closedPort"))
        Stint.openSession()
        Stint.logCustomEvent("kept", mapOf("n" to 1))
        val id = Stint.sessionId
        val flushError = assertThrowsStatus(StintStatus.TIMEOUT) { Stint.flush(Duration.ofMillis(1500)) }
        assertTrue(flushError.message, flushError.message.length > 0)
        assertEquals(2L, Stint.stats.datapointsPending)
        assertThrowsStatus(StintStatus.TIMEOUT) { Stint.shutdown(Duration.ofMillis(1000)) }
        assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession()) // shut down all the same

        // The next run sends what the first could not.
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory, baseUrl = TestCollector.url))
        Stint.flush(PATIENCE)
        val points = TestCollector.datapoints().filter { it["session_id"] == id }
        assertEquals(listOf("ss", "ce"), points.map { it["name"] })
    }

    @Test
    fun flushAgainstAHangingCollectorIsTimeoutThenDelivers() {
        TestCollector.reset()
        TestCollector.setFaults("""{"hang_next": 1}""")
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory, baseUrl = TestCollector.url))
        Stint.openSession()
        val id = Stint.sessionId
        assertThrowsStatus(StintStatus.TIMEOUT) { Stint.flush(Duration.ofMillis(1500)) }
        // The hung request times out inside the library (30 s), then the retry goes through.
        Stint.flush(Duration.ofSeconds(120))
        assertEquals(listOf("ss"), TestCollector.datapoints().filter { it["session_id"] == id }.map { it["name"] })
        assertEquals(0L, Stint.stats.datapointsPending)
    }

    // INTERNAL_ERROR (7) is a caught panic inside the library: nothing a caller does can cause
    // one, so it is only covered by statusCodesHaveTheNumbersOfTheCApi.
}
