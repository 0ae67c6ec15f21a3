package io.stint

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Test

/** Consent, deletion and the network switch: the binding's surface of the C API's privacy calls. */
class PrivacyTest : StintTestBase() {
    private val uuid = Regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

    private fun options(requireConsent: Boolean = false, baseUrl: String? = null) =
        StintOptions(dataDirectory = dataDirectory, baseUrl = baseUrl, requireConsent = requireConsent)

    @Test
    fun trackingEnabledRoundTripsAndPersistsAcrossShutdownAndInitialize() {
        Stint.initialize("kotlin-privacy-key", options())
        assertEquals("enabled without requireConsent", true, Stint.trackingEnabled)
        assertEquals(StintStatus.OK, Stint.openSession())
        assertEquals(1L, Stint.stats.datapointsPending)

        Stint.trackingEnabled = false
        assertEquals(false, Stint.trackingEnabled)
        assertEquals("disabling deletes what was not delivered", 0L, Stint.stats.datapointsPending)
        assertEquals("the open session is dropped", null, Stint.sessionId)
        // Disabled: the calls succeed and record nothing.
        assertEquals(StintStatus.OK, Stint.openSession())
        assertEquals(StintStatus.OK, Stint.logCustomEvent("ignored"))
        assertEquals(StintStatus.OK, Stint.changeUser("nobody"))
        assertEquals("nothing recorded while disabled", 0L, Stint.stats.datapointsPending)
        assertEquals(null, Stint.sessionId)
        Stint.shutdown(PATIENCE)

        Stint.initialize("kotlin-privacy-key", options())
        assertEquals("the choice survives a restart", false, Stint.trackingEnabled)
        Stint.trackingEnabled = true
        assertEquals(true, Stint.trackingEnabled)
        assertEquals(StintStatus.OK, Stint.openSession())
        assertNotNull("enabled again: the next openSession starts a session", Stint.sessionId)
        Stint.shutdown(PATIENCE)

        Stint.initialize("kotlin-privacy-key", options(requireConsent = true))
        assertEquals("a saved choice wins over requireConsent", true, Stint.trackingEnabled)
    }

    @Test
    fun requireConsentStartsDisabledUntilTrackingIsEnabled() {
        Stint.initialize("kotlin-privacy-key", options(requireConsent = true))
        assertEquals(false, Stint.trackingEnabled)
        assertEquals(StintStatus.OK, Stint.openSession())
        assertEquals(StintStatus.OK, Stint.logCustomEvent("before consent"))
        assertEquals("nothing recorded before consent", 0L, Stint.stats.datapointsRecorded)
        assertEquals(null, Stint.sessionId)

        Stint.trackingEnabled = true
        assertEquals(true, Stint.trackingEnabled)
        assertEquals(StintStatus.OK, Stint.openSession())
        assertEquals(StintStatus.OK, Stint.logCustomEvent("after consent"))
        assertEquals(2L, Stint.stats.datapointsRecorded)
    }

    @Test
    fun deviceIdIsAUuidThatWipeDataReplaces() {
        Stint.initialize("kotlin-privacy-key", options())
        val before = Stint.deviceId
        assertNotNull(before)
        assertEquals(36, before!!.length)
        assertTrue(before, uuid.matches(before))
        assertEquals("stable while nothing is wiped", before, Stint.deviceId)
        Stint.changeUser("wiped-user")
        Stint.openSession()
        Stint.logCustomEvent("before wipe")

        assertEquals(StintStatus.OK, Stint.wipeData())
        val after = Stint.deviceId
        assertNotNull(after)
        assertTrue(after!!, uuid.matches(after))
        assertNotEquals("a new device id after the wipe", before, after)
        assertEquals("no session after the wipe", null, Stint.sessionId)
        assertEquals("nothing left to send", 0L, Stint.stats.datapointsPending)
        assertEquals("the tracking choice is kept", true, Stint.trackingEnabled)
        Stint.shutdown(PATIENCE)

        Stint.initialize("kotlin-privacy-key", options())
        assertEquals("the new id is the saved one", after, Stint.deviceId)
        assertEquals(null, Stint.sessionId)
        assertEquals(0L, Stint.stats.datapointsPending)
    }

    @Test
    fun networkDisabledThenEnabledDeliversEverything() {
        TestCollector.reset()
        Stint.initialize("kotlin-privacy-key", options(baseUrl = TestCollector.url).copy(flushIntervalInSeconds = 1))
        assertEquals(StintStatus.OK, Stint.setNetworkEnabled(false))
        Stint.openSession()
        val session = Stint.sessionId
        for (i in 1..20) assertEquals(StintStatus.OK, Stint.logCustomEvent("offline", mapOf("i" to i)))
        // Recording goes on; nothing is sent, and flush says so at once instead of waiting.
        val error = assertThrowsStatus(StintStatus.TIMEOUT) { Stint.flush(PATIENCE) }
        assertTrue(error.message, error.message.contains("network"))
        Stint.requestImmediateDataFlush()
        Thread.sleep(2500) // more than two flush intervals
        assertEquals(21L, Stint.stats.datapointsPending)
        assertEquals(0L, Stint.stats.datapointsDelivered)
        assertEquals(emptyList<Any?>(), TestCollector.datapoints().filter { it["session_id"] == session })

        assertEquals(StintStatus.OK, Stint.setNetworkEnabled(true))
        Stint.flush(PATIENCE)
        assertEquals(0L, Stint.stats.datapointsPending)
        val points = TestCollector.datapoints().filter { it["session_id"] == session }
        assertEquals(listOf("ss") + List(20) { "ce" }, points.map { it["name"] })
        assertEquals((1..20).map { it.toLong() }, points.drop(1).map { ((it["data"] as Map<*, *>)["p"] as Map<*, *>)["i"] })
    }

    @Test
    fun theNetworkIsEnabledAgainByEachInitialize() {
        TestCollector.reset()
        Stint.initialize("kotlin-privacy-key", options(baseUrl = TestCollector.url))
        Stint.setNetworkEnabled(false)
        Stint.openSession()
        val session = Stint.sessionId
        shutdownQuietly() // TIMEOUT: the ss stays queued for the next run
        Stint.initialize("kotlin-privacy-key", options(baseUrl = TestCollector.url))
        Stint.flush(PATIENCE)
        assertEquals(listOf("ss"), TestCollector.datapoints().filter { it["session_id"] == session }.map { it["name"] })
    }

    @Test
    fun appVersionReachesTheCollectorWithTheSessionStartAndABadOneIsNamed() {
        val error = assertThrowsStatus(StintStatus.INVALID_ARGUMENT) {
            Stint.initialize("kotlin-privacy-key", StintOptions(dataDirectory = dataDirectory, appVersion = "x".repeat(65)))
        }
        assertTrue(error.message, error.message.contains("appVersion"))
        assertThrowsStatus(StintStatus.INVALID_ARGUMENT) {
            Stint.initialize("kotlin-privacy-key", StintOptions(dataDirectory = dataDirectory, appVersion = "1.0\n"))
        }
        TestCollector.reset()
        Stint.initialize(
            "kotlin-privacy-key",
            StintOptions(dataDirectory = dataDirectory, baseUrl = TestCollector.url, appVersion = "3.1.4 (build 15)")
        )
        assertEquals(StintStatus.OK, Stint.openSession())
        val session = Stint.sessionId
        Stint.flush(PATIENCE)
        val start = TestCollector.datapoints().single { it["session_id"] == session && it["name"] == "ss" }
        assertEquals("the session start carries it", "3.1.4 (build 15)", (start["data"] as Map<*, *>)["app_version"])
    }
}
