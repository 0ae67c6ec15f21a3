// Stint for Unity: a thin C# binding over the C API of libstint (include/stint.h).
//
// Every call goes straight to the native library; no session logic lives here. This file is the
// public API; the other files of Runtime/ hold its parts by concern:
//   StintTypes.cs      statuses, log levels, session events, counters, StintException
//   StintOptions.cs    the options and their JSON
//   StintJson.cs       the JSON writer for options and event properties
//   StintNative.cs     the P/Invoke declarations and the UTF-8 strings that cross them
//   StintCallbacks.cs  the native callbacks, their dispatch, and Editor domain reload

using System;
using System.Collections.Generic;

namespace StintSdk
{
    /// <summary>
    /// The Stint SDK. Every member may be called from any thread.
    ///
    /// Initialize, Flush and Shutdown may fail in ways the app must handle: they throw
    /// StintException. The fire-and-forget calls (OpenSession, CloseSession, ChangeUser,
    /// LogCustomEvent, RequestImmediateDataFlush, TrackingEnabled's setter, SetTrackingEnabled,
    /// SetNetworkEnabled, WipeData) never throw, whatever happens (a bad argument, a call before
    /// Initialize, a missing native library): they return the StintStatus and report a failure
    /// to the log handler (see SetLogHandler), so that analytics can never crash the game.
    /// </summary>
    public static partial class Stint
    {
        /// <summary>
        /// Starts Stint. Throws StintException (e.g. InvalidArgument naming the option; InternalError
        /// if the native library cannot be loaded).
        /// </summary>
        public static void Initialize(string apiKey, StintOptions options = null)
        {
            options = options != null ? options.Copy() : new StintOptions();
            if (options.DataDirectory == null)
                options.DataDirectory = DefaultDataDirectory;
            byte[] key = Utf8.Encode(apiKey, "api_key");
            byte[] json = Utf8.Encode(options.ToJson(), "options_json");
            Check(CallNative(() => Native.stint_initialize(key, json)));
            reportLevel = ReportLevelOf(options.LogLevel);
        }

        /// <summary>
        /// Stops Stint: tries to deliver queued datapoints within the timeout and makes everything
        /// durable. Records nothing; Initialize may be called again. Throws Timeout if datapoints
        /// stay queued (they are kept for the next run; Stint is stopped all the same).
        /// </summary>
        public static void Shutdown(TimeSpan timeout)
        {
            uint milliseconds = Milliseconds(timeout);
            StintStatus status = CallNative(() => Native.stint_shutdown(milliseconds));
            // Stopped whatever the status: reports fall back to the default level.
            reportLevel = DefaultReportLevel;
            Check(status);
        }

        /// <summary>The app came to the foreground: starts a session unless one is open. Never throws.</summary>
        public static StintStatus OpenSession()
        {
            try
            {
                return Reported("OpenSession", Native.stint_open_session());
            }
            catch (Exception e)
            {
                return Reported("OpenSession", e);
            }
        }

        /// <summary>
        /// The app went to the background: activity, records nothing, never waits on the disk.
        /// Never throws.
        /// </summary>
        public static StintStatus CloseSession()
        {
            try
            {
                return Reported("CloseSession", Native.stint_close_session());
            }
            catch (Exception e)
            {
                return Reported("CloseSession", e);
            }
        }

        /// <summary>
        /// Sets the current user (1-997 bytes of UTF-8); a different user ends the open session
        /// and starts a new one. Never throws: a bad id is InvalidArgument, returned and reported.
        /// </summary>
        public static StintStatus ChangeUser(string userId)
        {
            return FireAndForget("ChangeUser", () => Native.stint_change_user(Utf8.Encode(userId, "user_id")));
        }

        /// <summary>
        /// Records a custom event in the open session, if any. Property values may be strings,
        /// numbers, booleans, null, enums (as their name), dictionaries with string keys and lists.
        /// Never throws: bad arguments are InvalidArgument, returned and reported, and record nothing.
        /// </summary>
        public static StintStatus LogCustomEvent(string name, IDictionary<string, object> properties = null)
        {
            // The hot call: the name and the properties' JSON go as UTF-8 in arrays this thread
            // reuses, so a call allocates nothing of its own (the arrays are only read during it).
            JsonWriter writer = null;
            try
            {
                byte[] json = null;
                if (properties != null)
                {
                    writer = JsonWriter.TakeForThisThread();
                    StintJson.Write(writer, properties, "properties");
                    json = writer.Terminated();
                }
                return Reported("LogCustomEvent", Native.stint_log_custom_event(Utf8.EncodeReused(name, "name"), json));
            }
            catch (Exception e)
            {
                return Reported("LogCustomEvent", e);
            }
            finally
            {
                if (writer != null)
                    writer.Release();
            }
        }

