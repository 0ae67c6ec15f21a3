import CStint
import Foundation

/// A session started or ended, as passed to ``Stint/setSessionListener(_:)``.
public struct StintSessionEvent: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case started
        case ended
    }

    public let kind: Kind
    /// The session's id (a UUID).
    public let sessionID: String
    /// The session's user; nil if anonymous.
    public let userID: String?
    /// When the session started (millisecond precision).
    public let startTime: Date
    /// When it ended (for `.ended`; the last activity for a session that timed out).
    public let endTime: Date?

    public init(kind: Kind, sessionID: String, userID: String?, startTime: Date, endTime: Date?) {
        self.kind = kind
        self.sessionID = sessionID
        self.userID = userID
        self.startTime = startTime
        self.endTime = endTime
    }

    /// Copies the C event, whose strings are only valid during the listener call.
    init(_ event: CStint.StintSessionEvent) {
        let kind: Kind = event.kind == STINT_SESSION_EVENT_KIND_ENDED ? .ended : .started
        var sessionID = ""
        if let pointer = event.session_id {
            sessionID = String(cString: pointer)
        }
        var userID: String?
        if let pointer = event.user_id {
            userID = String(cString: pointer)
        }
        self.init(
            kind: kind,
            sessionID: sessionID,
            userID: userID,
            startTime: Date(timeIntervalSince1970: event.start_time),
            endTime: kind == .ended ? Date(timeIntervalSince1970: event.end_time) : nil)
    }
}

/// The library's counters (``Stint/stats``). All but `datapointsPending` count since
/// ``Stint/initialize(apiKey:options:)``.
public struct StintStats: Equatable, Sendable {
    public var sessionsStarted: UInt64
    public var sessionsEnded: UInt64
    public var datapointsRecorded: UInt64
    /// Recorded and not yet delivered, including those recovered from earlier runs.
    public var datapointsPending: UInt64
    public var datapointsDelivered: UInt64
    /// Dropped because the queue was full or the collector rejected them.
    public var datapointsDropped: UInt64

    public init(
        sessionsStarted: UInt64 = 0, sessionsEnded: UInt64 = 0, datapointsRecorded: UInt64 = 0,
        datapointsPending: UInt64 = 0, datapointsDelivered: UInt64 = 0,
        datapointsDropped: UInt64 = 0
    ) {
        self.sessionsStarted = sessionsStarted
        self.sessionsEnded = sessionsEnded
        self.datapointsRecorded = datapointsRecorded
        self.datapointsPending = datapointsPending
        self.datapointsDelivered = datapointsDelivered
        self.datapointsDropped = datapointsDropped
    }

    init(_ stats: CStint.StintStats) {
        self.init(
            sessionsStarted: stats.sessions_started,
            sessionsEnded: stats.sessions_ended,
            datapointsRecorded: stats.datapoints_recorded,
            datapointsPending: stats.datapoints_pending,
            datapointsDelivered: stats.datapoints_delivered,
            datapointsDropped: stats.datapoints_dropped)
    }
}
