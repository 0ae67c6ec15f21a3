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
    fun everyCallBeforeInitializeIsNotInitialized() {
        val calls = linkedMapOf<String, () -> Unit>(
            "openSession" to { Stint.openSession() },
            "closeSession" to { Stint.closeSession() },
            "changeUser" to { Stint.changeUser("dave") },
            "logCustomEvent" to { Stint.logCustomEvent("e", mapOf("k" to 1)) },
            "requestImmediateDataFlush" to { Stint.requestImmediateDataFlush() },
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
            assertThrowsStatus(StintStatus.NOT_INITIALIZED) { Stint.openSession() }
        }
        val zero = expectStintException { Stint.initialize("key", StintOptions(sessionTimeoutInSeconds = 0, dataDirectory = dataDirectory)) }
        assertEquals("sessionTimeoutInSeconds must be an integer >= 1, got 0", zero.message)
        assertTrue("nothing was created", !File(dataDirectory).exists())
    }

    @Test
    fun badArgumentsAreInvalidArgumentNamingThem() {
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.initialize("", StintOptions(dataDirectory = dataDirectory)) }
            .message.contains("api_key"))
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.changeUser("") }.message.contains("user_id"))
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.changeUser("x".repeat(998)) }.message.contains("user_id"))
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.logCustomEvent("") }.message.contains("name"))
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.logCustomEvent("n".repeat(256)) }.message.contains("name"))
        // Refused by the binding before C: NUL would cut the string, NaN is no JSON.
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.changeUser("a\u0000b") }.message.contains("userId"))
        assertTrue(assertThrowsStatus(StintStatus.INVALID_ARGUMENT) { Stint.logCustomEvent("e", mapOf("x" to Double.NaN)) }
            .message.contains("properties.x"))
        assertEquals("no state changed", 0L, Stint.stats.datapointsRecorded)
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
            assertThrowsStatus(StintStatus.NOT_INITIALIZED) { Stint.openSession() }
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
        assertThrowsStatus(StintStatus.NOT_INITIALIZED) { Stint.openSession() }
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
        assertThrowsStatus(StintStatus.NOT_INITIALIZED) { Stint.openSession() } // shut down all the same

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
