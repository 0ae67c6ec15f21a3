import CStint
import Foundation
#if canImport(os)
import os
#endif

/// Stint: session tracking for the app. A thin layer over libstint's C API; every rule about
/// when sessions start and end lives in the library.
///
/// Call ``initialize(apiKey:options:)`` once at launch, ``openSession()`` when the app comes to
/// the foreground and ``closeSession()`` when it goes to the background. Every method may be
/// called from any thread.
///
/// Two kinds of calls:
/// - ``initialize(apiKey:options:)``, ``flush(timeout:)`` and ``shutdown(timeout:)`` may fail in
///   ways the app must handle: they throw ``StintError``, carrying the library's message.
/// - The fire-and-forget calls (``openSession()``, ``closeSession()``, ``changeUser(_:)``,
///   ``logCustomEvent(_:properties:)``, ``requestImmediateDataFlush()``, ``isTrackingEnabled``'s
///   setter, ``setTrackingEnabled(_:)``, ``setNetworkEnabled(_:)``, ``wipeData()``) never throw:
///   they return a `Result` you may ignore, and a failure is also reported to the log handler
///   (``setLogHandler(_:)``), so that analytics can never break the app.
public enum Stint {
    /// How long ``flush(timeout:)`` and ``shutdown(timeout:)`` wait by default, in seconds.
    public static let defaultTimeout: TimeInterval = 5

    /// The outcome of a fire-and-forget call: success, or the error (already reported to the
    /// log handler).
    public typealias Outcome = Result<Void, StintError>

    /// The closure of ``setSessionListener(_:)``: called on a library thread.
    public typealias SessionListener = @Sendable (StintSessionEvent) -> Void

    /// The closure of ``setLogHandler(_:)``: called on a library thread or a calling thread.
    public typealias LogHandler = @Sendable (StintOptions.LogLevel, String) -> Void

    /// Starts Stint: opens (creating) the data directory, recovers queued datapoints and the
    /// saved session, and starts the library's worker thread.
    ///
    /// - Throws: ``StintError`` with `.invalidArgument` for a bad key or option (nothing is
    ///   started), `.alreadyInitialized`, `.dataDirectoryLocked` if another process uses the
    ///   data directory, `.storageError` if it is unusable.
    public static func initialize(apiKey: String, options: StintOptions = StintOptions()) throws {
        try requireNoNul(apiKey, named: "apiKey")
        let optionsJSON = try options.jsonString()
        try check(stint_initialize(apiKey, optionsJSON))
        Reports.level = options.logLevel ?? .warn
    }

    /// Stops Stint: tries to deliver queued datapoints for at most `timeout` seconds, makes
    /// everything durable and stops the worker. Records no datapoint: the open session continues
    /// if the app comes back within the session timeout. ``initialize(apiKey:options:)`` may be
    /// called again afterwards.
    ///
    /// - Throws: ``StintError`` with `.timeout` if datapoints stay queued (Stint is shut down all
    ///   the same, and they are kept for the next run), `.notInitialized`.
    public static func shutdown(timeout: TimeInterval = Stint.defaultTimeout) throws {
        let status = stint_shutdown(milliseconds(timeout))
        // Stopped whatever the status: reports fall back to the default level.
        Reports.level = .warn
        try check(status)
    }

    /// The app came to the foreground: starts a session unless one is open. Never throws.
    @discardableResult
    public static func openSession() -> Outcome {
        return fireAndForget("openSession") { stint_open_session() }
    }

    /// The app went to the background: records nothing and never waits on the disk. Coming back
    /// within the session timeout continues the same session. Never throws.
    @discardableResult
    public static func closeSession() -> Outcome {
        return fireAndForget("closeSession") { stint_close_session() }
    }

    /// Sets the current user (1-997 bytes of UTF-8). A different user ends the open session and
    /// starts a new one for the new user. Never throws: a bad id is `.invalidArgument`, returned
    /// and reported.
    @discardableResult
    public static func changeUser(_ userID: String) -> Outcome {
        return fireAndForget("changeUser") {
            try requireNoNul(userID, named: "userID")
            return stint_change_user(userID)
        }
    }