        /// <summary>Asks the library to deliver queued datapoints now. Never blocks, never throws.</summary>
        public static StintStatus RequestImmediateDataFlush()
        {
            return FireAndForget("RequestImmediateDataFlush", () => Native.stint_request_immediate_data_flush());
        }

        /// <summary>Blocks until everything recorded so far is delivered (or durable, without a baseUrl).</summary>
        public static void Flush(TimeSpan timeout)
        {
            uint milliseconds = Milliseconds(timeout);
            Check(CallNative(() => Native.stint_flush(milliseconds)));
        }

        /// <summary>
        /// Whether Stint records and sends anything: the user's choice, kept in the data directory
        /// across restarts (with RequireConsent, false until the app sets it true). Setting false
        /// drops the open session without recording its end and deletes every undelivered
        /// datapoint, on disk too; the fire-and-forget calls then return Ok and record nothing.
        /// Setting true starts again: the next OpenSession starts a new session. False while Stint
        /// is not initialized (nothing is tracked then). Neither get nor set throws; a failure is
        /// reported to the log handler (SetTrackingEnabled also returns it).
        /// </summary>
        public static bool TrackingEnabled
        {
            get
            {
                bool enabled = false;
                StintStatus status = Query("TrackingEnabled", () => Native.stint_get_tracking_enabled(out enabled));
                return status == StintStatus.Ok && enabled;
            }
            set
            {
                SetTrackingEnabled(value);
            }
        }

        /// <summary>Sets TrackingEnabled and returns the status. Never throws.</summary>
        public static StintStatus SetTrackingEnabled(bool enabled)
        {
            return FireAndForget("SetTrackingEnabled", () => Native.stint_set_tracking_enabled(enabled));
        }

        /// <summary>
        /// Lets the library send (true, the state each Initialize starts in) or holds every request
        /// (false: recording goes on, a request in flight may finish, Flush throws Timeout at once).
        /// Not persisted; for the game's own network policy (e.g. Wi-Fi only). Never throws.
        /// </summary>
        public static StintStatus SetNetworkEnabled(bool enabled)
        {
            return FireAndForget("SetNetworkEnabled", () => Native.stint_set_network_enabled(enabled));
        }

        /// <summary>
        /// Deletes every undelivered datapoint, the saved session, the user and the device id, on
        /// disk too (for a player's deletion request); Stint goes on with a new DeviceId, no user
        /// and no session. Nothing recorded before is sent after it returns; the tracking choice
        /// is kept. Never throws.
        /// </summary>
        public static StintStatus WipeData()
        {
            return FireAndForget("WipeData", () => Native.stint_wipe_data());
        }

        /// <summary>
        /// The id of this installation (a UUID) sent with every datapoint: what a deletion request
        /// names. Null while Stint is not initialized. Never throws.
        /// </summary>
        public static string DeviceId
        {
            get
            {
                var buffer = new byte[SessionIdBufferLength];
                StintStatus status = Query("DeviceId", () => Native.stint_get_device_id(buffer, new UIntPtr((uint)buffer.Length)));
                if (status != StintStatus.Ok)
                    return null;
                string id = Utf8.Decode(buffer);
                return id.Length == 0 ? null : id;
            }
        }

        /// <summary>The open session's id, or null when none is open.</summary>
        public static string SessionId
        {
            get
            {
                var buffer = new byte[SessionIdBufferLength];
                Check(Native.stint_get_session_id(buffer, new UIntPtr((uint)buffer.Length)));
                string id = Utf8.Decode(buffer);
                return id.Length == 0 ? null : id;
            }
        }

        public static StintStats Stats
        {
            get
            {
                StintStats stats;
                Check(Native.stint_get_stats(out stats));
                return stats;
            }
        }

        /// <summary>The native library's version, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { return Utf8.Decode(Native.stint_version()); }
        }

