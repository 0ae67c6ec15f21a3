// Stint for Unity: the native callbacks (session listener, log handler) and Editor domain reload.
//
// Native callbacks are static methods kept alive in static fields (IL2CPP can only call those);
// session events for the main thread are queued here until DispatchPendingEvents runs them.

using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace StintSdk
{
    public static partial class Stint
    {
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
            try
            {
                ResetNativeState(reRegister);
            }
            catch (Exception e)
            {
                // A player without the native library for its platform: Stint stays off, the
                // game runs on (Initialize will say why).
                if (!(e is DllNotFoundException || e is EntryPointNotFoundException || e is BadImageFormatException))
                    throw;
                ReportWarning("the native library stint could not be loaded: " + e.GetType().Name + ": " + e.Message);
            }
        }

        private static void ResetNativeState(bool reRegister)
        {
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
            try
            {
                Native.stint_set_session_listener(null, IntPtr.Zero);
                Native.stint_set_log_handler(null, IntPtr.Zero);
            }
            catch (Exception e)
            {
                // No native library: it holds no callbacks to clear.
                if (!(e is DllNotFoundException || e is EntryPointNotFoundException || e is BadImageFormatException))
                    throw;
            }
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
    }
}