    /// Records a custom event in the open session, if any; it does not start one. Never throws:
    /// an empty or too long `name`, or `properties` that are not a JSON object or exceed 50 KB,
    /// are `.invalidArgument`, returned and reported, and record nothing.
    ///
    /// - Parameters:
    ///   - name: 1-255 bytes of UTF-8.
    ///   - properties: values `JSONSerialization` accepts (strings, numbers, booleans, `NSNull`,
    ///     arrays and dictionaries of them), at most 50 KB as JSON.
    @discardableResult
    public static func logCustomEvent(_ name: String, properties: [String: Any]? = nil) -> Outcome {
        return fireAndForget("logCustomEvent") {
            try requireNoNul(name, named: "name")
            let propertiesJSON = try properties.map(jsonObjectString)
            return withOptionalCString(propertiesJSON) { stint_log_custom_event(name, $0) }
        }
    }

    /// Asks the library to deliver queued datapoints now. Never blocks, never throws.
    @discardableResult
    public static func requestImmediateDataFlush() -> Outcome {
        return fireAndForget("requestImmediateDataFlush") { stint_request_immediate_data_flush() }
    }

    /// Whether Stint records and sends anything: the user's choice, kept in the data directory
    /// across restarts (with `requireConsent`, false until the app sets it true).
    ///
    /// Setting false drops the open session without recording its end and deletes every
    /// undelivered datapoint, on disk too; the fire-and-forget calls then succeed and record
    /// nothing. Setting true starts again: the next ``openSession()`` starts a new session.
    /// False while Stint is not initialized (nothing is tracked then). Neither reading nor
    /// setting throws; a failure is reported to the log handler (``setTrackingEnabled(_:)``
    /// also returns it).
    public static var isTrackingEnabled: Bool {
        get {
            var enabled = false
            let outcome = query("isTrackingEnabled") { stint_get_tracking_enabled(&enabled) }
            guard case .success = outcome else { return false }
            return enabled
        }
        set {
            setTrackingEnabled(newValue)
        }
    }

    /// Sets ``isTrackingEnabled`` and returns the outcome. Never throws.
    @discardableResult
    public static func setTrackingEnabled(_ enabled: Bool) -> Outcome {
        return fireAndForget("setTrackingEnabled") { stint_set_tracking_enabled(enabled) }
    }

    /// Lets the library send (true, the state each ``initialize(apiKey:options:)`` starts in) or
    /// holds every request (false: recording goes on, a request in flight may finish,
    /// ``flush(timeout:)`` throws `.timeout` at once). Not persisted; for the app's own network
    /// policy (e.g. Wi-Fi only). Never throws.
    @discardableResult
    public static func setNetworkEnabled(_ enabled: Bool) -> Outcome {
        return fireAndForget("setNetworkEnabled") { stint_set_network_enabled(enabled) }
    }

    /// Deletes every undelivered datapoint, the saved session, the user and the device id, on
    /// disk too (for a user's deletion request); Stint goes on with a new ``deviceID``, no user
    /// and no session. Nothing recorded before is sent after it returns; the tracking choice is
    /// kept. Never throws.
    @discardableResult
    public static func wipeData() -> Outcome {
        return fireAndForget("wipeData") { stint_wipe_data() }
    }

    /// The id of this installation (a UUID) sent with every datapoint: what a deletion request
    /// names. Nil while Stint is not initialized. Never throws.
    public static var deviceID: String? {
        var buffer = [CChar](repeating: 0, count: Int(STINT_SESSION_ID_BUFFER_LEN))
        let outcome = query("deviceID") {
            buffer.withUnsafeMutableBufferPointer { bytes in
                stint_get_device_id(bytes.baseAddress, bytes.count)
            }
        }
        guard case .success = outcome else { return nil }
        let id = buffer.withUnsafeBufferPointer { bytes in String(cString: bytes.baseAddress!) }
        return id.isEmpty ? nil : id
    }

    /// Blocks until every datapoint recorded before the call is delivered, or `timeout` seconds
    /// pass. Without a `baseURL` it only makes the data durable. Do not call it on the main
    /// thread with a long timeout.
    ///
    /// - Throws: ``StintError`` with `.timeout` (the data stays queued), `.notInitialized`.
    public static func flush(timeout: TimeInterval = Stint.defaultTimeout) throws {
        try check(stint_flush(milliseconds(timeout)))
    }

