import CStint
import Foundation

/// Holds a Swift closure while libstint may call it: the library gets the box back as
/// `user_data`, retained (`Unmanaged.passRetained`) for as long as it is registered. The library
/// calls it on its own threads, hence a `Sendable` handler.
final class CallbackBox<Handler: Sendable>: Sendable {
    let handler: Handler

    init(_ handler: Handler) {
        self.handler = handler
    }
}

/// The C functions the library calls; they capture nothing (a C function pointer cannot), the
/// closure comes through `user_data`.
private let sessionListenerTrampoline: StintSessionListener = { event, userData in
    guard let event = event, let userData = userData else { return }
    let box = Unmanaged<CallbackBox<Stint.SessionListener>>.fromOpaque(userData).takeUnretainedValue()
    let swiftEvent = StintSessionEvent(event.pointee)
    // A listener that replaces itself releases its own box; keep it alive until it returns.
    withExtendedLifetime(box) {
        box.handler(swiftEvent)
    }
}

private let logHandlerTrampoline: StintLogHandler = { level, message, userData in
    guard let userData = userData else { return }
    let box = Unmanaged<CallbackBox<Stint.LogHandler>>.fromOpaque(userData).takeUnretainedValue()
    let text = message.map { String(cString: $0) } ?? ""
    let swiftLevel = StintOptions.LogLevel(cLevel: level)
    withExtendedLifetime(box) {
        box.handler(swiftLevel, text)
    }
}

extension StintOptions.LogLevel {
    /// The level of a message from the library; an unknown level is reported as `.error`.
    init(cLevel: CStint.StintLogLevel) {
        if cLevel == STINT_LOG_LEVEL_DEBUG {
            self = .debug
        } else if cLevel == STINT_LOG_LEVEL_INFO {
            self = .info
        } else if cLevel == STINT_LOG_LEVEL_WARN {
            self = .warn
        } else {
            self = .error
        }
    }
}

/// The session listener and the log handler, each registered through its registry.
enum Callbacks {
    static let sessionListeners = CallbackRegistry<Stint.SessionListener>(register: { userData in
        if let userData = userData {
            return stint_set_session_listener(sessionListenerTrampoline, userData)
        }
        return stint_set_session_listener(nil, nil)
    })

    static let logHandlers = CallbackRegistry<Stint.LogHandler>(register: { userData in
        if let userData = userData {
            return stint_set_log_handler(logHandlerTrampoline, userData)
        }
        return stint_set_log_handler(nil, nil)
    })
}

/// Registers closure boxes with the library through `register` (a box's pointer, or nil to
/// unregister) and releases each once the library can no longer call it.
///
/// No lock is held while calling `register`: the library waits there for a callback that is
/// running, and that callback may itself set a new one (a deadlock if we held a lock here). So
/// concurrent calls may reach the library in any order, and we cannot tell which box ended up
/// registered. What we do know: a box whose registering call had returned before another call
/// started has been replaced by that call, and once that call returns the library runs it no
/// more (from inside a callback: the running call keeps its own reference). Such boxes are
/// released; any other stays retained until a later call.
///
/// `@unchecked Sendable`: its mutable state (`returnedCalls`, `registrations`, `latest`) is only
/// touched under `lock`, and the handlers and `register` are `Sendable` themselves.
final class CallbackRegistry<Handler: Sendable>: @unchecked Sendable {
    private struct Registration {
        let box: Unmanaged<CallbackBox<Handler>>
        /// The value of `returnedCalls` when its registering call returned; nil while running.
        var returnedAt: UInt64?
    }

    private let register: @Sendable (UnsafeMutableRawPointer?) -> CStint.StintStatus
    private let lock = NSLock()
    /// How many calls of `register` have returned.
    private var returnedCalls: UInt64 = 0
    /// Boxes handed to the library and not yet released.
    private var registrations: [Registration] = []
    /// The closure of the latest `set`, for callers on the Swift side (binding reports).
    private var latest: Handler?

    init(register: @escaping @Sendable (UnsafeMutableRawPointer?) -> CStint.StintStatus) {
        self.register = register
    }

    /// The closure of the latest `set` (nil if none or removed).
    var current: Handler? {
        lock.lock()
        defer { lock.unlock() }
        return latest
    }

    func set(_ handler: Handler?) {
        let box = handler.map { Unmanaged.passRetained(CallbackBox($0)) }

        lock.lock()
        let returnedBeforeThisCall = returnedCalls
        latest = handler
        if let box = box {
            registrations.append(Registration(box: box, returnedAt: nil))
        }
        lock.unlock()

        // Fails only on a caught panic, which leaves either closure registered: the box is
        // then kept like a registered one and released once a later call replaces it.
        _ = register(box?.toOpaque())

        var replaced: [Unmanaged<CallbackBox<Handler>>] = []
        lock.lock()
        returnedCalls += 1
        var kept: [Registration] = []
        for var registration in registrations {
            if let box = box, registration.box.toOpaque() == box.toOpaque() {
                registration.returnedAt = returnedCalls
                kept.append(registration)
            } else if let returnedAt = registration.returnedAt, returnedAt <= returnedBeforeThisCall {
                replaced.append(registration.box)
            } else {
                kept.append(registration)
            }
        }
        registrations = kept
        lock.unlock()

        // Outside the lock: releasing may run deinitializers of whatever the closures captured.
        for box in replaced {
            box.release()
        }
    }
}
