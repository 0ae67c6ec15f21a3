import Foundation
import XCTest

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

@testable import Stint

final class ErrorTests: StintTestCase {
    func testEveryCallBeforeInitializeIsNotInitialized() {
        assertStintError(try Stint.openSession(), .notInitialized)
        assertStintError(try Stint.closeSession(), .notInitialized)
        assertStintError(try Stint.changeUser("alice"), .notInitialized)
        assertStintError(try Stint.logCustomEvent("event"), .notInitialized)
        assertStintError(try Stint.logCustomEvent("event", properties: ["a": 1]), .notInitialized)
        assertStintError(try Stint.flush(timeout: 0), .notInitialized)
        assertStintError(try Stint.shutdown(timeout: 0), .notInitialized)
        assertStintError(try Stint.sessionId, .notInitialized)
        assertStintError(try Stint.stats, .notInitialized)
        assertStintError(try Stint.requestImmediateDataFlush(), .notInitialized)
        Stint.setSessionListener { _ in }  // allowed before initialize
        Stint.setSessionListener(nil)
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
        options.baseUrl = "http://collector.example.com"
        assertRejected(options, naming: "baseUrl")
        options = makeOptions()
        options.flushIntervalInSeconds = 0
        assertRejected(options, naming: "flushIntervalInSeconds")
        options = makeOptions()
        options.maxQueuedDatapoints = 99
        assertRejected(options, naming: "maxQueuedDatapoints")

        assertStintError(try Stint.openSession(), .notInitialized, messageContains: nil)
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
        try Stint.openSession()  // the first instance is unaffected
    }

    func testBadArgumentsAreInvalidArgumentAndChangeNothing() throws {
        try startStint()
        try Stint.openSession()
        let session = try Stint.sessionId

        assertStintError(try Stint.changeUser(""), .invalidArgument)
        assertStintError(try Stint.changeUser(String(repeating: "u", count: 998)), .invalidArgument)
        assertStintError(try Stint.changeUser("al\u{0}ice"), .invalidArgument, messageContains: "userId")
        assertStintError(try Stint.logCustomEvent(""), .invalidArgument, messageContains: "name")
        assertStintError(
            try Stint.logCustomEvent(String(repeating: "n", count: 256)), .invalidArgument,
            messageContains: "name")
        assertStintError(
            try Stint.logCustomEvent("when", properties: ["date": Date()]), .invalidArgument,
            messageContains: "properties")
        assertStintError(
            try Stint.logCustomEvent("big", properties: ["text": String(repeating: "x", count: 60_000)]),
            .invalidArgument, messageContains: "properties")

        XCTAssertEqual(try Stint.sessionId, session)
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
        try startStint(baseUrl: "http://127.0.0.1:1")
        try Stint.openSession()
        assertStintError(try Stint.flush(timeout: 0.2), .timeout)
        XCTAssertEqual(try Stint.stats.datapointsPending, 1)
        assertStintError(try Stint.shutdown(timeout: 0.2), .timeout)
        assertStintError(try Stint.openSession(), .notInitialized, messageContains: nil)
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
