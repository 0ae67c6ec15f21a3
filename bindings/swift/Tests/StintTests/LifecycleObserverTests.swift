import Foundation
import XCTest

@testable import Stint

/// StintLifecycleObserver driven through a private NotificationCenter, as the platform's
/// notifications would drive it in an app.
final class LifecycleObserverTests: StintTestCase {
    private let center = NotificationCenter()
    private let foreground = Notification.Name("test.foreground")
    private let background = Notification.Name("test.background")
    private let terminate = Notification.Name("test.terminate")
    /// The session timeout of these tests, in seconds.
    private let timeout = 1

    private func makeObserver(terminate: Notification.Name? = nil) -> StintLifecycleObserver {
        return StintLifecycleObserver(
            center: center, foreground: foreground, background: background, terminate: terminate)
    }

    /// A started observer, stopped when the test ends.
    private func startObserver(terminate: Notification.Name? = nil) {
        let observer = makeObserver(terminate: terminate)
        observer.start()
        addTeardownBlock { observer.stop() }
    }

    private func post(_ name: Notification.Name) {
        center.post(name: name, object: nil)
    }

    private func startWithShortTimeout(keepOpenWhileForeground: Bool = true, logs: LogRecorder? = nil) throws {
        if let logs = logs {
            Stint.setLogHandler { level, message in logs.append(level, message) }
        }
        var options = makeOptions(sessionTimeoutInSeconds: timeout)
        options.keepOpenWhileForeground = keepOpenWhileForeground
        options.logLevel = .warn
        try Stint.initialize(apiKey: "swift-lifecycle-key", options: options)
    }

    /// Waits well past the session timeout: the library's worker ends a due session on its own.
    private func waitPastTheTimeout() {
        Thread.sleep(forTimeInterval: Double(timeout) * 2.5)
    }

    func testColdStartTheForegroundNotificationOpensTheFirstSession() throws {
        let events = EventRecorder()
        Stint.setSessionListener { events.append($0) }
        try startWithShortTimeout()
        startObserver()
        XCTAssertNil(try Stint.sessionID, "nothing before the app is in the foreground")

        post(foreground)
        let session = try XCTUnwrap(try Stint.sessionID, "the foreground opened a session")
        XCTAssertEqual(try Stint.stats.sessionsStarted, 1)
        post(foreground)  // active again (e.g. after a call sheet): the same session
        XCTAssertEqual(try Stint.sessionID, session)
        XCTAssertEqual(try Stint.stats.sessionsStarted, 1)
    }

    func testTheSessionHoldsWhileTheAppStaysInTheForeground() throws {
        try startWithShortTimeout(keepOpenWhileForeground: true)
        startObserver()
        post(foreground)
        let session = try XCTUnwrap(try Stint.sessionID)

        waitPastTheTimeout()
        XCTAssertEqual(try Stint.sessionID, session, "idle in the foreground: still the same session")
        XCTAssertEqual(try Stint.stats.sessionsEnded, 0)
    }

    func testBackgroundPastTheTimeoutEndsTheSessionAndTheReturnStartsANewOne() throws {
        let events = EventRecorder()
        let ended = expectation(description: "the first session ended in the background")
        Stint.setSessionListener { event in
            events.append(event)
            if event.kind == .ended { ended.fulfill() }
        }
        try startWithShortTimeout()
        startObserver()
        post(foreground)
        let first = try XCTUnwrap(try Stint.sessionID)

        post(background)
        XCTAssertEqual(try Stint.sessionID, first, "closing keeps the session for its timeout")
        wait(for: [ended], timeout: 30)
        XCTAssertNil(try Stint.sessionID, "ended by the worker while the app was away")

        post(foreground)
        let second = try XCTUnwrap(try Stint.sessionID, "the return opened a new session")
        XCTAssertNotEqual(second, first)
        let stats = try Stint.stats
        XCTAssertEqual(stats.sessionsStarted, 2)
        XCTAssertEqual(stats.sessionsEnded, 1)
        XCTAssertEqual(Array(events.all.map { $0.kind }.prefix(2)), [.started, .ended])
        XCTAssertEqual(events.all.first?.sessionID, first)
    }

    func testBackgroundWithinTheTimeoutContinuesTheSession() throws {
        try startWithShortTimeout()
        startObserver()
        post(foreground)
        let session = try XCTUnwrap(try Stint.sessionID)
        post(background)
        post(foreground)  // back at once, well within the timeout
        XCTAssertEqual(try Stint.sessionID, session)
        XCTAssertEqual(try Stint.stats.sessionsStarted, 1)
    }

