import Foundation

/// The options of ``Stint/initialize(apiKey:options:)``. Every property but
/// `keepOpenWhileForeground` is optional: nil leaves the library's default and is left out of
/// the options JSON. `keepOpenWhileForeground` is true unless set false (the C API's default is
/// false), and always written. The coding keys are the C API's option names.
public struct StintOptions: Codable, Equatable, Sendable {
    /// How much log output the library produces (to the log handler, else stderr); also the
    /// level of each message passed to ``Stint/setLogHandler(_:)`` (never `.off` there).
    public enum LogLevel: String, Codable, CaseIterable, Sendable {
        case off, error, warn, info, debug
    }

    /// A session ends after this long without activity (1...31536000; default 1800).
    public var sessionTimeoutInSeconds: Int?
    /// Keep the session open while the app is in the foreground, however long it stays idle.
    /// True by default, as in other mobile SDKs: a foreground app never loses its session to an
    /// idle stretch (reading, video). The C API's default is false (web semantics).
    public var keepOpenWhileForeground: Bool
    /// Absolute path of the directory where Stint keeps its data (created 0700 if missing).
    /// On iOS use a directory in Application Support, see docs/ios.md.
    public var dataDirectory: String?
    /// The collector, `https://…` (`http://` only for loopback hosts). Nil: store only, send
    /// nothing. Its key in the options JSON is `baseUrl`.
    public var baseURL: String?
    /// How often queued datapoints are sent, in seconds (1...86400; default 10).
    public var flushIntervalInSeconds: Int?
    /// At most this many datapoints are queued (100...10000000; default 100000); beyond it the
    /// oldest custom events are dropped first.
    public var maxQueuedDatapoints: Int?
    /// Default `.warn`.
    public var logLevel: LogLevel?
    /// With no saved choice in the data directory, start with tracking disabled until the app
    /// sets ``Stint/isTrackingEnabled`` to true (the user's consent). A saved choice wins. Default
    /// false.
    public var requireConsent: Bool?
    /// The app's version, sent with each session start (1-64 printable bytes), e.g. from
    /// `CFBundleShortVersionString`. Nil: not sent.
    public var appVersion: String?

    public init(
        sessionTimeoutInSeconds: Int? = nil,
        keepOpenWhileForeground: Bool = true,
        dataDirectory: String? = nil,
        baseURL: String? = nil,
        flushIntervalInSeconds: Int? = nil,
        maxQueuedDatapoints: Int? = nil,
        logLevel: LogLevel? = nil,
        requireConsent: Bool? = nil,
        appVersion: String? = nil
    ) {
        self.sessionTimeoutInSeconds = sessionTimeoutInSeconds
        self.keepOpenWhileForeground = keepOpenWhileForeground
        self.dataDirectory = dataDirectory
        self.baseURL = baseURL
        self.flushIntervalInSeconds = flushIntervalInSeconds
        self.maxQueuedDatapoints = maxQueuedDatapoints
        self.logLevel = logLevel
        self.requireConsent = requireConsent
        self.appVersion = appVersion
    }

    /// The C API's option names.
    enum CodingKeys: String, CodingKey {
        case sessionTimeoutInSeconds, keepOpenWhileForeground, dataDirectory
        case baseURL = "baseUrl"
        case flushIntervalInSeconds, maxQueuedDatapoints, logLevel, requireConsent, appVersion
    }

    /// Decodes the options JSON; a missing `keepOpenWhileForeground` is true, as in ``init``.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        sessionTimeoutInSeconds = try container.decodeIfPresent(Int.self, forKey: .sessionTimeoutInSeconds)
        keepOpenWhileForeground =
            try container.decodeIfPresent(Bool.self, forKey: .keepOpenWhileForeground) ?? true
        dataDirectory = try container.decodeIfPresent(String.self, forKey: .dataDirectory)
        baseURL = try container.decodeIfPresent(String.self, forKey: .baseURL)
        flushIntervalInSeconds = try container.decodeIfPresent(Int.self, forKey: .flushIntervalInSeconds)
        maxQueuedDatapoints = try container.decodeIfPresent(Int.self, forKey: .maxQueuedDatapoints)
        logLevel = try container.decodeIfPresent(LogLevel.self, forKey: .logLevel)
        requireConsent = try container.decodeIfPresent(Bool.self, forKey: .requireConsent)
        appVersion = try container.decodeIfPresent(String.self, forKey: .appVersion)
    }

    /// The options JSON of the C API, e.g.
    /// `{"dataDirectory":"/tmp/stint","keepOpenWhileForeground":true,"logLevel":"info"}`:
    /// keys sorted, nil options left out, slashes not escaped. The library validates the values.
    public func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try String(decoding: encoder.encode(self), as: UTF8.self)
        } catch {
            throw StintError(status: .invalidArgument, message: "options cannot be encoded: \(error)")
        }
    }
}
