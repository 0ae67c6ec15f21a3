package io.stint

import io.stint.StintSessionEvent.Kind
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

class ListenerTest : StintTestBase() {
    private class Inside(val event: StintSessionEvent, val sessionId: String?, val stats: StintStats, val version: String, val thread: Thread)

    @Test
    fun aListenerMayCallBackIntoTheLibrary() {
        val seen = Inbox<Inside>()
        Stint.setSessionListener { event ->
            // Every one of these takes the library's locks: a listener called under one would hang.
            Stint.logCustomEvent("from_listener", mapOf("kind" to event.kind.name))
            Stint.requestImmediateDataFlush()
            seen.add(Inside(event, Stint.sessionId, Stint.stats, Stint.version, Thread.currentThread()))
        }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        Stint.openSession()
        val inside = seen.next("the listener's calls for the start")
        assertEquals(Kind.STARTED, inside.event.kind)
        assertEquals(inside.event.sessionId, inside.sessionId)
        assertEquals(1L, inside.stats.sessionsStarted)
        assertEquals(2L, inside.stats.datapointsRecorded) // ss + its own custom event
        assertEquals(Stint.version, inside.version)
        assertTrue("called on a library thread", inside.thread !== Thread.currentThread())
        assertTrue("the library thread is a daemon", inside.thread.isDaemon)

        Stint.changeUser("erin")
        assertEquals(Kind.ENDED, seen.next("the end").event.kind)
        val restarted = seen.next("the new start")
        assertEquals("erin", restarted.event.userId)
        assertEquals(restarted.event.sessionId, restarted.sessionId)
        assertEquals(6L, Stint.stats.datapointsRecorded) // ss ce se ss + 2 ce
    }

    @Test
    fun aListenerMayShutStintDownAndFlush() {
        val done = CountDownLatch(1)
        Stint.setSessionListener { _ ->
            Stint.flush(PATIENCE)
            Stint.shutdown(PATIENCE)
            done.countDown()
        }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        Stint.openSession()
        assertTrue("the listener finished", done.await(PATIENCE.toMillis(), TimeUnit.MILLISECONDS))
        assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
    }

    @Test
    fun aListenerReplacedFromInsideItselfIsNotCalledAgain() {
        val first = Inbox<StintSessionEvent>()
        val second = Inbox<StintSessionEvent>()
        Stint.setSessionListener { event ->
            first.add(event)
            Stint.setSessionListener { later -> second.add(later) }
        }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        Stint.openSession()
        assertEquals(Kind.STARTED, first.next("the start").kind)
        Stint.changeUser("frank")
        assertEquals(Kind.ENDED, second.next("the end").kind)
        assertEquals(Kind.STARTED, second.next("frank's start").kind)
        assertTrue("the first listener got only the first event", first.isEmpty())
    }

    @Test
    fun noEventReachesARemovedListener() {
        val removed = Inbox<StintSessionEvent>()
        Stint.setSessionListener { event -> removed.add(event) }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        Stint.openSession()
        assertEquals(Kind.STARTED, removed.next("the start").kind)
        Stint.setSessionListener(null)
        Stint.changeUser("gina") // no listener: these events are not even queued
        val later = recordSessions()
        Stint.changeUser("hal")
        val ended = later.next("gina's end")
        assertEquals(Kind.ENDED, ended.kind)
        assertEquals("gina", ended.userId)
        assertEquals("hal", later.next("hal's start").userId)
        assertTrue("the removed listener got nothing more", removed.isEmpty())
    }

    @Test
    fun theListenerSurvivesGarbageCollection() {
        val sessions = recordSessions()
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        for (round in 1..3) {
            var garbage: Any? = null
            for (i in 1..2000) garbage = ByteArray(64 * 1024)
            assertNotNull(garbage)
            System.gc()
        }
        Stint.openSession()
        assertEquals(Kind.STARTED, sessions.next("the start after GC").kind)
    }

    @Test
    fun aThrowingListenerDoesNotStopLaterEvents() {
        val events = Inbox<StintSessionEvent>()
        Stint.setSessionListener { event ->
            events.add(event)
            throw IllegalStateException("thrown on purpose by the test")
        }
        Stint.initialize("key", StintOptions(dataDirectory = dataDirectory))
        Stint.openSession()
        Stint.changeUser("ivy")
        assertEquals(listOf(Kind.STARTED, Kind.ENDED, Kind.STARTED), (1..3).map { events.next("event $it").kind })
    }

    @Test
    fun aLogHandlerReceivesMessagesAtTheChosenLevel() {
        val logs = Inbox<Pair<StintLogLevel, String>>()
        Stint.setLogHandler { level, message -> logs.add(level to message) }
        Stint.initialize("secret-api-key-123", StintOptions(dataDirectory = dataDirectory, logLevel = StintLogLevel.DEBUG))
        val line = logs.next("a log line")
        assertTrue(line.first == StintLogLevel.INFO || line.first == StintLogLevel.DEBUG)
        Stint.shutdown(PATIENCE)
        for ((_, message) in logs.drain() + line) assertTrue("no API key in logs: $message", !message.contains("secret-api-key-123"))
    }
}
