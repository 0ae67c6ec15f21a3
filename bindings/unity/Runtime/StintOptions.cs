// Stint for Unity: the options of Stint.Initialize and the options JSON they become.

using System;

namespace StintSdk
{
    /// <summary>
    /// The options of Stint.Initialize; defaults are the library's except KeepOpenWhileForeground
    /// (true here, false in C). The library validates them
    /// (ranges, absolute dataDirectory, https baseUrl) and names the option at fault.
    /// </summary>
    public sealed class StintOptions
    {
        /// <summary>A session ends after this long without activity (1 ..= 31536000).</summary>
        public int SessionTimeoutInSeconds { get; set; } = 1800;

        /// <summary>
        /// Never expire a session while the app is in the foreground. True here, as in other
        /// mobile SDKs: a game in the foreground never loses its session to an idle stretch (a
        /// cut-scene, a menu). The C API's default is false (web semantics).
        /// </summary>
        public bool KeepOpenWhileForeground { get; set; } = true;

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

        /// <summary>
        /// With no saved choice in the data directory, start with tracking disabled until the game
        /// sets Stint.TrackingEnabled = true (the player's consent). A saved choice wins.
        /// </summary>
        public bool RequireConsent { get; set; } = false;

        /// <summary>The game's version, sent with each session start (1-64 printable bytes). Null: not sent.</summary>
        public string AppVersion { get; set; }

        /// <summary>
        /// The options JSON passed to stint_initialize (null members, and RequireConsent when false,
        /// the library's default, are left out).
        /// </summary>
        public string ToJson()
        {
            var json = new JsonWriter("options_json");
            json.Byte('{');
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
            if (RequireConsent)
                StintJson.Member(json, "requireConsent", true, "options");
            if (AppVersion != null)
                StintJson.Member(json, "appVersion", AppVersion, "options");
            json.Byte('}');
            return json.ToString();
        }

        internal StintOptions Copy()
        {
            return (StintOptions)MemberwiseClone();
        }
    }
}
