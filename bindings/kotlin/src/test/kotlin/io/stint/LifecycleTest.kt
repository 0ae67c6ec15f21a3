package io.stint

import io.stint.StintSessionEvent.Kind
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test

class LifecycleTest : StintTestBase() {
    @Test
    fun aFullSessionIsSeenByTheListenerAndAtTheCollector() {
        TestCollector.reset()
        val sessions = recordSessions()
        Stint.initialize("kotlin-lifecycle-key", StintOptions(dataDirectory = dataDirectory, baseUrl = TestCollector.url))
        assertNull("no session before openSession", Stint.sessionId)

        Stint.openSession()
        val first = Stint.sessionId
        assertNotNull(first)
        val started = sessions.next("the first session's start")
        assertEquals(StintSessionEvent(Kind.STARTED, first!!, null, started.startTime, 0.0), started)

        val properties = linkedMapOf<String, Any?>(
            "level" to 3,
            "score" to 1234.5,
            "name" to "Zoë \"the\" \\ one\n",
            "won" to true,
            "nothing" to null,
            "items" to listOf(1, "two", listOf(3), mapOf("four" to 4))
        )
        Stint.logCustomEvent("level_up", properties)

        Stint.changeUser("alice")
        val ended = sessions.next("the first session's end")
        assertEquals(Kind.ENDED, ended.kind)
        assertEquals(first, ended.sessionId)
        assertNull("the anonymous session ends for the anonymous user", ended.userId)
        assertEquals(started.startTime, ended.startTime, 0.0)
        assertTrue("ends at or after its start", ended.endTime >= ended.startTime)
        val second = sessions.next("alice's session start")
        assertEquals(Kind.STARTED, second.kind)
        assertEquals("alice", second.userId)
        assertNotEquals(first, second.sessionId)
        assertEquals(second.sessionId, Stint.sessionId)

        Stint.closeSession()
        assertEquals("closing only records activity", second.sessionId, Stint.sessionId)

        Stint.flush(PATIENCE)
        val stats = Stint.stats
        assertEquals(StintStats(2, 1, 4, 0, 4, 0), stats)

        // Only this run's datapoints: a collector shared by tests may hold others.
        val points = TestCollector.datapoints().filter { it["session_id"] == first || it["session_id"] == second.sessionId }
        val ids = points.map { it["id"] }
        assertEquals("no duplicates", ids.size, ids.toSet().size)
        assertEquals(listOf("ss", "ce", "se", "ss"), points.map { it["name"] })
        val (ss1, ce, se, ss2) = points
        assertEquals(first, ss1["session_id"])
        assertNull(ss1["user_id"])
        assertEquals(first, ce["session_id"])
        assertEquals(mapOf("n" to "level_up", "p" to TestJson.parse(StintJson.encode(properties))), ce["data"])
        assertEquals(first, se["session_id"])
        assertNull(se["user_id"])
        assertEquals(ended.endTime, (se["time"] as Number).toDouble(), 0.001)
        assertEquals(ended.endTime - ended.startTime, ((se["data"] as Map<*, *>)["d"] as Number).toDouble(), 0.002)
        assertEquals(second.sessionId, ss2["session_id"])
        assertEquals("alice", ss2["user_id"])
        assertEquals(second.startTime, (ss2["time"] as Number).toDouble(), 0.001)

        // The dashboard's view: the anonymous row owns the ended session and the custom event.
        val deviceId = java.io.File(dataDirectory, "device_id").readText().trim()
        val users = TestCollector.users().filter { it["device_id"] == deviceId }
        val anonymous = users.single { it["user_id"] == null || it["user_id"] == "" }
        assertEquals(1L, anonymous["sessions"])
        assertEquals(1L, anonymous["sessions_ended"])
        assertEquals(mapOf("level_up" to 1L), anonymous["custom_events"])
        val alice = users.single { it["user_id"] == "alice" }
        assertEquals(1L, alice["sessions"])
        assertEquals(0L, alice["sessions_ended"])
        @Suppress("UNCHECKED_CAST")
        val aliceSessions = alice["last_sessions"] as List<Map<String, Any?>>
        assertEquals(listOf(second.sessionId), aliceSessions.map { it["session_id"] })

        Stint.shutdown(PATIENCE)
        assertEquals(StintStatus.NOT_INITIALIZED, Stint.openSession())
    }

    @Test
    fun aSessionContinuesAcrossShutdownAndInitialize() {
        val sessions = recordSessions()
        Stint.initialize("kotlin-restart-key", StintOptions(dataDirectory = dataDirectory))
        Stint.changeUser("carol")
        Stint.openSession()
        val id = Stint.sessionId
        assertEquals(Kind.STARTED, sessions.next("the start").kind)
        Stint.shutdown(PATIENCE)

        Stint.initialize("kotlin-restart-key", StintOptions(dataDirectory = dataDirectory))
        assertEquals("the saved session comes back within the timeout", id, Stint.sessionId)
        Stint.openSession()
        assertEquals(id, Stint.sessionId)
        val stats = Stint.stats
        assertEquals("nothing new started", 0L, stats.sessionsStarted)
        assertEquals("the first run's datapoint is still queued", 1L, stats.datapointsPending)
    }

    @Test
    fun versionIsTheLibraryVersion() {
        assertTrue(Stint.version, Stint.version.matches(Regex("""\d+\.\d+\.\d+.*""")))
    }
}