        /// <summary>
        /// Sets the listener for sessions starting and ending (null unsets). With MainThread it
        /// runs from DispatchPendingEvents (in Unity: every frame); with LibraryThread it runs at
        /// once on the library's thread. May be set before Initialize; stays across Shutdown. Once
        /// this returns, the previous listener is never called again (events queued for it are
        /// discarded).
        /// </summary>
        public static void SetSessionListener(Action<StintSessionEvent> listener, StintDispatch dispatch = StintDispatch.MainThread)
        {
            lock (Gate)
            {
                sessionListener = listener;
                sessionDispatch = dispatch;
                listenerGeneration++;
            }
            // Always (re-)registering the same thunk makes concurrent setters agree, and the
            // library returns only once a call to the previous listener has finished.
            Check(CallNative(() => Native.stint_set_session_listener(SessionThunk, IntPtr.Zero)));
            lock (Gate)
                callbacksRegistered = true;
        }

        /// <summary>
        /// Sets the handler of the library's log messages (null: the default, stderr or the Unity
        /// console). The library's messages arrive on its own thread; a fire-and-forget call that
        /// fails reports it here on the calling thread (Warn for NotInitialized, Error otherwise),
        /// filtered by the LogLevel option like the library's. So it may run on several threads at
        /// once. Set even when the native library cannot be loaded: that failure is reported here.
        /// </summary>
        public static void SetLogHandler(Action<StintLogLevel, string> handler)
        {
            lock (Gate)
                logHandler = handler;
            StintStatus status;
            try
            {
                status = CallNative(() => Native.stint_set_log_handler(LogThunk, IntPtr.Zero));
            }
            catch (StintException e)
            {
                Report("SetLogHandler", e.Status, e.Message);
                return;
            }
            Check(status);
            lock (Gate)
                callbacksRegistered = true;
        }

        /// <summary>
        /// Runs the MainThread session listener for every queued event, on the calling thread;
        /// returns how many ran. StintLifecycle calls it every frame; outside Unity call it yourself.
        /// </summary>
        public static int DispatchPendingEvents()
        {
            int dispatched = 0;
            while (true)
            {
                Action<StintSessionEvent> listener;
                StintSessionEvent sessionEvent;
                lock (Gate)
                {
                    if (pendingEvents.Count == 0)
                        return dispatched;
                    var pending = pendingEvents.Dequeue();
                    if (pending.Generation != listenerGeneration || sessionListener == null)
                        continue;
                    listener = sessionListener;
                    sessionEvent = pending.Event;
                }
                dispatched++;
                try
                {
                    listener(sessionEvent);
                }
                catch (Exception e)
                {
                    ReportListenerException(e);
                }
            }
        }

        // ---- Internals ----

        internal const int SessionIdBufferLength = 37;

        private static string DefaultDataDirectory
        {
            get
            {
#if UNITY_5_3_OR_NEWER
                return unityDataDirectory;
#else
                return null;
#endif
            }
        }

        /// <summary>Lifecycle calls from StintLifecycle: never throw, and not initialised is fine.</summary>
        /// <summary>
        /// Lifecycle calls from StintLifecycle: never throw, and not initialised (or, for shutdown,
        /// a timeout: the data stays queued) is fine; other failures go to the log handler.
        /// </summary>
        internal static void LifecycleCall(string what, Func<StintStatus> call)
        {
            string message;
            StintStatus status = Attempt(call, out message);
            if (status == StintStatus.Ok || status == StintStatus.NotInitialized)
                return;
            if (what == "Shutdown" && status == StintStatus.Timeout)
                return;
            Report(what, status, message);
        }

        internal static void Check(StintStatus status)
        {
            if (status != StintStatus.Ok)
            {
                string message = LastErrorMessage();
                throw new StintException(status, message.Length > 0 ? message : "Stint call failed with " + status);
            }
        }

        /// <summary>
        /// Runs a native call. A native library that cannot be loaded (or lacks the function: an
        /// older build) throws StintException(InternalError) naming the cause, so that a game
        /// catching StintException around Initialize catches this too.
        /// </summary>
        private static StintStatus CallNative(Func<StintStatus> call)
        {
            try
            {
                return call();
            }
            catch (Exception e)
            {
                StintException loadFailure = LoadFailure(e);
                if (loadFailure == null)
                    throw;
                throw loadFailure;
            }
        }

        /// <summary>A native library that cannot be loaded (or lacks the function) as InternalError; else null.</summary>
        private static StintException LoadFailure(Exception e)
        {
            if (!(e is DllNotFoundException || e is EntryPointNotFoundException || e is BadImageFormatException))
                return null;
            return new StintException(StintStatus.InternalError,
                "the native library stint could not be loaded or lacks this function: " + e.GetType().Name + ": " + e.Message);
        }

        /// <summary>The end of a fire-and-forget call that returned: a failure goes to the log handler.</summary>
        private static StintStatus Reported(string what, StintStatus status)
        {
            if (status != StintStatus.Ok)
                Report(what, status, LastErrorMessage());
            return status;
        }

