import Foundation
import XCTest

@testable import Stint

/// Each test gets a fresh data directory; Stint is shut down and the listener removed after it.
/// Stint is one instance per process, so these tests must not run in parallel with each other
/// (XCTest runs them one after another unless `swift test --parallel` is given).
class StintTestCase: XCTestCase {
    private(set) var dataDirectory: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("stint-swift-tests-\(UUID().uuidString)", isDirectory: true)
        // Left for Stint to create (0700); a leftover instance from a failed test is stopped.
        _ = try? Stint.shutdown(timeout: 1)
    }

    override func tearDownWithError() throws {
        Stint.setSessionListener(nil)
        Stint.setLogHandler(nil)
        _ = try? Stint.shutdown(timeout: 1)
        if let directory = dataDirectory {
            _ = try? FileManager.default.removeItem(at: directory)
        }
        try super.tearDownWithError()
    }

    /// Options for a quiet, store-only Stint in this test's data directory.
    func makeOptions(
        sessionTimeoutInSeconds: Int? = nil, baseURL: String? = nil
    ) -> StintOptions {
        return StintOptions(
            sessionTimeoutInSeconds: sessionTimeoutInSeconds,
            dataDirectory: dataDirectory.path,
            baseURL: baseURL,
            logLevel: .off)
    }

    func startStint(baseURL: String? = nil) throws {
        try Stint.initialize(apiKey: "swift-test-key", options: makeOptions(baseURL: baseURL))
    }

    /// Asserts that `expression` throws a StintError with `status` and a message (containing
    /// `fragment`, if given).
    func assertStintError<T>(
        _ expression: @autoclosure () throws -> T,
        _ status: StintError.Status,
        messageContains fragment: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            guard let stintError = error as? StintError else {
                XCTFail("expected a StintError, got \(error)", file: file, line: line)
                return
            }
            XCTAssertEqual(stintError.status, status, "\(stintError)", file: file, line: line)
            XCTAssertEqual(stintError.code, status.rawValue, file: file, line: line)
            XCTAssertFalse(stintError.message.isEmpty, "no message", file: file, line: line)
            if let fragment = fragment {
                XCTAssertTrue(
                    stintError.message.contains(fragment),
                    "message \"\(stintError.message)\" does not mention \(fragment)",
                    file: file, line: line)
            }
        }
    }
}

extension StintTestCase {
    /// Asserts that a fire-and-forget call failed with `status` and a message (containing
    /// `fragment`, if given); it returned instead of throwing.
    func assertFailure(
        _ outcome: Stint.Outcome,
        _ status: StintError.Status,
        messageContains fragment: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        switch outcome {
        case .success:
            XCTFail("expected a failure with \(status), got success", file: file, line: line)
        case .failure(let error):
            XCTAssertEqual(error.status, status, "\(error)", file: file, line: line)
            XCTAssertFalse(error.message.isEmpty, "no message", file: file, line: line)
            if let fragment = fragment {
                XCTAssertTrue(
                    error.message.contains(fragment),
                    "message \"\(error.message)\" does not mention \(fragment)", file: file, line: line)
            }
        }
    }
}

/// Collects log messages, which arrive on a library thread or on the calling thread.
final class LogRecorder: Sendable {
    private let messages = Locked<[(StintOptions.LogLevel, String)]>([])

    func append(_ level: StintOptions.LogLevel, _ message: String) {
        messages.withLock { $0.append((level, message)) }
    }

    var all: [(StintOptions.LogLevel, String)] {
        return messages.current
    }

    /// The binding's reports of failed calls (the library's own messages left out).
    var reports: [(StintOptions.LogLevel, String)] {
        return all.filter { $0.1.contains(" failed: ") }
    }
}

/// Collects what arrives from several threads: listener events (on a library thread), failure
/// messages.
final class Recorder<Element: Sendable>: Sendable {
    private let elements = Locked<[Element]>([])

    func append(_ element: Element) {
        elements.withLock { $0.append(element) }
    }

    var all: [Element] {
        return elements.current
    }
}

typealias EventRecorder = Recorder<StintSessionEvent>

/// An object whose release a test watches (through a weak reference).
final class Token: Sendable {}
