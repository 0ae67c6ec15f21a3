import CStint
import Foundation

/// Stint: session tracking for the app. A thin layer over libstint's C API; every rule about
/// when sessions start and end lives in the library.
///
/// Call ``initialize(apiKey:options:)`` once at launch, ``openSession()`` when the app comes to
/// the foreground and ``closeSession()`` when it goes to the background. Every method may be
/// called from any thread. A non-OK status of the C API is thrown as ``StintError``, carrying
/// the library's message.
public enum Stint {
    /// How long ``flush(timeout:)`` and ``shutdown(timeout:)`` wait by default, in seconds.
    public static let defaultTimeout: TimeInterval = 5

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
    }

    /// Stops Stint: tries to deliver queued datapoints for at most `timeout` seconds, makes
    /// everything durable and stops the worker. Records no datapoint: the open session continues
    /// if the app comes back within the session timeout. ``initialize(apiKey:options:)`` may be
    /// called again afterwards.
    ///
    /// - Throws: ``StintError`` with `.timeout` if datapoints stay queued (Stint is shut down all
    ///   the same, and they are kept for the next run), `.notInitialized`.
    public static func shutdown(timeout: TimeInterval = Stint.defaultTimeout) throws {
        try check(stint_shutdown(milliseconds(timeout)))
    }

    /// The app came to the foreground: starts a session unless one is open.
    public static func openSession() throws {
        try check(stint_open_session())
    }

    /// The app went to the background: records nothing, makes the state durable. Coming back
    /// within the session timeout continues the same session.
    public static func closeSession() throws {
        try check(stint_close_session())
    }

    /// Sets the current user (1-997 bytes of UTF-8). A different user ends the open session and
    /// starts a new one for the new user.
    public static func changeUser(_ userId: String) throws {
        try requireNoNul(userId, named: "userId")
        try check(stint_change_user(userId))
    }

    /// Records a custom event in the open session, if any; it does not start one.
    ///
    /// - Parameters:
    ///   - name: 1-255 bytes of UTF-8.
    ///   - properties: values `JSONSerialization` accepts (strings, numbers, booleans, `NSNull`,
    ///     arrays and dictionaries of them), at most 50 KB as JSON.
    /// - Throws: ``StintError`` with `.invalidArgument` if `properties` is not a valid JSON
    ///   object or is too large, or `name` is empty or too long.
    public static func logCustomEvent(_ name: String, properties: [String: Any]? = nil) throws {
        try requireNoNul(name, named: "name")
        let propertiesJSON = try properties.map(jsonObjectString)
        let status = withOptionalCString(propertiesJSON) { stint_log_custom_event(name, $0) }
        try check(status)
    }

    /// Asks the library to deliver queued datapoints now. Never blocks.
    ///
    /// - Throws: ``StintError`` with `.notInitialized`.
    public static func requestImmediateDataFlush() throws {
        try check(stint_request_immediate_data_flush())
    }

    /// Blocks until every datapoint recorded before the call is delivered, or `timeout` seconds
    /// pass. Without a `baseUrl` it only makes the data durable. Do not call it on the main
    /// thread with a long timeout.
    ///
    /// - Throws: ``StintError`` with `.timeout` (the data stays queued), `.notInitialized`.
    public static func flush(timeout: TimeInterval = Stint.defaultTimeout) throws {
        try check(stint_flush(milliseconds(timeout)))
    }

    /// The open session's id (a UUID), or nil if no session is open.
    public static var sessionId: String? {
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
    public static func setSessionListener(_ closure: ((StintSessionEvent) -> Void)?) {
        SessionListenerRegistry.set(closure)
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