    /// The open session's id (a UUID), or nil if no session is open.
    public static var sessionID: String? {
        get throws {
            var buffer = [CChar](repeating: 0, count: Int(STINT_SESSION_ID_BUFFER_LEN))
            let status = buffer.withUnsafeMutableBufferPointer { bytes in
                stint_get_session_id(bytes.baseAddress, bytes.count)
            }
            try check(status)
            let id = buffer.withUnsafeBufferPointer { bytes in
                String(cString: bytes.baseAddress!)
            }
            return id.isEmpty ? nil : id
        }
    }

    /// The library's counters.
    public static var stats: StintStats {
        get throws {
            var stats = CStint.StintStats()
            try check(stint_get_stats(&stats))
            return StintStats(stats)
        }
    }

    /// The version of libstint, e.g. "0.1.0".
    public static var version: String {
        return String(cString: stint_version())
    }

    /// Sets the closure called when a session starts or ends (nil removes it). It runs on a
    /// library thread, one event at a time in the order they happened; dispatch to the main
    /// queue for UI work. It may call any Stint method. Once this returns, the previous closure
    /// is never called again (if called from inside the closure: once that call returns). May
    /// be set before ``initialize(apiKey:options:)``; it stays across ``shutdown(timeout:)``.
    public static func setSessionListener(_ closure: SessionListener?) {
        Callbacks.sessionListeners.set(closure)
    }

    /// Sets the closure that receives log messages (nil removes it: the library's messages then
    /// go to stderr, and the binding's reports to the unified log on Apple platforms).
    ///
    /// The library's messages at or above the `logLevel` option (default `.warn`) arrive on a
    /// library thread, never with the API key. A fire-and-forget call that fails reports it
    /// here too, on the calling thread (`.warn` for `.notInitialized`, `.error` otherwise), so
    /// the closure may run on several threads at once. The level is never `.off`. Same
    /// guarantees as ``setSessionListener(_:)``: it may call any Stint method, and once this
    /// returns the previous closure is never called again by the library.
    public static func setLogHandler(_ closure: LogHandler?) {
        Callbacks.logHandlers.set(closure)
    }
}

// MARK: - Fire-and-forget calls and their reports

/// Runs a fire-and-forget `call`; nothing escapes. A non-OK status, or an error the binding
/// raised itself (a NUL in a string, properties that are no JSON object), is reported to the
/// log handler and returned as the failure.
func fireAndForget(_ what: String, _ call: () throws -> StintStatus) -> Stint.Outcome {
    let outcome = attempt(call)
    if case .failure(let error) = outcome {
        Reports.report(what, error)
    }
    return outcome
}

/// Like ``fireAndForget(_:_:)``, for a query: `.notInitialized` is an answer (nil, false), not
/// reported.
func query(_ what: String, _ call: () throws -> StintStatus) -> Stint.Outcome {
    let outcome = attempt(call)
    if case .failure(let error) = outcome, error.status != .notInitialized {
        Reports.report(what, error)
    }
    return outcome
}

private func attempt(_ call: () throws -> StintStatus) -> Stint.Outcome {
    do {
        try check(call())
        return .success(())
    } catch let error as StintError {
        return .failure(error)
    } catch {
        return .failure(StintError(status: .internalError, message: "\(error)"))
    }
}

/// Where the binding reports failed calls: the app's log handler, else the platform log.
enum Reports {
    private static let currentLevel = Locked<StintOptions.LogLevel>(.warn)

    /// The `logLevel` of the running instance (`.warn` when none runs): reports pass the same
    /// filter as the library's messages.
    static var level: StintOptions.LogLevel {
        get { currentLevel.current }
        set { currentLevel.withLock { $0 = newValue } }
    }

