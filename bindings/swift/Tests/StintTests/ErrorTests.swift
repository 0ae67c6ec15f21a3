import Foundation
import XCTest

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

@testable import Stint

final class ErrorTests: StintTestCase {
    func testFireAndForgetCallsBeforeInitializeReturnNotInitializedAndAreReported() {
        let logs = LogRecorder()
        Stint.setLogHandler { level, message in logs.append(level, message) }
        assertFailure(Stint.openSession(), .notInitialized)
        assertFailure(Stint.closeSession(), .notInitialized)
        assertFailure(Stint.changeUser("alice"), .notInitialized)
        assertFailure(Stint.logCustomEvent("event"), .notInitialized)
        assertFailure(Stint.logCustomEvent("event", properties: ["a": 1]), .notInitialized)
        assertFailure(Stint.requestImmediateDataFlush(), .notInitialized)
        assertFailure(Stint.setTrackingEnabled(true), .notInitialized)
        assertFailure(Stint.setNetworkEnabled(false), .notInitialized)
        assertFailure(Stint.wipeData(), .notInitialized)
        Stint.isTrackingEnabled = false  // a setter: reported all the same
        XCTAssertFalse(Stint.isTrackingEnabled, "nothing is tracked before initialize")
        XCTAssertNil(Stint.deviceID)

        // Reported on the calling thread, so already there; the queries are answers, not failures.
        let reports = logs.reports
        XCTAssertEqual(
            reports.map { String($0.1.prefix(while: { $0 != " " })) },
            ["openSession", "closeSession", "changeUser", "logCustomEvent", "logCustomEvent",
             "requestImmediateDataFlush", "setTrackingEnabled", "setNetworkEnabled", "wipeData",
             "setTrackingEnabled"])
        XCTAssertTrue(reports.allSatisfy { $0.0 == .warn && $0.1.contains("failed: notInitialized: ") }, "\(reports)")
    }

    func testCallsTheAppMustHandleStillThrowNotInitialized() {
        assertStintError(try Stint.flush(timeout: 0), .notInitialized)
        assertStintError(try Stint.shutdown(timeout: 0), .notInitialized)
        assertStintError(try Stint.sessionID, .notInitialized)
        assertStintError(try Stint.stats, .notInitialized)
        Stint.setSessionListener { _ in }  // allowed before initialize
        Stint.setSessionListener(nil)
    }

    func testBadArgumentsReachTheLogHandlerAsErrorsNamingThem() throws {
        let logs = LogRecorder()
        Stint.setLogHandler { level, message in logs.append(level, message) }
        var options = makeOptions()
        options.logLevel = .warn  // makeOptions() is quiet (.off), which would hide the reports too
        try Stint.initialize(apiKey: "swift-test-key", options: options)
        assertFailure(Stint.changeUser(""), .invalidArgument, messageContains: "user_id")
        assertFailure(Stint.logCustomEvent("when", properties: ["date": Date()]), .invalidArgument)
        let reports = logs.reports
        XCTAssertEqual(reports.count, 2, "\(reports)")
        XCTAssertTrue(reports.allSatisfy { $0.0 == .error }, "\(reports)")
        XCTAssertTrue(reports.first?.1.hasPrefix("changeUser failed: invalidArgument: user_id") ?? false, "\(reports)")
        XCTAssertTrue(reports.last?.1.hasPrefix("logCustomEvent failed: invalidArgument: properties") ?? false, "\(reports)")
    }

    func testWithLogLevelOffAFailedCallIsNotReported() throws {
        let logs = LogRecorder()
        Stint.setLogHandler { level, message in logs.append(level, message) }
        var options = makeOptions()
        options.logLevel = .off
        try Stint.initialize(apiKey: "swift-test-key", options: options)
        assertFailure(Stint.changeUser(""), .invalidArgument)
        try Stint.shutdown()
        XCTAssertEqual(logs.all.count, 0, "\(logs.all)")
        assertFailure(Stint.openSession(), .notInitialized)
        XCTAssertEqual(logs.reports.count, 1, "the default level (warn) applies again after shutdown")
    }

    func testTheLogHandlerReceivesTheLibrarysMessages() throws {
        let logs = LogRecorder()
        let received = expectation(description: "a message from the library")
        received.assertForOverFulfill = false
        Stint.setLogHandler { level, message in
            logs.append(level, message)
            received.fulfill()
        }
        var options = makeOptions()
        options.logLevel = .debug
        try Stint.initialize(apiKey: "swift-secret-api-key", options: options)
        wait(for: [received], timeout: 60)
        try Stint.shutdown()
        XCTAssertTrue(logs.all.contains { $0.0 == .info || $0.0 == .debug }, "\(logs.all)")
        XCTAssertFalse(logs.all.contains { $0.1.contains("swift-secret-api-key") }, "never the API key")
    }

    func testAReplacedLogHandlerIsReleased() {
        weak var weakToken: Token?
        do {
            let token = Token()
            weakToken = token
            Stint.setLogHandler { _, _ in withExtendedLifetime(token) {} }
        }
        XCTAssertNotNil(weakToken, "the registered closure is retained")
        Stint.setLogHandler(nil)
        XCTAssertNil(weakToken, "released once replaced")
    }

