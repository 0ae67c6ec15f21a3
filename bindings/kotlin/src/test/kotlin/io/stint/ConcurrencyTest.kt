package io.stint

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.time.Duration
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean

class ConcurrencyTest : StintTestBase() {
    private fun runThreads(count: Int, body: (Int) -> Unit): List<Throwable> {
        val failures = Collections.synchronizedList(ArrayList<Throwable>())
        val start = CountDownLatch(1)
        val threads = (0 until count).map { index ->
            Thread {
                try {
                    start.await()
                    body(index)
                } catch (error: Throwable) {
                    failures.add(error)
                }
            }.apply { start() }
        }
        start.countDown()
        for (thread in threads) {
            thread.join(TimeUnit.MINUTES.toMillis(5))
            assertTrue("thread finished", !thread.isAlive)
        }
        return failures
    }

    @Test
    fun eightThreadsLogFourThousandEventsAndTheCollectorGetsEachOnce() {
        TestCollector.reset()
        Stint.initialize("kotlin-concurrency-key", StintOptions(dataDirectory = dataDirectory, baseUrl = TestCollector.url, flushIntervalInSeconds = 1))
        Stint.openSession()
        val session = Stint.sessionId
        val threads = 8
        val perThread = 500
        val failures = runThreads(threads) { thread ->
            for (i in 0 until perThread) {
                assertEquals(StintStatus.OK, Stint.logCustomEvent("concurrent", mapOf("thread" to thread, "i" to i)))
                when (i % 100) {
                    0 -> assertEquals(session, Stint.sessionId)
                    25 -> Stint.stats
                    50 -> Stint.requestImmediateDataFlush()
                    75 -> Stint.openSession() // activity only: the session is open
                }
            }
        }
        assertEquals("no call failed", emptyList<Throwable>(), failures)
        Stint.flush(Duration.ofSeconds(120))
        val stats = Stint.stats
        assertEquals(1L + threads * perThread, stats.datapointsRecorded)
        assertEquals(0L, stats.datapointsPending)
        assertEquals(0L, stats.datapointsDropped)

        val events = TestCollector.datapoints().filter { it["name"] == "ce" && (it["data"] as Map<*, *>)["n"] == "concurrent" }
        assertEquals("distinct ids", threads * perThread, events.map { it["id"] }.toSet().size)
        val pairs = events.map { (it["data"] as Map<*, *>)["p"] as Map<*, *> }.map { it["thread"] to it["i"] }.toSet()
        assertEquals(threads * perThread, pairs.size)
        assertTrue(events.all { it["session_id"] == session })
    }

    @Test
    fun callsDuringRepeatedInitializeAndShutdownOnlySeeOkOrNotInitialized() {
        val stop = AtomicBoolean(false)
        val unexpected = Collections.synchronizedList(ArrayList<String>())
        // Thousands of NOT_INITIALIZED reports between the runs: counted here, not printed.
        val reports = java.util.concurrent.atomic.AtomicLong()
        Stint.setLogHandler { _, _ -> reports.incrementAndGet() }
        val callers = (0 until 4).map { index ->
            Thread {
                var i = 0
                while (!stop.get()) {
                    try {
                        // Fire-and-forget calls return their status; the queries throw.
                        val status = when (i++ % 5) {
                            0 -> Stint.openSession()
                            1 -> Stint.logCustomEvent("racing", mapOf("thread" to index))
                            2 -> { Stint.sessionId; StintStatus.OK }
                            3 -> { Stint.stats; StintStatus.OK }
                            else -> Stint.changeUser("user-$index")
                        }
                        if (status != StintStatus.OK && status != StintStatus.NOT_INITIALIZED) unexpected.add("status $status")
                    } catch (error: StintException) {
                        if (error.status != StintStatus.NOT_INITIALIZED) unexpected.add(error.toString())
                    } catch (error: Throwable) {
                        unexpected.add(error.toString())
                    }
                }
            }.apply { start() }
        }
        try {
            for (cycle in 1..15) {
                Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
                Thread.sleep(20)
                Stint.shutdown(PATIENCE)
            }
        } finally {
            stop.set(true)
            for (caller in callers) caller.join(TimeUnit.MINUTES.toMillis(2))
        }
        assertEquals(emptyList<String>(), unexpected)
        assertTrue("the calls between runs were reported", reports.get() > 0)
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        assertTrue("the racing calls were recorded", Stint.stats.datapointsPending > 0)
    }
}
