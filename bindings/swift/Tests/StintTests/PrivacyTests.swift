import Foundation
import XCTest

@testable import Stint

/// Consent, deletion and the network switch: the binding's surface of the C API's privacy calls.
final class PrivacyTests: StintTestCase {
    private func options(requireConsent: Bool? = nil) -> StintOptions {
        var options = makeOptions()
        options.requireConsent = requireConsent
        return options
    }

    func testTrackingEnabledRoundTripsAndPersistsAcrossShutdownAndInitialize() throws {
        try Stint.initialize(apiKey: "swift-test-key", options: options())
        XCTAssertTrue(Stint.isTrackingEnabled, "enabled without requireConsent")
        Stint.openSession()
        XCTAssertEqual(try Stint.stats.datapointsPending, 1)

        Stint.isTrackingEnabled = false
        XCTAssertFalse(Stint.isTrackingEnabled)
        XCTAssertEqual(try Stint.stats.datapointsPending, 0, "disabling deletes what was not delivered")
        XCTAssertNil(try Stint.sessionID, "the open session is dropped")
        XCTAssertNoThrow(try Stint.openSession().get(), "calls succeed while disabled")
        XCTAssertNoThrow(try Stint.logCustomEvent("ignored").get())
        XCTAssertEqual(try Stint.stats.datapointsPending, 0, "and record nothing")
        try Stint.shutdown()

        try Stint.initialize(apiKey: "swift-test-key", options: options())
        XCTAssertFalse(Stint.isTrackingEnabled, "the choice survives a restart")
        XCTAssertNoThrow(try Stint.setTrackingEnabled(true).get())
        XCTAssertTrue(Stint.isTrackingEnabled)
        Stint.openSession()
        XCTAssertNotNil(try Stint.sessionID, "the next openSession starts a session")
        try Stint.shutdown()

        try Stint.initialize(apiKey: "swift-test-key", options: options(requireConsent: true))
        XCTAssertTrue(Stint.isTrackingEnabled, "a saved choice wins over requireConsent")
    }

    func testRequireConsentStartsDisabledUntilTrackingIsEnabled() throws {
        try Stint.initialize(apiKey: "swift-test-key", options: options(requireConsent: true))
        XCTAssertFalse(Stint.isTrackingEnabled)
        Stint.openSession()
        Stint.logCustomEvent("before_consent")
        XCTAssertEqual(try Stint.stats.datapointsRecorded, 0, "nothing recorded before consent")
        Stint.isTrackingEnabled = true
        Stint.openSession()
        Stint.logCustomEvent("after_consent")
        XCTAssertEqual(try Stint.stats.datapointsRecorded, 2)
    }

    func testDeviceIdIsAUuidThatWipeDataReplaces() throws {
        try startStint()
        let before = try XCTUnwrap(Stint.deviceID)
        XCTAssertEqual(before.count, 36)
        XCTAssertNotNil(UUID(uuidString: before), before)
        XCTAssertEqual(Stint.deviceID, before, "stable")
        Stint.changeUser("wiped-user")
        Stint.openSession()

        XCTAssertNoThrow(try Stint.wipeData().get())
        let after = try XCTUnwrap(Stint.deviceID)
        XCTAssertNotNil(UUID(uuidString: after), after)
        XCTAssertNotEqual(after, before, "a new device id after the wipe")
        XCTAssertNil(try Stint.sessionID, "no session after the wipe")
        XCTAssertEqual(try Stint.stats.datapointsPending, 0, "nothing left to send")
        XCTAssertTrue(Stint.isTrackingEnabled, "the tracking choice is kept")
        try Stint.shutdown()

        try startStint()
        XCTAssertEqual(Stint.deviceID, after, "the new id is the saved one")
    }

    func testFlushWithTheNetworkDisabledIsATimeoutAtOnceAndRecordingGoesOn() throws {
        // Nothing listens on port 1: with the network enabled this flush would wait it out.
        try startStint(baseURL: "http://127.0.0.1:1")
        XCTAssertNoThrow(try Stint.setNetworkEnabled(false).get())
        Stint.openSession()
        Stint.logCustomEvent("offline")
        assertStintError(try Stint.flush(timeout: 60), .timeout, messageContains: "network")
        XCTAssertEqual(try Stint.stats.datapointsPending, 2, "recorded and kept")
        XCTAssertNoThrow(try Stint.setNetworkEnabled(true).get())
    }

    func testABadAppVersionIsInvalidArgumentNamingIt() throws {
        var options = makeOptions()
        options.appVersion = String(repeating: "v", count: 65)
        assertStintError(
            try Stint.initialize(apiKey: "swift-test-key", options: options), .invalidArgument,
            messageContains: "appVersion")
        options.appVersion = "3.1.4 (15)"
        try Stint.initialize(apiKey: "swift-test-key", options: options)
    }
}