    func testABadOptionIsInvalidArgumentNamingItAndInitializesNothing() throws {
        func assertRejected(_ options: StintOptions, naming key: String, line: UInt = #line) {
            assertStintError(
                try Stint.initialize(apiKey: "key", options: options), .invalidArgument,
                messageContains: key, line: line)
        }
        var options = makeOptions()
        options.sessionTimeoutInSeconds = 0
        assertRejected(options, naming: "sessionTimeoutInSeconds")
        options = makeOptions()
        options.sessionTimeoutInSeconds = 31_536_001
        assertRejected(options, naming: "sessionTimeoutInSeconds")
        options = makeOptions()
        options.dataDirectory = "relative/stint"
        assertRejected(options, naming: "dataDirectory")
        options = makeOptions()
        options.baseURL = "http://collector.example.com"
        assertRejected(options, naming: "baseUrl")
        options = makeOptions()
        options.flushIntervalInSeconds = 0
        assertRejected(options, naming: "flushIntervalInSeconds")
        options = makeOptions()
        options.maxQueuedDatapoints = 99
        assertRejected(options, naming: "maxQueuedDatapoints")

        assertFailure(Stint.openSession(), .notInitialized, messageContains: nil)
        try startStint()  // the same directory works: nothing was left behind
    }

    func testABadApiKeyIsInvalidArgument() {
        assertStintError(try Stint.initialize(apiKey: "", options: makeOptions()), .invalidArgument)
        assertStintError(
            try Stint.initialize(apiKey: String(repeating: "k", count: 257), options: makeOptions()),
            .invalidArgument)
        assertStintError(
            try Stint.initialize(apiKey: "key\u{0}tail", options: makeOptions()), .invalidArgument,
            messageContains: "apiKey")
    }

    func testInitializingTwiceIsAlreadyInitialized() throws {
        try startStint()
        assertStintError(try startStint(), .alreadyInitialized)
        Stint.openSession()  // the first instance is unaffected
    }

    func testBadArgumentsAreInvalidArgumentAndChangeNothing() throws {
        try startStint()
        Stint.openSession()
        let session = try Stint.sessionID

        assertFailure(Stint.changeUser(""), .invalidArgument)
        assertFailure(Stint.changeUser(String(repeating: "u", count: 998)), .invalidArgument)
        assertFailure(Stint.changeUser("al\u{0}ice"), .invalidArgument, messageContains: "userID")
        assertFailure(Stint.logCustomEvent(""), .invalidArgument, messageContains: "name")
        assertFailure(Stint.logCustomEvent(String(repeating: "n", count: 256)), .invalidArgument,
            messageContains: "name")
        assertFailure(Stint.logCustomEvent("when", properties: ["date": Date()]), .invalidArgument,
            messageContains: "properties")
        assertFailure(Stint.logCustomEvent("big", properties: ["text": String(repeating: "x", count: 60_000)]),
            .invalidArgument, messageContains: "properties")

        XCTAssertEqual(try Stint.sessionID, session)
        XCTAssertEqual(try Stint.stats.datapointsRecorded, 1, "only the session start")
    }

    func testAnUnusableDataDirectoryIsAStorageError() throws {
        let file = dataDirectory.appendingPathExtension("file")
        XCTAssertTrue(FileManager.default.createFile(atPath: file.path, contents: Data("x".utf8)))
        defer { _ = try? FileManager.default.removeItem(at: file) }
        var options = makeOptions()
        options.dataDirectory = file.appendingPathComponent("stint").path
        assertStintError(try Stint.initialize(apiKey: "key", options: options), .storageError,
                         messageContains: "dataDirectory")
    }

    func testADataDirectoryInUseIsDataDirectoryLocked() throws {
        // Another process would hold libstint's lock on <dataDirectory>/lock; an flock from this
        // process on its own open file conflicts the same way.
        try FileManager.default.createDirectory(
            at: dataDirectory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let descriptor = open(dataDirectory.appendingPathComponent("lock").path, O_RDWR | O_CREAT, 0o600)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        defer { close(descriptor) }
        XCTAssertEqual(flock(descriptor, LOCK_EX | LOCK_NB), 0)

        assertStintError(try startStint(), .dataDirectoryLocked, messageContains: "dataDirectory")
        _ = flock(descriptor, LOCK_UN)
        try startStint()
    }

    func testAFlushThatCannotDeliverInTimeIsATimeout() throws {
        // Nothing listens on port 1: delivery keeps failing, the data stays queued.
        try startStint(baseURL: "http://127.0.0.1:1")
        Stint.openSession()
        assertStintError(try Stint.flush(timeout: 0.2), .timeout)
        XCTAssertEqual(try Stint.stats.datapointsPending, 1)
        assertStintError(try Stint.shutdown(timeout: 0.2), .timeout)
        assertFailure(Stint.openSession(), .notInitialized, messageContains: nil)
    }

    func testAnErrorDescribesItself() {
        let error = StintError(status: .timeout, message: "flush did not finish within 200 ms")
        XCTAssertEqual(error.code, 6)
        XCTAssertTrue(error.description.contains("timeout"))
        XCTAssertTrue(error.localizedDescription.contains("flush did not finish within 200 ms"))
        XCTAssertEqual(StintError.Status.allCases.map { $0.rawValue }, Array(1...7))
    }

    func testTimeoutsBecomeWholeMillisecondsRoundedUp() {
        XCTAssertEqual(milliseconds(1.5), 1500)
        XCTAssertEqual(milliseconds(0.0001), 1)
        XCTAssertEqual(milliseconds(0), 0)
        XCTAssertEqual(milliseconds(-3), 0)
        XCTAssertEqual(milliseconds(.nan), 0)
        XCTAssertEqual(milliseconds(.infinity), UInt32.max)
        XCTAssertEqual(milliseconds(1e12), UInt32.max)
    }
}
