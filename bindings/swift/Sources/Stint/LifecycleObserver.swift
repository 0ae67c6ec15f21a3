import CStint
import Foundation

/// Follows the app's lifecycle through notifications, so the app needs no glue of its own:
///
/// - `foreground` → ``Stint/openSession()``;
/// - `background` → ``Stint/closeSession()``, then ``Stint/requestImmediateDataFlush()``;
/// - `terminate` (if given) → ``Stint/shutdown(timeout:)`` with a 2-second timeout.
///
/// The handlers run on the thread that posts the notification, never throw and never wait on
/// the network (the terminating shutdown waits for it at most 2 s). A failed call (e.g. before
/// ``Stint/initialize(apiKey:options:)``) is reported to the log handler like any
/// fire-and-forget call. On Apple platforms ``Stint/trackApplicationLifecycle()`` sets one up
/// with the platform's notifications; this type is for the rest (tests, custom notifications).
///
/// `@unchecked Sendable`: the registrations are only touched under `lock`, which also serializes
/// the handlers, so ``stop()`` can promise that no handler runs after it returns.
public final class StintLifecycleObserver: @unchecked Sendable {
    /// How long the shutdown on `terminate` may deliver, in seconds.
    static let terminateTimeout: TimeInterval = 2

    private let center: NotificationCenter
    private let foreground: Notification.Name
    private let background: Notification.Name
    private let terminate: Notification.Name?
    /// Recursive: a handler's Stint call may reach the log handler, which may call ``stop()`` on
    /// the same thread.
    private let lock = NSRecursiveLock()
    /// The center's tokens while started; empty while stopped.
    private var tokens: [NSObjectProtocol] = []

    public init(
        center: NotificationCenter = .default,
        foreground: Notification.Name,
        background: Notification.Name,
        terminate: Notification.Name? = nil
    ) {
        self.center = center
        self.foreground = foreground
        self.background = background
        self.terminate = terminate
    }

    deinit {
        for token in tokens {
            center.removeObserver(token)
        }
    }

    /// Starts observing. Idempotent: one registration however often it is called.
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard tokens.isEmpty else { return }
        let names = [foreground, background] + (terminate.map { [$0] } ?? [])
        tokens = names.map { name in
            // Weak: the center keeps the block, which must not keep a forgotten observer alive.
            center.addObserver(forName: name, object: nil, queue: nil) { [weak self] _ in
                self?.handle(name)
            }
        }
    }

    /// Stops observing. Idempotent. Once it returns, this observer makes no Stint call: a
    /// handler running on another thread is waited for (from inside a handler, on its thread,
    /// the handler makes no further call). So not from the session listener or a library thread's
    /// log message: the terminating handler's shutdown may be waiting for that very thread.
    public func stop() {
        lock.lock()
        let removed = tokens
        tokens = []
        lock.unlock()
        for token in removed {
            center.removeObserver(token)
        }
    }

    private var isStarted: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !tokens.isEmpty
    }

    private func handle(_ name: Notification.Name) {
        lock.lock()
        defer { lock.unlock() }
        // A notification already on its way when stop() ran.
        guard isStarted else { return }
        if name == foreground {
            Stint.openSession()
        } else if name == background {
            Stint.closeSession()
            guard isStarted else { return }
            Stint.requestImmediateDataFlush()
        } else if name == terminate {
            _ = fireAndForget("shutdown") {
                try Stint.shutdown(timeout: StintLifecycleObserver.terminateTimeout)
                return STINT_STATUS_OK
            }
        }
    }
}

// The platform's notifications by their names, which are the values of the SDK constants
// (`UIApplication.didBecomeActiveNotification` is "UIApplicationDidBecomeActiveNotification"):
// the SDK marks those constants main-actor isolated (swiftlang/swift#59484), so Swift 6 would
// not let this nonisolated code read them.
#if canImport(UIKit) && (os(iOS) || os(tvOS))
/// The observer of ``Stint/trackApplicationLifecycle()``: `UIApplication.didBecomeActiveNotification`,
/// `didEnterBackgroundNotification` and `willTerminateNotification`.
private let applicationLifecycle = StintLifecycleObserver(
    foreground: Notification.Name("UIApplicationDidBecomeActiveNotification"),
    background: Notification.Name("UIApplicationDidEnterBackgroundNotification"),
    terminate: Notification.Name("UIApplicationWillTerminateNotification"))
#elseif canImport(AppKit) && os(macOS)
/// The observer of ``Stint/trackApplicationLifecycle()``: `NSApplication.didBecomeActiveNotification`,
/// `didResignActiveNotification` and `willTerminateNotification`. A Mac app has no background
/// state: it is away while another app is frontmost.
private let applicationLifecycle = StintLifecycleObserver(
    foreground: Notification.Name("NSApplicationDidBecomeActiveNotification"),
    background: Notification.Name("NSApplicationDidResignActiveNotification"),
    terminate: Notification.Name("NSApplicationWillTerminateNotification"))
#endif

#if (canImport(UIKit) && (os(iOS) || os(tvOS))) || (canImport(AppKit) && os(macOS))
extension Stint {
    /// Apple platforms: follows the app with the platform's notifications.
    ///
    /// Becoming active opens the session; entering the background (macOS: resigning active)
    /// closes it and asks for a send; terminating shuts Stint down within 2 s. Call it once at
    /// launch, right after ``initialize(apiKey:options:)`` and before the app becomes active
    /// (`application(_:didFinishLaunchingWithOptions:)` or the SwiftUI `App`'s `init()`).
    /// Idempotent.
    public static func trackApplicationLifecycle() {
        applicationLifecycle.start()
    }
}
#endif