    func testAfterStopNotificationsChangeNothing() throws {
        let logs = LogRecorder()
        try startWithShortTimeout(logs: logs)
        let observer = makeObserver(terminate: terminate)
        observer.start()
        observer.stop()
        observer.stop()  // idempotent

        post(foreground)
        XCTAssertNil(try Stint.sessionID, "a stopped observer opens nothing")
        post(terminate)
        XCTAssertNil(try Stint.sessionID, "a stopped observer shuts nothing down")
        XCTAssertEqual(try Stint.stats.sessionsStarted, 0)

        observer.start()  // and it can start again
        post(foreground)
        XCTAssertNotNil(try Stint.sessionID)
        observer.stop()
        XCTAssertEqual(logs.reports.map { $0.1 }, [], "no failed call")
    }

    func testAnObserverNoLongerReferencedStopsObserving() throws {
        try startWithShortTimeout()
        weak var weakObserver: StintLifecycleObserver?
        do {
            let observer = makeObserver()
            observer.start()
            weakObserver = observer
        }
        XCTAssertNil(weakObserver, "the center does not keep the observer alive")
        post(foreground)
        XCTAssertNil(try Stint.sessionID, "its registrations went with it")
    }

    func testStartingTwiceRegistersOnce() throws {
        let logs = LogRecorder()
        try startWithShortTimeout(logs: logs)
        let observer = makeObserver(terminate: terminate)
        observer.start()
        observer.start()
        defer { observer.stop() }
        post(foreground)
        XCTAssertNotNil(try Stint.sessionID)

        // Registered twice, the second shutdown would fail with .notInitialized, reported.
        post(terminate)
        assertStintError(try Stint.sessionID, .notInitialized, messageContains: nil)
        XCTAssertEqual(logs.reports.map { $0.1 }, [], "one shutdown, no failed second one")

        // One stop() removes the one registration: a terminate now shuts nothing down.
        try startWithShortTimeout()
        observer.stop()
        post(terminate)
        XCTAssertNoThrow(try Stint.stats, "still initialized")
    }

    func testTerminateShutsDownWithinTwoSecondsWhenDataCannotBeSent() throws {
        let logs = LogRecorder()
        Stint.setLogHandler { level, message in logs.append(level, message) }
        var options = makeOptions(sessionTimeoutInSeconds: timeout, baseURL: "http://127.0.0.1:1")
        options.logLevel = .warn
        try Stint.initialize(apiKey: "swift-lifecycle-key", options: options)
        // Nothing listens there: the queued datapoint cannot go out, the shutdown waits its 2 s.
        startObserver(terminate: terminate)
        post(foreground)
        XCTAssertEqual(try Stint.stats.datapointsPending, 1)

        let start = Date()
        post(terminate)
        let elapsed = Date().timeIntervalSince(start)
        assertStintError(try Stint.sessionID, .notInitialized)
        XCTAssertGreaterThanOrEqual(elapsed, 1.5, "it tried to deliver for its 2 s")
        XCTAssertLessThan(elapsed, 20, "bounded by the 2-second timeout (generous on a slow machine)")
        XCTAssertTrue(
            logs.reports.contains { $0.1.contains("shutdown failed: timeout") }, "\(logs.reports)")
    }

    func testNotificationsBeforeInitializeAreReportedNotThrown() throws {
        let logs = LogRecorder()
        Stint.setLogHandler { level, message in logs.append(level, message) }
        startObserver(terminate: terminate)
        post(foreground)
        post(background)
        post(terminate)
        XCTAssertEqual(
            logs.reports.map { $0.1.components(separatedBy: " failed: ").first ?? "" },
            ["openSession", "closeSession", "requestImmediateDataFlush", "shutdown"])
        XCTAssertTrue(logs.reports.allSatisfy { $0.0 == .warn }, "\(logs.reports)")
    }

    func testNoStintCallOnceStopHasReturnedWhileAnotherThreadPosts() throws {
        // Before initialize, each call the observer makes is reported to the log handler on the
        // posting thread: a report after stop() returned would be a call after it.
        let stopped = Locked(false)
        let callsAfterStop = Locked(0)
        let reports = Locked(0)
        Stint.setLogHandler { _, message in
            guard message.contains(" failed: ") else { return }
            reports.withLock { $0 += 1 }
            if stopped.current { callsAfterStop.withLock { $0 += 1 } }
        }
        let observer = makeObserver()
        observer.start()
        let firstCall = expectation(description: "the other thread's first notification handled")
        let done = expectation(description: "the other thread posted them all")
        let center = self.center
        let foreground = self.foreground
        DispatchQueue.global().async {
            center.post(name: foreground, object: nil)
            firstCall.fulfill()
            for _ in 0..<2000 {
                center.post(name: foreground, object: nil)
            }
            done.fulfill()
        }
        wait(for: [firstCall], timeout: 30)
        observer.stop()
        stopped.withLock { $0 = true }
        wait(for: [done], timeout: 60)
        XCTAssertGreaterThanOrEqual(reports.current, 1, "the observer was working before stop()")
        XCTAssertEqual(callsAfterStop.current, 0)
    }
}
