// Stint for Unity: the options of Stint.Initialize and the options JSON they become.

using System;
using System.Text;

namespace StintSdk
{
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
}