    static func report(_ what: String, _ error: StintError) {
        let severity: StintOptions.LogLevel = error.status == .notInitialized ? .warn : .error
        guard severity.isReported(at: level) else { return }
        let line = "\(what) failed: \(error.status): \(error.message)"
        // A handler whose own Stint call fails is not called again for it (no endless loop).
        let thread = Thread.current.threadDictionary
        if let handler = Callbacks.logHandlers.current, thread[reportingKey] == nil {
            thread[reportingKey] = true
            defer { thread[reportingKey] = nil }
            handler(severity, line)
        } else {
            platformLog(severity, line)
        }
    }

    /// Set in a thread's dictionary while it runs the log handler for a report.
    private static let reportingKey = "io.stint.reporting"

    private static func platformLog(_ severity: StintOptions.LogLevel, _ line: String) {
        #if canImport(os)
        // A log object per report (rare: failed calls only) rather than a shared static one,
        // which Swift 6 would need to know Sendable.
        let log = OSLog(subsystem: "io.stint", category: "Stint")
        let type: OSLogType = severity == .error ? .error : .default
        os_log("%{public}@", log: log, type: type, line as NSString)
        #else
        FileHandle.standardError.write(Data("stint [\(severity.rawValue)] \(line)\n".utf8))
        #endif
    }
}

extension StintOptions.LogLevel {
    /// Whether a message at this severity passes the `logLevel` option `threshold`.
    func isReported(at threshold: StintOptions.LogLevel) -> Bool {
        let order: [StintOptions.LogLevel] = [.off, .error, .warn, .info, .debug]
        guard self != .off, threshold != .off,
              let mine = order.firstIndex(of: self), let limit = order.firstIndex(of: threshold)
        else { return false }
        return mine <= limit
    }
}

// MARK: - Calling the C API

/// Throws a ``StintError`` for a non-OK status, with the message of the failed call. Must run on
/// the thread of that call, right after it: the message is per thread.
func check(_ status: StintStatus) throws {
    guard status != STINT_STATUS_OK else { return }
    throw StintError(cStatus: status, message: lastErrorMessage())
}

/// The message of the latest failing call on this thread ("" if none).
func lastErrorMessage() -> String {
    let length = stint_last_error_message(nil, 0)
    guard length > 0 else { return "" }
    var buffer = [CChar](repeating: 0, count: length + 1)
    _ = buffer.withUnsafeMutableBufferPointer { bytes in
        stint_last_error_message(bytes.baseAddress, bytes.count)
    }
    return buffer.withUnsafeBufferPointer { bytes in String(cString: bytes.baseAddress!) }
}

/// A Swift string may contain NUL, which would silently cut it short as a C string.
func requireNoNul(_ value: String, named name: String) throws {
    if value.utf8.contains(0) {
        throw StintError(status: .invalidArgument, message: "\(name) must not contain NUL characters")
    }
}

/// `timeout` in whole milliseconds for the C API: rounded up, clamped to 0...UInt32.max.
func milliseconds(_ timeout: TimeInterval) -> UInt32 {
    guard timeout.isFinite else { return timeout > 0 ? UInt32.max : 0 }
    let value = (timeout * 1000).rounded(.up)
    if value <= 0 { return 0 }
    if value >= Double(UInt32.max) { return UInt32.max }
    return UInt32(value)
}

/// The JSON text of an event's properties; throws `.invalidArgument` where JSONSerialization
/// would raise an Objective-C exception (it cannot be caught in Swift).
func jsonObjectString(_ properties: [String: Any]) throws -> String {
    guard JSONSerialization.isValidJSONObject(properties) else {
        throw StintError(
            status: .invalidArgument,
            message: "properties must be a JSON object: strings, finite numbers, booleans, "
                + "NSNull, arrays and [String: Any] dictionaries of them")
    }
    let data: Data
    do {
        data = try JSONSerialization.data(withJSONObject: properties, options: [])
    } catch {
        throw StintError(status: .invalidArgument, message: "properties cannot be encoded as JSON: \(error)")
    }
    return String(decoding: data, as: UTF8.self)
}

/// Calls `body` with `string` as a C string, or with nil (NULL) for a nil string.
func withOptionalCString<Result>(
    _ string: String?, _ body: (UnsafePointer<CChar>?) throws -> Result
) rethrows -> Result {
    guard let string = string else { return try body(nil) }
    return try string.withCString { pointer in try body(pointer) }
}
