// Ties Stint to the Unity player: drains the session-listener queue on the main thread every
// frame and reports foreground/background to the library. Created automatically before the
// first scene loads; it does nothing until Stint.Initialize has been called.

#if UNITY_5_3_OR_NEWER
using System;
using UnityEngine;

namespace StintSdk
{
    [AddComponentMenu("")]
    [DisallowMultipleComponent]
    public sealed class StintLifecycle : MonoBehaviour
    {
        private static StintLifecycle instance;

        [RuntimeInitializeOnLoadMethod(RuntimeInitializeLoadType.BeforeSceneLoad)]
        private static void CreateInstance()
        {
            if (instance != null)
                return;
            var host = new GameObject("Stint");
            host.hideFlags = HideFlags.HideInHierarchy | HideFlags.DontSave;
            DontDestroyOnLoad(host);
            instance = host.AddComponent<StintLifecycle>();
        }

        private void Update()
        {
            Stint.DispatchPendingEvents();
        }

        private void OnApplicationPause(bool paused)
        {
            if (paused)
                Background();
            else
                Foreground();
        }

        private void OnApplicationFocus(bool focused)
        {
            if (focused)
                Foreground();
            else
                Background();
        }

        private void OnApplicationQuit()
        {
            Background();
            // Releases the data directory (the Editor keeps the native library loaded). TIMEOUT
            // is fine: what could not be delivered stays queued for the next run.
            Stint.LifecycleCall("Shutdown", () => Native.stint_shutdown(QuitShutdownMilliseconds));
        }

        private void OnDestroy()
        {
            if (instance == this)
                instance = null;
        }

        private const uint QuitShutdownMilliseconds = 2000;

        private static void Foreground()
        {
            Stint.LifecycleCall("OpenSession", () => Native.stint_open_session());
        }

        private static void Background()
        {
            Stint.LifecycleCall("CloseSession", () => Native.stint_close_session());
        }
    }
}
#endif
