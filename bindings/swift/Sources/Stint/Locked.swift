import Foundation

/// A value shared between threads, read and written under a lock. `@unchecked Sendable`: every
/// access to `value` goes through `lock`, so the compiler's per-access check is replaced by it.
/// (`Synchronization.Mutex` would do, but needs iOS 18 / macOS 15.)
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with the value, holding the lock; `body` must not call back into this lock.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// The value now (a copy).
    var current: Value {
        return withLock { $0 }
    }
}
