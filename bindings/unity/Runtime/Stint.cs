// Stint for Unity: a thin C# binding over the C API of libstint (include/stint.h).
//
// Every call goes straight to the native library; no session logic lives here. Strings cross as
// NUL-terminated UTF-8 that this file encodes itself, a non-OK status becomes a StintException
// carrying the library's message, and native callbacks are static methods kept alive in static
// fields (IL2CPP can only call those).

using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

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

    /// <summary>
    /// The options of Stint.Initialize; defaults are the library's. The library validates them
    /// (ranges, absolute dataDirectory, https baseUrl) and names the option at fault.
    /// </summary>
    public sealed class StintOptions
    {
        /// <summary>A session ends after this long without activity (1 ..= 31536000).</summary>
        public int SessionTimeoutInSeconds { get; set; } = 1800;

        /// <summary>Never expire a session while the app is in the foreground.</summary>
        public bool KeepOpenWhileForeground { get; set; } = false;

        /// <summary>
        /// Absolute path, created 0700. Null: in Unity Application.persistentDataPath + "/stint",
        /// elsewhere the library's default (per-user data directory + "/stint").
        /// </summary>
        public string DataDirectory { get; set; }

        /// <summary>Collector URL (https://, or http:// for loopback hosts). Null: store only, send nothing.</summary>
        public string BaseUrl { get; set; }

        /// <summary>Seconds between deliveries (1 ..= 86400).</summary>
        public int FlushIntervalInSeconds { get; set; } = 10;

        /// <summary>Beyond this many queued datapoints the oldest custom events are dropped (100 ..= 10000000).</summary>
        public long MaxQueuedDatapoints { get; set; } = 100000;

        /// <summary>"off", "error", "warn", "info" or "debug".</summary>
        public string LogLevel { get; set; } = "warn";

        /// <summary>The options JSON passed to stint_initialize (null members are left out).</summary>
        public string ToJson()
        {
            var json = new StringBuilder(256);
            json.Append('{');
            StintJson.Member(json, "sessionTimeoutInSeconds", SessionTimeoutInSeconds, "options");
            StintJson.Member(json, "keepOpenWhileForeground", KeepOpenWhileForeground, "options");
            if (DataDirectory != null)
                StintJson.Member(json, "dataDirectory", DataDirectory, "options");
            if (BaseUrl != null)
                StintJson.Member(json, "baseUrl", BaseUrl, "options");
            StintJson.Member(json, "flushIntervalInSeconds", FlushIntervalInSeconds, "options");
            StintJson.Member(json, "maxQueuedDatapoints", MaxQueuedDatapoints, "options");
            if (LogLevel != null)
                StintJson.Member(json, "logLevel", LogLevel, "options");
            json.Append('}');
            return json.ToString();
        }

        internal StintOptions Copy()
        {
            return (StintOptions)MemberwiseClone();
        }
    }

    /// <summary>The Stint SDK. Every member may be called from any thread.</summary>
    public static class Stint
    {
#if UNITY_IOS && !UNITY_EDITOR
        internal const string LibName = "__Internal";
#else
        internal const string LibName = "stint";
#endif

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

        // ---- Domain reload (Unity Editor): the native library outlives the managed domain. ----

        /// <summary>
        /// Runs when a scripting domain loads: unregisters callbacks a previous domain may have
        /// left behind and shuts down the instance it left running, so Initialize works again.
        /// </summary>
        internal static void OnDomainLoaded()
        {
            SubscribeToDomainUnload();
#if UNITY_5_3_OR_NEWER
            CacheUnityDataDirectory();
#endif
            bool reRegister;
            lock (Gate)
            {
                pendingEvents.Clear();
                reRegister = callbacksRegistered;
            }
            // Callbacks of an unloaded domain must never be called: clear them first.
            Native.stint_set_session_listener(null, IntPtr.Zero);
            Native.stint_set_log_handler(null, IntPtr.Zero);
            StintStatus status = Native.stint_shutdown(DomainReloadShutdownMilliseconds);
            if (status != StintStatus.Ok && status != StintStatus.NotInitialized && status != StintStatus.Timeout)
                ReportWarning("shutting down the instance left by the previous domain: " + status + ": " + LastErrorMessage());
            if (reRegister)
            {
                // Same domain (e.g. play mode without domain reload): keep this domain's listeners.
                Native.stint_set_session_listener(SessionThunk, IntPtr.Zero);
                Native.stint_set_log_handler(LogThunk, IntPtr.Zero);
            }
#if UNITY_5_3_OR_NEWER
            else
            {
                // The library's own default (stderr) is invisible in Unity: route to the console.
                Native.stint_set_log_handler(LogThunk, IntPtr.Zero);
                lock (Gate)
                    callbacksRegistered = true;
            }
#endif
        }

        /// <summary>Runs before the domain unloads: the library must not call into it any more.</summary>
        internal static void OnDomainUnloading()
        {
            Native.stint_set_session_listener(null, IntPtr.Zero);
            Native.stint_set_log_handler(null, IntPtr.Zero);
            lock (Gate)
            {
                callbacksRegistered = false;
                pendingEvents.Clear();
            }
        }

        internal const uint DomainReloadShutdownMilliseconds = 1000;

#if UNITY_5_3_OR_NEWER
        [UnityEngine.RuntimeInitializeOnLoadMethod(UnityEngine.RuntimeInitializeLoadType.SubsystemRegistration)]
        private static void OnRuntimeLoad()
        {
            OnDomainLoaded();
        }

        private static void CacheUnityDataDirectory()
        {
            // Application.persistentDataPath may only be read on the main thread; this runs there.
            unityDataDirectory = UnityEngine.Application.persistentDataPath + "/stint";
        }

        private static string unityDataDirectory;
#endif

#if UNITY_EDITOR
        [UnityEditor.InitializeOnLoadMethod]
        private static void OnEditorLoad()
        {
            OnDomainLoaded();
            UnityEditor.AssemblyReloadEvents.beforeAssemblyReload -= OnDomainUnloading;
            UnityEditor.AssemblyReloadEvents.beforeAssemblyReload += OnDomainUnloading;
        }
#endif

        private static void SubscribeToDomainUnload()
        {
            lock (Gate)
            {
                if (subscribedToUnload)
                    return;
                subscribedToUnload = true;
            }
            AppDomain.CurrentDomain.DomainUnload += delegate { OnDomainUnloading(); };
        }

        static Stint()
        {
            SubscribeToDomainUnload();
        }

        // ---- Internals ----

        internal const int SessionIdBufferLength = 37;

        private static readonly object Gate = new object();
        private static Action<StintSessionEvent> sessionListener;
        private static StintDispatch sessionDispatch;
        private static long listenerGeneration;
        private static Action<StintLogLevel, string> logHandler;
        private static bool callbacksRegistered;
        private static bool subscribedToUnload;

        private struct PendingEvent
        {
            public long Generation;
            public StintSessionEvent Event;
        }

        /// <summary>Sessions are rare; this bound only matters if nobody drains the queue.</summary>
        private const int MaxPendingEvents = 10000;
        private static readonly Queue<PendingEvent> pendingEvents = new Queue<PendingEvent>();

        // Held in static fields so the GC never frees what the library calls.
        private static readonly Native.SessionListener SessionThunk = OnNativeSessionEvent;
        private static readonly Native.LogHandler LogThunk = OnNativeLog;

        [AOT.MonoPInvokeCallback(typeof(Native.SessionListener))]
        private static void OnNativeSessionEvent(IntPtr nativeEvent, IntPtr userData)
        {
            // An exception must never unwind into the library.
            try
            {
                var raw = (Native.SessionEvent)Marshal.PtrToStructure(nativeEvent, typeof(Native.SessionEvent));
                var sessionEvent = new StintSessionEvent(
                    (StintSessionEventKind)raw.Kind,
                    Utf8.Decode(raw.SessionId),
                    raw.UserId == IntPtr.Zero ? null : Utf8.Decode(raw.UserId),
                    raw.StartTime,
                    raw.EndTime);
                Action<StintSessionEvent> listener;
                lock (Gate)
                {
                    if (sessionListener == null)
                        return;
                    if (sessionDispatch == StintDispatch.MainThread)
                    {
                        if (pendingEvents.Count < MaxPendingEvents)
                            pendingEvents.Enqueue(new PendingEvent { Generation = listenerGeneration, Event = sessionEvent });
                        return;
                    }
                    listener = sessionListener;
                }
                listener(sessionEvent);
            }
            catch (Exception e)
            {
                ReportListenerException(e);
            }
        }

        [AOT.MonoPInvokeCallback(typeof(Native.LogHandler))]
        private static void OnNativeLog(int level, IntPtr message, IntPtr userData)
        {
            try
            {
                Action<StintLogLevel, string> handler;
                lock (Gate)
                    handler = logHandler;
                var logLevel = (StintLogLevel)level;
                string text = Utf8.Decode(message);
                if (handler != null)
                    handler(logLevel, text);
                else
                    DefaultLog(logLevel, text);
            }
            catch (Exception e)
            {
                ReportListenerException(e);
            }
        }

        private static void DefaultLog(StintLogLevel level, string message)
        {
#if UNITY_5_3_OR_NEWER
            string line = "Stint: " + message;
            if (level == StintLogLevel.Error)
                UnityEngine.Debug.LogError(line);
            else if (level == StintLogLevel.Warn)
                UnityEngine.Debug.LogWarning(line);
            else
                UnityEngine.Debug.Log(line);
#else
            Console.Error.WriteLine("stint [" + level.ToString().ToLowerInvariant() + "] " + message);
#endif
        }

        private static void ReportListenerException(Exception e)
        {
#if UNITY_5_3_OR_NEWER
            UnityEngine.Debug.LogException(e);
#else
            Console.Error.WriteLine("Stint: a listener threw: " + e);
#endif
        }

        internal static void ReportWarning(string message)
        {
#if UNITY_5_3_OR_NEWER
            UnityEngine.Debug.LogWarning("Stint: " + message);
#else
            Console.Error.WriteLine("Stint: " + message);
#endif
        }

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

    /// <summary>NUL-terminated UTF-8, encoded and decoded here rather than by the marshaller.</summary>
    internal static class Utf8
    {
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>Null stays null (a NULL pointer: the library names the argument).</summary>
        public static byte[] Encode(string text, string argument)
        {
            if (text == null)
                return null;
            if (text.IndexOf('\0') >= 0)
                throw new StintException(StintStatus.InvalidArgument, argument + " must not contain NUL characters");
            try
            {
                var bytes = new byte[Strict.GetByteCount(text) + 1];
                Strict.GetBytes(text, 0, text.Length, bytes, 0);
                return bytes;
            }
            catch (ArgumentException)
            {
                throw new StintException(StintStatus.InvalidArgument, argument + " is not valid text (unpaired UTF-16 surrogate)");
            }
        }

        public static string Decode(byte[] buffer)
        {
            int length = Array.IndexOf(buffer, (byte)0);
            return Encoding.UTF8.GetString(buffer, 0, length < 0 ? buffer.Length : length);
        }

        public static string Decode(IntPtr text)
        {
            if (text == IntPtr.Zero)
                return null;
            int length = 0;
            while (Marshal.ReadByte(text, length) != 0)
                length++;
            var bytes = new byte[length];
            Marshal.Copy(text, bytes, 0, length);
            return Encoding.UTF8.GetString(bytes);
        }
    }

    /// <summary>
    /// A small JSON writer for options and event properties: RFC 8259 escaping, numbers in the
    /// invariant culture, and a StintException(InvalidArgument) for what JSON cannot hold.
    /// </summary>
    internal static class StintJson
    {
        private const int MaxDepth = 64;

        public static string Object(IDictionary<string, object> properties, string path)
        {
            var json = new StringBuilder();
            Value(json, properties, path, 0);
            return json.ToString();
        }

        public static void Member(StringBuilder json, string key, object value, string path)
        {
            if (json.Length > 0 && json[json.Length - 1] != '{')
                json.Append(',');
            String(json, key);
            json.Append(':');
            Value(json, value, path + "." + key, 1);
        }

        public static void Value(StringBuilder json, object value, string path, int depth)
        {
            if (depth > MaxDepth)
                throw Invalid(path, "is nested more than " + MaxDepth + " levels deep (a cycle?)");
            if (value == null)
            {
                json.Append("null");
                return;
            }
            if (value is string)
            {
                String(json, (string)value);
                return;
            }
            if (value is bool)
            {
                json.Append((bool)value ? "true" : "false");
                return;
            }
            if (value is char)
            {
                String(json, value.ToString());
                return;
            }
            if (value is Enum)
            {
                String(json, value.ToString());
                return;
            }
            if (value is double || value is float)
            {
                double number = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                if (double.IsNaN(number) || double.IsInfinity(number))
                    throw Invalid(path, "is " + number.ToString(CultureInfo.InvariantCulture) + ", which JSON cannot represent");
                // "R" round-trips; a float is formatted as a float so 0.1f stays 0.1.
                json.Append(value is float
                    ? ((float)value).ToString("R", CultureInfo.InvariantCulture)
                    : number.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            if (value is sbyte || value is byte || value is short || value is ushort || value is int
                || value is uint || value is long || value is ulong || value is decimal)
            {
                json.Append(((IFormattable)value).ToString(null, CultureInfo.InvariantCulture));
                return;
            }
            var dictionary = value as IDictionary;
            if (dictionary != null)
            {
                json.Append('{');
                bool first = true;
                foreach (DictionaryEntry entry in dictionary)
                {
                    var key = entry.Key as string;
                    if (key == null)
                        throw Invalid(path, "has a key that is not a string (" + entry.Key.GetType().Name + ")");
                    if (!first)
                        json.Append(',');
                    first = false;
                    String(json, key);
                    json.Append(':');
                    Value(json, entry.Value, path + "." + key, depth + 1);
                }
                json.Append('}');
                return;
            }
            var pairs = value as IEnumerable<KeyValuePair<string, object>>;
            if (pairs != null)
            {
                json.Append('{');
                bool first = true;
                foreach (var pair in pairs)
                {
                    if (pair.Key == null)
                        throw Invalid(path, "has a null key");
                    if (!first)
                        json.Append(',');
                    first = false;
                    String(json, pair.Key);
                    json.Append(':');
                    Value(json, pair.Value, path + "." + pair.Key, depth + 1);
                }
                json.Append('}');
                return;
            }
            var list = value as IEnumerable;
            if (list != null)
            {
                json.Append('[');
                int index = 0;
                foreach (object item in list)
                {
                    if (index > 0)
                        json.Append(',');
                    Value(json, item, path + "[" + index + "]", depth + 1);
                    index++;
                }
                json.Append(']');
                return;
            }
            throw Invalid(path, "has a type JSON cannot hold: " + value.GetType().FullName);
        }

        public static void String(StringBuilder json, string text)
        {
            json.Append('"');
            foreach (char c in text)
            {
                switch (c)
                {
                    case '"': json.Append("\\\""); break;
                    case '\\': json.Append("\\\\"); break;
                    case '\n': json.Append("\\n"); break;
                    case '\r': json.Append("\\r"); break;
                    case '\t': json.Append("\\t"); break;
                    case '\b': json.Append("\\b"); break;
                    case '\f': json.Append("\\f"); break;
                    default:
                        if (c < 0x20)
                            json.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else
                            json.Append(c); // other text, surrogate pairs included, goes as UTF-8
                        break;
                }
            }
            json.Append('"');
        }

        private static StintException Invalid(string path, string problem)
        {
            return new StintException(StintStatus.InvalidArgument, path + " " + problem);
        }
    }

    /// <summary>The C API, one to one (see include/stint.h).</summary>
    internal static class Native
    {
        [StructLayout(LayoutKind.Sequential)]
        internal struct SessionEvent
        {
            public int Kind;
            public IntPtr SessionId;
            public IntPtr UserId;
            public double StartTime;
            public double EndTime;
        }

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void SessionListener(IntPtr sessionEvent, IntPtr userData);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogHandler(int level, IntPtr message, IntPtr userData);

        // byte[] arguments are NUL-terminated UTF-8 (Utf8.Encode); null passes NULL.
        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_initialize(byte[] apiKey, byte[] optionsJson);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_shutdown(uint timeoutMs);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_open_session();

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_close_session();

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_change_user(byte[] userId);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_log_custom_event(byte[] name, byte[] propertiesJson);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_request_immediate_data_flush();

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_flush(uint timeoutMs);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_get_session_id([Out] byte[] buffer, UIntPtr bufferLen);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_get_stats(out StintStats stats);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern UIntPtr stint_last_error_message([Out] byte[] buffer, UIntPtr bufferLen);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_set_session_listener(SessionListener listener, IntPtr userData);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_set_log_handler(LogHandler handler, IntPtr userData);

        [DllImport(Stint.LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr stint_version();
    }
}

#if !UNITY_5_3_OR_NEWER
namespace AOT
{
    /// <summary>Stand-in for UnityEngine's attribute where UnityEngine is absent (tests under plain Mono).</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type type)
        {
        }
    }
}
#endif
