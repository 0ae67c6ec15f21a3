// Stint for Unity: the public value types of the C API (statuses, log levels, session events,
// counters) and the exception that carries a failed status.

using System;
using System.Globalization;
using System.Runtime.InteropServices;

namespace StintSdk
{
    /// <summary>The result of a native call. The numbers are those of the C header.</summary>
    public enum StintStatus
    {
        Ok = 0,
        InvalidArgument = 1,
        NotInitialized = 2,
        AlreadyInitialized = 3,
        StorageError = 4,
        DataDirectoryLocked = 5,
        Timeout = 6,
        InternalError = 7,
    }

    /// <summary>The level of a log message from the library.</summary>
    public enum StintLogLevel
    {
        Error = 1,
        Warn = 2,
        Info = 3,
        Debug = 4,
    }

    public enum StintSessionEventKind
    {
        Started = 0,
        Ended = 1,
    }

    /// <summary>Where a session listener runs.</summary>
    public enum StintDispatch
    {
        /// <summary>
        /// Queued and run by <see cref="Stint.DispatchPendingEvents"/>: in Unity by StintLifecycle,
        /// once a frame on the main thread.
        /// </summary>
        MainThread,

        /// <summary>At once on the library's callback thread (keep it short; no UnityEngine calls).</summary>
        LibraryThread,
    }

    /// <summary>A failed Stint call: the status and the library's message naming what was wrong.</summary>
    public sealed class StintException : Exception
    {
        public StintStatus Status { get; private set; }

        public StintException(StintStatus status, string message)
            : base(message)
        {
            Status = status;
        }
    }

    /// <summary>A session started or ended.</summary>
    public sealed class StintSessionEvent
    {
        public StintSessionEventKind Kind { get; private set; }
        public string SessionId { get; private set; }

        /// <summary>The user; null when anonymous.</summary>
        public string UserId { get; private set; }

        /// <summary>Seconds since the Unix epoch (millisecond precision).</summary>
        public double StartTime { get; private set; }

        /// <summary>Seconds since the Unix epoch; 0 for a started session.</summary>
        public double EndTime { get; private set; }

        public StintSessionEvent(StintSessionEventKind kind, string sessionId, string userId, double startTime, double endTime)
        {
            Kind = kind;
            SessionId = sessionId;
            UserId = userId;
            StartTime = startTime;
            EndTime = endTime;
        }

        public override string ToString()
        {
            return string.Format(CultureInfo.InvariantCulture, "{0} {1} user={2} start={3} end={4}",
                Kind, SessionId, UserId ?? "(anonymous)", StartTime, EndTime);
        }
    }

    /// <summary>Counters; all but DatapointsPending count since Initialize.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StintStats
    {
        // Same layout as the C struct StintStats: six uint64_t.
        private ulong sessionsStarted;
        private ulong sessionsEnded;
        private ulong datapointsRecorded;
        private ulong datapointsPending;
        private ulong datapointsDelivered;
        private ulong datapointsDropped;

        public ulong SessionsStarted { get { return sessionsStarted; } }
        public ulong SessionsEnded { get { return sessionsEnded; } }
        public ulong DatapointsRecorded { get { return datapointsRecorded; } }

        /// <summary>Recorded and not yet delivered, including those recovered from earlier runs.</summary>
        public ulong DatapointsPending { get { return datapointsPending; } }
        public ulong DatapointsDelivered { get { return datapointsDelivered; } }

        /// <summary>Dropped because the queue was full or the collector rejected them.</summary>
        public ulong DatapointsDropped { get { return datapointsDropped; } }

        public override string ToString()
        {
            return string.Format(CultureInfo.InvariantCulture,
                "sessionsStarted={0} sessionsEnded={1} datapointsRecorded={2} datapointsPending={3} datapointsDelivered={4} datapointsDropped={5}",
                sessionsStarted, sessionsEnded, datapointsRecorded, datapointsPending, datapointsDelivered, datapointsDropped);
        }
    }
}
