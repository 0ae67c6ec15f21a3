import CStint
import Foundation

/// A Stint call failed: the status of the C API and the library's message, which names the
/// argument or option at fault (e.g. "sessionTimeoutInSeconds must be an integer >= 1, got 0").
public struct StintError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// The failing statuses of the C API (`StintStatus`), with the same numbers.
    public enum Status: Int, CaseIterable, Equatable, Sendable {
        /// A bad argument or option: NULL, bad UTF-8, too long, bad JSON, out of range.
        case invalidArgument = 1
        /// Called before ``Stint/initialize(apiKey:options:)`` or after ``Stint/shutdown(timeout:)``.
        case notInitialized = 2
        /// ``Stint/initialize(apiKey:options:)`` was already called.
        case alreadyInitialized = 3
        /// The data directory is unusable: disk full, permissions, I/O error.
        case storageError = 4
        /// Another process uses this data directory.
        case dataDirectoryLocked = 5
        /// Flush or shutdown did not finish in time; nothing is lost.
        case timeout = 6
        /// A bug in libstint was caught; the library stays usable.
        case internalError = 7
    }

    /// What went wrong.
    public let status: Status
    /// The status number the C API returned (equal to `status.rawValue` for known statuses).
    public let code: Int
    /// The library's explanation.
    public let message: String

    public init(status: Status, message: String) {
        self.status = status
        self.code = status.rawValue
        self.message = message
    }

    init(cStatus: StintStatus, message: String) {
        switch cStatus {
        case STINT_STATUS_INVALID_ARGUMENT: status = .invalidArgument
        case STINT_STATUS_NOT_INITIALIZED: status = .notInitialized
        case STINT_STATUS_ALREADY_INITIALIZED: status = .alreadyInitialized
        case STINT_STATUS_STORAGE_ERROR: status = .storageError
        case STINT_STATUS_DATA_DIRECTORY_LOCKED: status = .dataDirectoryLocked
        case STINT_STATUS_TIMEOUT: status = .timeout
        default: status = .internalError  // STINT_STATUS_INTERNAL_ERROR, or a newer status
        }
        code = Int(cStatus.rawValue)
        self.message = message
    }

    public var description: String {
        return "Stint error \(status) (\(code)): \(message)"
    }

    public var errorDescription: String? {
        return description
    }
}
