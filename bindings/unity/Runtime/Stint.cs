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
    /// <summary>The Stint SDK. Every member may be called from any thread.</summary>
    public static partial class Stint
    {
        /// <summary>Starts Stint. Throws StintException (e.g. InvalidArgument naming the option).</summary>
        public static void Initialize(string apiKey, StintOptions options = null)
        {
            options = options != null ? options.Copy() : new StintOptions();
            if (options.DataDirectory == null)
                options.DataDirectory = DefaultDataDirectory;
            Check(Native.stint_initialize(Utf8.Encode(apiKey, "api_key"), Utf8.Encode(options.ToJson(), "options_json")));
        }

        /// <summary>
        /// Stops Stint: tries to deliver queued datapoints within the timeout and makes everything
        /// durable. Records nothing; Initialize may be called again. Throws Timeout if datapoints
        /// stay queued (they are kept for the next run; Stint is stopped all the same).
        /// </summary>
        public static void Shutdown(TimeSpan timeout)
        {
            Check(Native.stint_shutdown(Milliseconds(timeout)));
        }

        /// <summary>The app came to the foreground: starts a session unless one is open.</summary>
        public static void OpenSession()
        {
            Check(Native.stint_open_session());
        }

        /// <summary>The app went to the background: activity, records nothing, makes state durable.</summary>
        public static void CloseSession()
        {
            Check(Native.stint_close_session());
        }

        /// <summary>Sets the current user; a different user ends the open session and starts a new one.</summary>
        public static void ChangeUser(string userId)
        {
            Check(Native.stint_change_user(Utf8.Encode(userId, "user_id")));
        }

        /// <summary>
        /// Records a custom event in the open session, if any. Property values may be strings,
        /// numbers, booleans, null, enums (as their name), dictionaries with string keys and lists.
        /// </summary>
        public static void LogCustomEvent(string name, IDictionary<string, object> properties = null)
        {
            byte[] nameBytes = Utf8.Encode(name, "name");
            string json = properties == null ? null : StintJson.Object(properties, "properties");
            Check(Native.stint_log_custom_event(nameBytes, Utf8.Encode(json, "properties_json")));
        }

        /// <summary>Asks the library to deliver queued datapoints now. Never blocks.</summary>
        public static void RequestImmediateDataFlush()
        {
            Check(Native.stint_request_immediate_data_flush());
        }

        /// <summary>Blocks until everything recorded so far is delivered (or durable, without a baseUrl).</summary>
        public static void Flush(TimeSpan timeout)
        {
            Check(Native.stint_flush(Milliseconds(timeout)));
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
            Check(Native.stint_set_session_listener(SessionThunk, IntPtr.Zero));
            lock (Gate)
                callbacksRegistered = true;
        }

        /// <summary>
        /// Sets the handler of the library's log messages (null: the default, stderr or the Unity
        /// console). Runs on the library's thread.
        /// </summary>
        public static void SetLogHandler(Action<StintLogLevel, string> handler)
        {
            lock (Gate)
                logHandler = handler;
            Check(Native.stint_set_log_handler(LogThunk, IntPtr.Zero));
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
        internal static void LifecycleCall(string what, StintStatus status)
        {
            if (status != StintStatus.Ok && status != StintStatus.NotInitialized)
                ReportWarning(what + " failed: " + status + ": " + LastErrorMessage());
        }

        internal static void Check(StintStatus status)
        {
            if (status != StintStatus.Ok)
            {
                string message = LastErrorMessage();
                throw new StintException(status, message.Length > 0 ? message : "Stint call failed with " + status);
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