        /// <summary>The end of a fire-and-forget call that threw: reported, and returned as a status.</summary>
        private static StintStatus Reported(string what, Exception e)
        {
            string message;
            StintStatus status = StatusOf(e, out message);
            Report(what, status, message);
            return status;
        }

        /// <summary>
        /// A fire-and-forget call: nothing escapes. A non-OK status, a StintException of the binding
        /// (a NUL in a string, a property JSON cannot hold) and any other exception (a missing
        /// native library) are reported to the log handler and returned as a status.
        /// </summary>
        private static StintStatus FireAndForget(string what, Func<StintStatus> call)
        {
            string message;
            StintStatus status = Attempt(call, out message);
            if (status != StintStatus.Ok)
                Report(what, status, message);
            return status;
        }

        /// <summary>Like FireAndForget, for a query: NotInitialized is an answer (null, false), not reported.</summary>
        private static StintStatus Query(string what, Func<StintStatus> call)
        {
            string message;
            StintStatus status = Attempt(call, out message);
            if (status != StintStatus.Ok && status != StintStatus.NotInitialized)
                Report(what, status, message);
            return status;
        }

        private static StintStatus Attempt(Func<StintStatus> call, out string message)
        {
            try
            {
                StintStatus status = call();
                message = status == StintStatus.Ok ? "" : LastErrorMessage();
                return status;
            }
            catch (Exception e)
            {
                return StatusOf(e, out message);
            }
        }

        /// <summary>
        /// What an exception in a call means: the binding's StintException as it is, a native library
        /// that cannot be loaded as InternalError naming the cause, anything else InternalError.
        /// </summary>
        private static StintStatus StatusOf(Exception e, out string message)
        {
            var stint = e as StintException ?? LoadFailure(e);
            if (stint != null)
            {
                message = stint.Message;
                return stint.Status;
            }
            message = e.GetType().Name + ": " + e.Message;
            return StintStatus.InternalError;
        }

        /// <summary>Passes a failed call to the log handler (or the default log). Never throws.</summary>
        private static void Report(string what, StintStatus status, string message)
        {
            StintLogLevel level = status == StintStatus.NotInitialized ? StintLogLevel.Warn : StintLogLevel.Error;
            if ((int)level > reportLevel)
                return;
            string line = what + " failed: " + status + ": " + message;
            try
            {
                Action<StintLogLevel, string> handler;
                lock (Gate)
                    handler = logHandler;
                // A handler whose own Stint call fails is not called again for it (no endless loop).
                if (handler != null && !reporting)
                {
                    reporting = true;
                    try
                    {
                        handler(level, line);
                    }
                    finally
                    {
                        reporting = false;
                    }
                }
                else
                {
                    DefaultLog(level, line);
                }
            }
            catch (Exception e)
            {
                try
                {
                    ReportListenerException(e);
                }
                catch (Exception)
                {
                    // Nowhere left to report to.
                }
            }
        }

        /// <summary>True on a thread while it runs the log handler for a report.</summary>
        [ThreadStatic]
        private static bool reporting;

        private const int DefaultReportLevel = (int)StintLogLevel.Warn;

        /// <summary>The LogLevel of the running instance as a number (off = 0); Warn when none runs.</summary>
        private static volatile int reportLevel = DefaultReportLevel;

        private static int ReportLevelOf(string logLevel)
        {
            switch (logLevel)
            {
                case "off": return 0;
                case "error": return (int)StintLogLevel.Error;
                case "info": return (int)StintLogLevel.Info;
                case "debug": return (int)StintLogLevel.Debug;
                default: return DefaultReportLevel;
            }
        }

        /// <summary>The message of the latest failing call on this thread ("" if none).</summary>
        internal static string LastErrorMessage()
        {
            var buffer = new byte[512];
            ulong length = Native.stint_last_error_message(buffer, new UIntPtr((uint)buffer.Length)).ToUInt64();
            if (length >= (ulong)buffer.Length)
            {
                buffer = new byte[length + 1];
                Native.stint_last_error_message(buffer, new UIntPtr((ulong)buffer.Length));
            }
            return Utf8.Decode(buffer);
        }

        internal static uint Milliseconds(TimeSpan timeout)
        {
            double ms = Math.Ceiling(timeout.TotalMilliseconds);
            if (ms <= 0)
                return 0;
            if (ms >= uint.MaxValue)
                return uint.MaxValue;
            return (uint)ms;
        }
    }
}
