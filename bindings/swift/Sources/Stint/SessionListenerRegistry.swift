import CStint
import Foundation

/// Holds a listener closure while libstint may call it: the library gets the box back as
/// `user_data`, retained (`Unmanaged.passRetained`) for as long as it is registered.
final class SessionListenerBox {
    let handler: (StintSessionEvent) -> Void

    init(_ handler: @escaping (StintSessionEvent) -> Void) {
        self.handler = handler
    }
}

/// The C function the library calls; it captures nothing (a C function pointer cannot), the
/// closure comes through `user_data`.
private let sessionListenerTrampoline: StintSessionListener = { event, userData in
    guard let event = event, let userData = userData else { return }
    let box = Unmanaged<SessionListenerBox>.fromOpaque(userData).takeUnretainedValue()
    let swiftEvent = StintSessionEvent(event.pointee)
    // A listener that replaces itself releases its own box; keep it alive until it returns.
    withExtendedLifetime(box) {
        box.handler(swiftEvent)
    }
}

/// Registers listener boxes with the library and releases each once the library can no longer
/// call it.
///
/// No lock is held while calling `stint_set_session_listener`: it waits for a listener that is
/// running, and that listener may itself call `Stint.setSessionListener` (a deadlock if we held
/// a lock here). So concurrent calls may reach the library in any order, and we cannot tell
/// which box ended up registered. What we do know: a box whose registering call had returned
/// before another call started has been replaced by that call, and once that call returns the
/// library runs it no more (from inside a listener: the running call keeps its own reference).
/// Such boxes are released; any other stays retained until a later call.
enum SessionListenerRegistry {
    private struct Registration {
        let box: Unmanaged<SessionListenerBox>
        /// The value of `returnedCalls` when its registering call returned; nil while running.
        var returnedAt: UInt64?
    }

    private static let lock = NSLock()
    /// How many calls of `stint_set_session_listener` have returned.
    private static var returnedCalls: UInt64 = 0
    /// Boxes handed to the library and not yet released.
    private static var registrations: [Registration] = []

    static func set(_ handler: ((StintSessionEvent) -> Void)?) {
        let box = handler.map { Unmanaged.passRetained(SessionListenerBox($0)) }

        lock.lock()
        let returnedBeforeThisCall = returnedCalls
        if let box = box {
            registrations.append(Registration(box: box, returnedAt: nil))
        }
        lock.unlock()

        // Fails only on a caught panic, which leaves either listener registered: the box is
        // then kept like a registered one and released once a later call replaces it.
        if let box = box {
            _ = stint_set_session_listener(sessionListenerTrampoline, box.toOpaque())
        } else {
            _ = stint_set_session_listener(nil, nil)
        }

        var replaced: [Unmanaged<SessionListenerBox>] = []
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
