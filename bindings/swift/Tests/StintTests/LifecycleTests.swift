import Dispatch
import Foundation
import XCTest

@testable import Stint

final class LifecycleTests: StintTestCase {
    func testAFullSessionLifecycleIsRecordedAndSeenByTheListener() throws {
        let recorder = EventRecorder()
        let threeEvents = expectation(description: "started, ended, started")
        threeEvents.expectedFulfillmentCount = 3
        Stint.setSessionListener { event in
            recorder.append(event)
            threeEvents.fulfill()
        }
        try startStint()
        XCTAssertNil(try Stint.sessionID, "no session before openSession")

        Stint.openSession()
        let anonymousSession = try XCTUnwrap(try Stint.sessionID)
        Stint.logCustomEvent(
            "level_up",
            properties: ["level": 3, "hero": "wizard", "bonus": 1.5, "first": true,
                         "items": ["sword", "shield"], "stats": ["hp": 10], "note": NSNull()])
        Stint.logCustomEvent("no_properties")
        Stint.changeUser("alice")
        let aliceSession = try XCTUnwrap(try Stint.sessionID)
        XCTAssertNotEqual(anonymousSession, aliceSession, "a new user gets a new session")
        Stint.changeUser("alice")
        XCTAssertEqual(try Stint.sessionID, aliceSession, "the same user is only activity")
        Stint.closeSession()
        XCTAssertEqual(try Stint.sessionID, aliceSession, "closing keeps the session for its timeout")

        let stats = try Stint.stats
        XCTAssertEqual(stats.sessionsStarted, 2)
        XCTAssertEqual(stats.sessionsEnded, 1)
        XCTAssertEqual(stats.datapointsRecorded, 5, "ss, ce, ce, se, ss")
        XCTAssertEqual(stats.datapointsPending, 5, "nothing is delivered without a baseUrl")
        XCTAssertEqual(stats.datapointsDelivered, 0)
        XCTAssertEqual(stats.datapointsDropped, 0)

        Stint.requestImmediateDataFlush()
        try Stint.flush(timeout: 5)
        try Stint.shutdown(timeout: 5)
        wait(for: [threeEvents], timeout: 5)

        let events = recorder.all
        XCTAssertEqual(events.map { $0.kind }, [.started, .ended, .started])
        guard events.count == 3 else { return }
        XCTAssertEqual(events.map { $0.sessionID }, [anonymousSession, anonymousSession, aliceSession])
        XCTAssertEqual(events.map { $0.userID }, [nil, nil, "alice"])
        XCTAssertNil(events[0].endTime)
        let ended = events[1]
        XCTAssertEqual(ended.startTime, events[0].startTime)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(ended.endTime), ended.startTime)
        XCTAssertLessThan(abs(events[0].startTime.timeIntervalSinceNow), 60, "a current timestamp")
    }

    func testASessionContinuesAcrossShutdownAndInitializeAgain() throws {
        try startStint()
        Stint.openSession()
        let session = try XCTUnwrap(try Stint.sessionID)
        Stint.logCustomEvent("before_restart")
        try Stint.shutdown()
        assertStintError(try Stint.sessionID, .notInitialized)

        try startStint()
        XCTAssertEqual(try Stint.sessionID, session, "back within the timeout: the same session")
        XCTAssertEqual(try Stint.stats.datapointsPending, 2, "ss and ce were recovered")
        Stint.openSession()
        XCTAssertEqual(try Stint.stats.sessionsStarted, 0, "no new session was started")
    }

    func testTheVersionIsTheLibrarys() {
        let parts = Stint.version.split(separator: ".")
        XCTAssertEqual(parts.count, 3, Stint.version)
        XCTAssertTrue(parts.allSatisfy { Int($0) != nil }, Stint.version)
    }

    func testAListenerMayCallBackIntoTheLibrary() throws {
        let calledBack = expectation(description: "listener read the session id")
        let idSeenInListener = Locked<String?>(nil)
        Stint.setSessionListener { event in
            let id = try? Stint.sessionID
            idSeenInListener.withLock { $0 = id }
            XCTAssertEqual(id, event.sessionID)
            _ = try? Stint.stats
            Stint.requestImmediateDataFlush()
            calledBack.fulfill()
        }
        try startStint()
        Stint.openSession()
        wait(for: [calledBack], timeout: 5)
        XCTAssertEqual(idSeenInListener.current, try Stint.sessionID)
    }

    func testAReplacedListenerIsReleasedAndNeverCalledAgain() throws {
        weak var weakToken: Token?
        let isReplaced = Locked(false)
        let oldListenerCalledAfterReplacement = Locked(false)
        let oldListenerCalled = expectation(description: "the first listener sees the first session")
        do {
            let token = Token()
            weakToken = token
            Stint.setSessionListener { _ in
                withExtendedLifetime(token) {}
                if isReplaced.current { oldListenerCalledAfterReplacement.withLock { $0 = true } }
                oldListenerCalled.fulfill()
            }
        }
        XCTAssertNotNil(weakToken, "the registered closure is retained")
        try startStint()
        Stint.openSession()
        // The listener is chosen when an event is dispatched: wait until this one has been.
        wait(for: [oldListenerCalled], timeout: 5)

        let newListenerCalled = expectation(description: "the new listener sees the next session")
        newListenerCalled.expectedFulfillmentCount = 2
        Stint.setSessionListener { _ in newListenerCalled.fulfill() }
        isReplaced.withLock { $0 = true }
        XCTAssertNil(weakToken, "the replaced closure is released once setSessionListener returns")

        Stint.changeUser("bob")  // ended + started
        wait(for: [newListenerCalled], timeout: 5)
        XCTAssertFalse(oldListenerCalledAfterReplacement.current)
    }

    func testAListenerMayRemoveItselfFromInsideTheCallback() throws {
        weak var weakToken: Token?
        let calls = EventRecorder()
        let firstCall = expectation(description: "first call")
        do {
            let token = Token()
            weakToken = token
            Stint.setSessionListener { event in
                withExtendedLifetime(token) {}
                calls.append(event)
                Stint.setSessionListener(nil)  // releases this very closure's box
                firstCall.fulfill()
            }
        }
        try startStint()
        Stint.openSession()
        wait(for: [firstCall], timeout: 5)
        Stint.changeUser("carol")  // ended + started, for nobody
        try Stint.shutdown()  // waits until the library has dispatched everything
        XCTAssertEqual(calls.all.count, 1)
        XCTAssertNil(weakToken)
    }

    func testConcurrentCallsFromManyThreadsAreAllRecorded() throws {
        try startStint()
        Stint.openSession()
        let loggingThreads = 7
        let eventsPerThread = 250
        let failures = Recorder<String>()
        DispatchQueue.concurrentPerform(iterations: loggingThreads + 1) { thread in
            if thread == loggingThreads {
                for _ in 0..<50 {
                    do {
                        try Stint.closeSession().get()
                        try Stint.openSession().get()
                        _ = try Stint.sessionID
                    } catch {
                        failures.append("\(error)")
                    }
                }
                return
            }
            for index in 0..<eventsPerThread {
                if case .failure(let error) = Stint.logCustomEvent("tick", properties: ["thread": thread, "index": index]) {
                    failures.append("\(error)")
                }
            }
        }
        XCTAssertEqual(failures.all, [])
        let stats = try Stint.stats
        XCTAssertEqual(stats.sessionsStarted, 1, "closing and opening within the timeout continues")
        XCTAssertEqual(stats.datapointsRecorded, UInt64(loggingThreads * eventsPerThread) + 1)
    }
}
