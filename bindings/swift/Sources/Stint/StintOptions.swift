import Foundation

/// The options of ``Stint/initialize(apiKey:options:)``. Every property is optional: nil leaves
/// the library's default and is left out of the options JSON. The coding keys are the C API's
/// option names.
public struct StintOptions: Codable, Equatable {
    /// How much log output the library produces (on stderr).
    public enum LogLevel: String, Codable, CaseIterable {
        case off, error, warn, info, debug
    }

    /// A session ends after this long without activity (1...31536000; default 1800).
    public var sessionTimeoutInSeconds: Int?
    /// Keep the session open while the app is in the foreground, however long it stays idle
    /// (default false).
    public var keepOpenWhileForeground: Bool?
    /// Absolute path of the directory where Stint keeps its data (created 0700 if missing).
    /// On iOS use a directory in Application Support, see docs/ios.md.
    public var dataDirectory: String?
    /// The collector, `https://…` (`http://` only for loopback hosts). Nil: store only, send
    /// nothing.
    public var baseUrl: String?
    /// How often queued datapoints are sent, in seconds (1...86400; default 10).
    public var flushIntervalInSeconds: Int?
    /// At most this many datapoints are queued (100...10000000; default 100000); beyond it the
    /// oldest custom events are dropped first.
    public var maxQueuedDatapoints: Int?
    /// Default `.warn`.
    public var logLevel: LogLevel?

    public init(
        sessionTimeoutInSeconds: Int? = nil,
        keepOpenWhileForeground: Bool? = nil,
        dataDirectory: String? = nil,
        baseUrl: String? = nil,
        flushIntervalInSeconds: Int? = nil,
        maxQueuedDatapoints: Int? = nil,
        logLevel: LogLevel? = nil
    ) {
        self.sessionTimeoutInSeconds = sessionTimeoutInSeconds
        self.keepOpenWhileForeground = keepOpenWhileForeground
        self.dataDirectory = dataDirectory
        self.baseUrl = baseUrl
        self.flushIntervalInSeconds = flushIntervalInSeconds
        self.maxQueuedDatapoints = maxQueuedDatapoints
        self.logLevel = logLevel
    }

    /// The options JSON of the C API, e.g. `{"dataDirectory":"/tmp/stint","logLevel":"info"}`:
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
