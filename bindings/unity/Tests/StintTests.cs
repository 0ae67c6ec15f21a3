// Tests of the C# binding against the real libstint and the loopback collector. Each test uses a
// fresh data directory and leaves Stint shut down (CleanUp runs after every test).

using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Threading;
using StintSdk;

namespace StintSdk.Tests
{
    public sealed class StintTests
    {
        private const string ApiKey = "unity-test-key";

        /// <summary>Generous: this runs on slow, busy two-core machines.</summary>
        private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

        private readonly List<string> temporaryPaths = new List<string>();
        private readonly List<Process> processes = new List<Process>();
        private bool faultsChanged;

        // ---- The C header and the binding agree ----

        [Test]
        public void StatusLogLevelAndEventKindNumbersMatchTheHeader()
        {
            string header = File.ReadAllText(Path.Combine(RepoRoot, "include", "stint.h"));
            AssertEnumMatches<StintStatus>(header, "STINT_STATUS_", 8);
            AssertEnumMatches<StintLogLevel>(header, "STINT_LOG_LEVEL_", 4);
            AssertEnumMatches<StintSessionEventKind>(header, "STINT_SESSION_EVENT_KIND_", 2);
            Assert.Equal(Stint.SessionIdBufferLength,
                int.Parse(Regex.Match(header, @"#define STINT_SESSION_ID_BUFFER_LEN (\d+)").Groups[1].Value), "session id buffer");
            Assert.Equal(48, Marshal.SizeOf(typeof(StintStats)), "StintStats is six uint64_t");
        }

        [Test]
        public void VersionIsTheLibraryVersionFromTheHeader()
        {
            string header = File.ReadAllText(Path.Combine(RepoRoot, "include", "stint.h"));
            string expected = Regex.Match(header, "#define STINT_VERSION_STRING \"([^\"]+)\"").Groups[1].Value;
            Assert.True(expected.Length > 0, "the header defines STINT_VERSION_STRING");
            Assert.Equal(expected, Stint.Version, "Stint.Version");
        }

        // ---- The full lifecycle, seen through the listener and at the collector ----

        [Test]
        public void FullSessionLifecycleIsSeenByTheListenerAndAtTheCollector()
        {
            var events = new List<StintSessionEvent>();
            Stint.SetSessionListener(e => { lock (events) events.Add(e); });
            Stint.Initialize(ApiKey, Options(withCollector: true));
            Assert.Equal(null, Stint.SessionId, "no session before OpenSession");

            double before = UnixNow();
            Stint.OpenSession();
            string first = Stint.SessionId;
            Assert.True(first != null && first.Length == 36, "a session id (UUID) after OpenSession, got " + first);
            DispatchUntil(events, 1);
            AssertEvent(events[0], StintSessionEventKind.Started, first, null);
            Assert.True(Math.Abs(events[0].StartTime - before) < 30, "start time is now: " + events[0].StartTime + " vs " + before);
            Assert.Equal(0.0, events[0].EndTime, "end time of a started session");

            var properties = new Dictionary<string, object> { { "level", 3 }, { "hero", "Zoë \"the brave\"" }, { "boss", true } };
            Stint.LogCustomEvent("level_up", properties);

            string alice = UniqueUser("alice");
            Stint.ChangeUser(alice);
            string second = Stint.SessionId;
            Assert.True(second != null && second != first, "changing the user starts a new session");
            DispatchUntil(events, 3);
            AssertEvent(events[1], StintSessionEventKind.Ended, first, null);
            Assert.True(events[1].EndTime >= events[1].StartTime, "a session never ends before it starts");
            AssertEvent(events[2], StintSessionEventKind.Started, second, alice);

            Stint.Flush(Long);
            StintStats stats = Stint.Stats;
            Assert.Equal(2UL, stats.SessionsStarted, "sessions started");
            Assert.Equal(1UL, stats.SessionsEnded, "sessions ended");
            Assert.Equal(4UL, stats.DatapointsRecorded, "datapoints recorded (ss, ce, se, ss)");
            Assert.Equal(0UL, stats.DatapointsPending, "nothing pending after Flush");
            Assert.Equal(4UL, stats.DatapointsDelivered, "datapoints delivered");
            Assert.Equal(0UL, stats.DatapointsDropped, "datapoints dropped");

            var received = Collector.Datapoints()
                .Where(d => (string)d["session_id"] == first || (string)d["session_id"] == second).ToList();
            Assert.Equal("ss ce se ss", string.Join(" ", received.Select(d => (string)d["name"]).ToArray()), "datapoints at the collector, in order");
            Assert.Equal(first, (string)received[0]["session_id"], "ss of the first session");
            Assert.Equal(null, received[0]["user_id"], "anonymous first session");
            Assert.True(Math.Abs(events[0].StartTime - Number(received[0]["time"])) < 0.0005, "ss time equals the listener's start time");
            var ce = (Dictionary<string, object>)received[1]["data"];
            Assert.Equal("level_up", (string)ce["n"], "custom event name");
            var p = (Dictionary<string, object>)ce["p"];
            Assert.Equal(3L, (long)p["level"], "property level");
            Assert.Equal("Zoë \"the brave\"", (string)p["hero"], "property hero");
            Assert.Equal(true, (bool)p["boss"], "property boss");
            var se = (Dictionary<string, object>)received[2]["data"];
            Assert.True(Math.Abs(Number(se["d"]) - (events[1].EndTime - events[1].StartTime)) < 0.0015,
                "se duration equals the listener's end - start");
            Assert.True(Math.Abs(events[1].EndTime - Number(received[2]["time"])) < 0.0005, "se time equals the listener's end time");
            Assert.Equal(alice, (string)received[3]["user_id"], "the new session belongs to the new user");

            var users = (List<object>)((Dictionary<string, object>)Json.Parse(Collector.Get("/api/users")))["users"];
            var aliceRow = users.Cast<Dictionary<string, object>>().Single(u => (string)u["user_id"] == alice);
            Assert.Equal(1L, (long)aliceRow["sessions"], "the dashboard counts alice's session");

            Stint.CloseSession();
            Assert.Equal(second, Stint.SessionId, "CloseSession keeps the session open (the app may come back)");
            Stint.Shutdown(Long);
        }

        // ---- Custom event properties ----

        [Test]
        public void CustomEventPropertiesArriveAsWrittenWhateverTheCulture()
        {
            var nested = new Dictionary<string, object> { { "deeper", new Dictionary<string, int> { { "n", 1 } } } };
            var properties = new Dictionary<string, object>
            {
                { "text", "quote \" backslash \\ slash / newline \n tab \t cr \r controls \u0001\u001f del \u007f" },
                { "unicode", "Zoë 日本 😀" },
                { "int", 42 }, { "negative", -7L }, { "long_max", long.MaxValue }, { "ulong_max", ulong.MaxValue },
                { "byte", (byte)255 }, { "short", (short)-32768 },
                { "double", 0.1 }, { "small", 1.5e-7 }, { "big", 1e300 }, { "float", 0.1f }, { "decimal", 12.5m },
                { "yes", true }, { "no", false }, { "nothing", null }, { "char", 'x' }, { "enum", StintLogLevel.Warn },
                { "list", new List<object> { 1, "two", null, new[] { 3, 4 } } },
                { "array", new[] { 1.5, -2.25 } },
                { "nested", nested },
                { "empty_object", new Dictionary<string, object>() }, { "empty_list", new List<object>() },
                { "key with \"quotes\", \\ and ü", "ok" },
            };
            string user = UniqueUser("typed");
            Stint.Initialize(ApiKey, Options(withCollector: true));
            Stint.ChangeUser(user);
            var culture = Thread.CurrentThread.CurrentCulture;
            try
            {
                // A decimal comma must not leak into JSON.
                Thread.CurrentThread.CurrentCulture = new CultureInfo("de-DE");
                Assert.Equal("{\"d\":1.5,\"f\":0.25,\"m\":2.5,\"e\":1E-07}", StintJson.Object(
                    new Dictionary<string, object> { { "d", 1.5 }, { "f", 0.25f }, { "m", 2.5m }, { "e", 1e-7 } }, "p"), "numbers in de-DE");
                Stint.LogCustomEvent("typed", properties);
            }
            finally
            {
                Thread.CurrentThread.CurrentCulture = culture;
            }
            Assert.Equal("{\"s\":\"a\\\"b\\\\c\\n\\u0001\\u001f\\b\\f\"}",
                StintJson.Object(new Dictionary<string, object> { { "s", "a\"b\\c\n\u0001\u001f\b\f" } }, "p"), "escaping");

            Stint.Flush(Long);
            var ce = Collector.Datapoints().Single(d => (string)d["user_id"] == user && (string)d["name"] == "ce");
            Assert.Equal(null, ce["session_id"], "no session was open");
            var data = (Dictionary<string, object>)ce["data"];
            Assert.Equal("typed", (string)data["n"], "event name");
            var p = (Dictionary<string, object>)data["p"];
            Assert.Equal(properties.Count, p.Count, "number of properties");
            Assert.Equal(properties["text"], p["text"], "text with escapes");
            Assert.Equal("Zoë 日本 😀", (string)p["unicode"], "unicode text");
            Assert.Equal(42L, (long)p["int"], "int");
            Assert.Equal(-7L, (long)p["negative"], "negative");
            Assert.Equal(long.MaxValue, (long)p["long_max"], "long.MaxValue");
            Assert.Equal(ulong.MaxValue.ToString(CultureInfo.InvariantCulture), Convert.ToString(p["ulong_max"], CultureInfo.InvariantCulture), "ulong.MaxValue");
            Assert.Equal(255L, (long)p["byte"], "byte");
            Assert.Equal(-32768L, (long)p["short"], "short");
            Assert.Equal(0.1, Number(p["double"]), "double");
            Assert.Equal(1.5e-7, Number(p["small"]), "small double");
            Assert.Equal(1e300, Number(p["big"]), "big double");
            Assert.Equal(0.1, Number(p["float"]), "float written as the float 0.1");
            Assert.Equal(12.5, Number(p["decimal"]), "decimal");
            Assert.Equal(true, p["yes"], "true");
            Assert.Equal(false, p["no"], "false");
            Assert.True(p.ContainsKey("nothing") && p["nothing"] == null, "null");
            Assert.Equal("x", (string)p["char"], "char");
            Assert.Equal("Warn", (string)p["enum"], "enum by name");
            var list = (List<object>)p["list"];
            Assert.Equal(4, list.Count, "list length");
            Assert.Equal(1L, (long)list[0], "list[0]");
            Assert.Equal("two", (string)list[1], "list[1]");
            Assert.Equal(null, list[2], "list[2]");
            Assert.Equal("3,4", string.Join(",", ((List<object>)list[3]).Select(x => x.ToString()).ToArray()), "list[3]");
            var array = (List<object>)p["array"];
            Assert.Equal(1.5, Number(array[0]), "array[0]");
            Assert.Equal(-2.25, Number(array[1]), "array[1]");
            var deeper = (Dictionary<string, object>)((Dictionary<string, object>)p["nested"])["deeper"];
            Assert.Equal(1L, (long)deeper["n"], "nested.deeper.n");
            Assert.Equal(0, ((Dictionary<string, object>)p["empty_object"]).Count, "empty object");
            Assert.Equal(0, ((List<object>)p["empty_list"]).Count, "empty list");
            Assert.Equal("ok", (string)p["key with \"quotes\", \\ and ü"], "escaped key");
            Stint.Shutdown(Long);
        }

        /// <summary>An enumerable whose enumeration logs an event itself (re-entering LogCustomEvent).</summary>
        private sealed class LoggingList : IEnumerable
        {
            public IEnumerator GetEnumerator()
            {
                Stint.LogCustomEvent("inner", new Dictionary<string, object> { { "inner", "x" } });
                yield return 1;
                yield return 2;
            }
        }

        [Test]
        public void ReusedBuffersCarryNothingFromOneCallToTheNext()
        {
            // Exact JSON first: escapes that outgrow the space a string reserved, and the integer edges.
            string controls = new string('\u0001', 700) + "é" + new string('"', 300) + "😀";
            string expected = "{\"c\":\"" + string.Concat(Enumerable.Repeat("\\u0001", 700)) + "é"
                + string.Concat(Enumerable.Repeat("\\\"", 300)) + "😀\",\"min\":-9223372036854775808,\"zero\":0}";
            Assert.Equal(expected, StintJson.Object(new Dictionary<string, object>
                { { "c", controls }, { "min", long.MinValue }, { "zero", 0 } }, "p"), "escapes past the reservation");

            string user = UniqueUser("reused");
            Stint.Initialize(ApiKey, Options(withCollector: true));
            Stint.ChangeUser(user);
            string longName = "a_long_event_name_" + new string('x', 200);
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent(longName, new Dictionary<string, object> { { "big", controls } }), "long");
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("short", new Dictionary<string, object> { { "n", 1 } }), "short after long");
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("naïve 日本"), "non-ASCII name, no properties");
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("ok"), "short ASCII name after a longer one");
            // A property whose enumeration logs an event: both arrive whole.
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("outer", new Dictionary<string, object> { { "list", new LoggingList() } }), "re-entered");
            // A failed call leaves nothing behind for the next.
            Assert.Equal(StintStatus.InvalidArgument, Stint.LogCustomEvent("bad\0name"), "NUL in the name");
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("after_bad", new Dictionary<string, object> { { "k", "v" } }), "after a failure");
            Stint.Flush(Long);

            var events = Collector.Datapoints()
                .Where(d => (string)d["user_id"] == user && (string)d["name"] == "ce")
                .Select(d => (Dictionary<string, object>)d["data"]).ToList();
            Assert.Equal("a_long_event_name_,short,naïve 日本,ok,inner,outer,after_bad",
                string.Join(",", events.Select(e => ((string)e["n"]).Length > 30 ? ((string)e["n"]).Substring(0, 18) : (string)e["n"]).ToArray()),
                "the names, in order");
            Assert.Equal(longName, (string)events[0]["n"], "the long name whole");
            Assert.Equal(controls, (string)((Dictionary<string, object>)events[0]["p"])["big"], "the long property whole");
            Assert.Equal(1L, (long)((Dictionary<string, object>)events[1]["p"])["n"], "short's property");
            Assert.Equal(0, ((Dictionary<string, object>)events[2]["p"]).Count, "no properties: an empty object");
            Assert.Equal("x", (string)((Dictionary<string, object>)events[4]["p"])["inner"], "inner's property");
            var outer = (List<object>)((Dictionary<string, object>)events[5]["p"])["list"];
            Assert.Equal("1,2", string.Join(",", outer.Select(x => x.ToString()).ToArray()), "outer's list");
            Assert.Equal("v", (string)((Dictionary<string, object>)events[6]["p"])["k"], "after_bad's property");
            Stint.Shutdown(Long);
        }

        [Test]
        public void PropertiesJsonCannotHoldAreInvalidArgumentReportedAndRecordNothing()
        {
            var logs = RecordLogs();
            Stint.Initialize(ApiKey, Options(withCollector: false));
            Stint.OpenSession();
            ulong recorded = Stint.Stats.DatapointsRecorded;
            var cyclic = new List<object>();
            cyclic.Add(cyclic);
            var cases = new Dictionary<string, object>
            {
                { "properties.nan", double.NaN },
                { "properties.infinity", float.PositiveInfinity },
                { "properties.object", new object() },
                { "properties.numberKeys", new Hashtable { { 1, "one" } } },
                { "properties.cycle", cyclic },
            };
            foreach (var bad in cases)
            {
                string key = bad.Key.Substring("properties.".Length);
                Assert.Equal(StintStatus.InvalidArgument,
                    Stint.LogCustomEvent("bad", new Dictionary<string, object> { { key, bad.Value } }), bad.Key);
                Assert.Contains("LogCustomEvent failed: InvalidArgument: " + bad.Key, logs.NextReport("LogCustomEvent"), "the report names the property");
            }
            Assert.Equal(StintStatus.InvalidArgument,
                Stint.LogCustomEvent("bad", new Dictionary<string, object> { { "lone", "\uD800" } }), "unpaired surrogate");
            Assert.Contains("properties_json", logs.NextReport("LogCustomEvent"), "unpaired surrogate report");
            Assert.Equal(StintStatus.InvalidArgument,
                Stint.LogCustomEvent("bad", new Dictionary<string, object> { { "huge", new string('x', 60 * 1024) } }), "over 50 KB");
            Assert.Contains("properties_json", logs.NextReport("LogCustomEvent"), "the library names properties_json");
            Assert.Equal(recorded, Stint.Stats.DatapointsRecorded, "nothing recorded by rejected calls");
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("fine", new Dictionary<string, object>()), "a good call");
            Assert.Equal(recorded + 1, Stint.Stats.DatapointsRecorded, "a good call after the bad ones records");
            Stint.Shutdown(Long);
        }

        // ---- Options ----

        [Test]
        public void OptionsJsonHoldsEveryKeyWithItsType()
        {
            var options = new StintOptions
            {
                SessionTimeoutInSeconds = 61,
                KeepOpenWhileForeground = true,
                DataDirectory = "/tmp/with \"quotes\" \\ and ü",
                BaseUrl = "https://collector.example.com/base",
                FlushIntervalInSeconds = 7,
                MaxQueuedDatapoints = 1234567,
                LogLevel = "debug",
                RequireConsent = true,
                AppVersion = "1.2.3 (45)",
            };
            var culture = Thread.CurrentThread.CurrentCulture;
            string json;
            try
            {
                Thread.CurrentThread.CurrentCulture = new CultureInfo("de-DE");
                json = options.ToJson();
            }
            finally
            {
                Thread.CurrentThread.CurrentCulture = culture;
            }
            var parsed = (Dictionary<string, object>)Json.Parse(json);
            Assert.Equal("sessionTimeoutInSeconds,keepOpenWhileForeground,dataDirectory,baseUrl,flushIntervalInSeconds,maxQueuedDatapoints,logLevel,requireConsent,appVersion",
                string.Join(",", parsed.Keys.ToArray()), "every key, camelCase");
            Assert.Equal(61L, parsed["sessionTimeoutInSeconds"], "sessionTimeoutInSeconds");
            Assert.Equal(true, parsed["keepOpenWhileForeground"], "keepOpenWhileForeground");
            Assert.Equal("/tmp/with \"quotes\" \\ and ü", parsed["dataDirectory"], "dataDirectory");
            Assert.Equal("https://collector.example.com/base", parsed["baseUrl"], "baseUrl");
            Assert.Equal(7L, parsed["flushIntervalInSeconds"], "flushIntervalInSeconds");
            Assert.Equal(1234567L, parsed["maxQueuedDatapoints"], "maxQueuedDatapoints");
            Assert.Equal("debug", parsed["logLevel"], "logLevel");
            Assert.Equal(true, parsed["requireConsent"], "requireConsent");
            Assert.Equal("1.2.3 (45)", parsed["appVersion"], "appVersion");

            Assert.Equal("{\"sessionTimeoutInSeconds\":1800,\"keepOpenWhileForeground\":true,\"flushIntervalInSeconds\":10,"
                + "\"maxQueuedDatapoints\":100000,\"logLevel\":\"warn\"}", new StintOptions().ToJson(),
                "defaults are the library's but keepOpenWhileForeground (true), and null options and requireConsent false are left out");
        }

        [Test]
        public void KeepOpenWhileForegroundIsTrueUnlessTheGameSetsItFalse()
        {
            Assert.Equal(true, new StintOptions().KeepOpenWhileForeground, "the default");
            var parsed = (Dictionary<string, object>)Json.Parse(new StintOptions { DataDirectory = "/d", BaseUrl = "https://c.example" }.ToJson());
            Assert.Equal(true, parsed["keepOpenWhileForeground"], "written when not set");
            parsed = (Dictionary<string, object>)Json.Parse(new StintOptions { KeepOpenWhileForeground = false }.ToJson());
            Assert.Equal(false, parsed["keepOpenWhileForeground"], "false when the game sets it false");
        }

        [Test]
        public void DataDirectoryWithQuotesAndUnicodeIsCreatedExactly()
        {
            string parent = NewDataDirectory();
            string directory = Path.Combine(parent, "with \"quotes\" \\ back, space and ü");
            var options = Options(withCollector: true);
            options.DataDirectory = directory;
            options.BaseUrl = Collector.Url + "/";
            Stint.Initialize(ApiKey, options);
            Assert.True(Directory.Exists(directory), "the library created " + directory);
            Assert.True(File.Exists(Path.Combine(directory, "lock")), "the lock file is in the data directory");
            string user = UniqueUser("dir");
            Stint.ChangeUser(user);
            Stint.LogCustomEvent("where");
            Stint.Flush(Long);
            Assert.Equal(1, Collector.Datapoints().Count(d => (string)d["user_id"] == user), "delivered to baseUrl");
            Stint.Shutdown(Long);
        }

        [Test]
        public void SessionTimeoutOptionEndsAnIdleSession()
        {
            var events = new List<StintSessionEvent>();
            Stint.SetSessionListener(e => { lock (events) events.Add(e); }, StintDispatch.LibraryThread);
            var options = Options(withCollector: false);
            options.SessionTimeoutInSeconds = 1;
            options.KeepOpenWhileForeground = false; // the web semantics: idle in the foreground ends it too
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            string session = Stint.SessionId;
            Assert.True(Wait.Until(() => { lock (events) return events.Count == 2; }, Long), "the session ends by itself after 1 s");
            AssertEvent(events[1], StintSessionEventKind.Ended, session, null);
            Assert.True(events[1].EndTime - events[1].StartTime < 0.5, "it ends at its last activity (its start)");
            Assert.Equal(null, Stint.SessionId, "no session open any more");
            Stint.Shutdown(Long);
        }

        [Test]
        public void KeepOpenWhileForegroundOptionKeepsAForegroundSessionOpen()
        {
            var events = new List<StintSessionEvent>();
            Stint.SetSessionListener(e => { lock (events) events.Add(e); }, StintDispatch.LibraryThread);
            var options = Options(withCollector: false);
            options.SessionTimeoutInSeconds = 1;
            options.KeepOpenWhileForeground = true;
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            string session = Stint.SessionId;
            Thread.Sleep(2500);
            Assert.Equal(session, Stint.SessionId, "still open in the foreground after 2.5 s with a 1 s timeout");
            lock (events)
                Assert.Equal(1, events.Count, "only the start so far");
            Stint.CloseSession();
            Assert.True(Wait.Until(() => { lock (events) return events.Count == 2; }, Long), "in the background it ends");
            AssertEvent(events[1], StintSessionEventKind.Ended, session, null);
            Stint.Shutdown(Long);
        }

        [Test]
        public void FlushIntervalOptionSchedulesDeliveryAndRequestImmediateDataFlushOverridesIt()
        {
            var options = Options(withCollector: true);
            options.FlushIntervalInSeconds = 86400;
            Stint.Initialize(ApiKey, options);
            string user = UniqueUser("held");
            Stint.ChangeUser(user);
            Stint.LogCustomEvent("held");
            Thread.Sleep(3000);
            Assert.Equal(0UL, Stint.Stats.DatapointsDelivered, "nothing sent before the daily interval");
            Assert.Equal(0, Collector.Datapoints().Count(d => (string)d["user_id"] == user), "nothing at the collector");
            Stint.RequestImmediateDataFlush();
            Assert.Equal(1, Collector.WaitForDatapoints(d => (string)d["user_id"] == user, 1, Long).Count,
                "RequestImmediateDataFlush sends at once");
            Stint.Shutdown(Long);

            options = Options(withCollector: true);
            options.FlushIntervalInSeconds = 1;
            Stint.Initialize(ApiKey, options);
            user = UniqueUser("prompt");
            Stint.ChangeUser(user);
            Stint.LogCustomEvent("prompt");
            // The default interval (10 s) would miss this deadline.
            Assert.Equal(1, Collector.WaitForDatapoints(d => (string)d["user_id"] == user, 1, TimeSpan.FromSeconds(8)).Count,
                "sent within 8 s with a 1 s interval, without any flush call");
            Stint.Shutdown(Long);
        }

        [Test]
        public void MaxQueuedDatapointsOptionDropsTheOldestCustomEvents()
        {
            var warnings = new List<string>();
            Stint.SetLogHandler((level, message) => { if (level == StintLogLevel.Warn) lock (warnings) warnings.Add(message); });
            var options = Options(withCollector: false);
            options.MaxQueuedDatapoints = 100;
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            for (int i = 0; i < 150; i++)
                Stint.LogCustomEvent("filler", new Dictionary<string, object> { { "i", i } });
            StintStats stats = Stint.Stats;
            Assert.Equal(151UL, stats.DatapointsRecorded, "recorded");
            Assert.True(stats.DatapointsPending <= 100, "at most 100 queued: " + stats);
            Assert.True(stats.DatapointsDropped >= 51, "the rest dropped: " + stats);
            Assert.Equal(stats.DatapointsRecorded, stats.DatapointsPending + stats.DatapointsDropped, "recorded = queued + dropped");
            Stint.Shutdown(Long);
            lock (warnings)
                Assert.True(warnings.Any(w => w.Contains("maxQueuedDatapoints")), "a warning names the option");
        }

        [Test]
        public void LogLevelOptionDecidesWhatReachesTheLogHandler()
        {
            var debug = new List<KeyValuePair<StintLogLevel, string>>();
            Stint.SetLogHandler((level, message) => { lock (debug) debug.Add(new KeyValuePair<StintLogLevel, string>(level, message)); });
            var options = Options(withCollector: true);
            options.LogLevel = "debug";
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            Stint.Flush(Long);
            Assert.True(Wait.Until(() => { lock (debug) return debug.Any(m => m.Key == StintLogLevel.Debug); }, Long),
                "debug messages reach the handler with logLevel \"debug\"");
            Stint.Shutdown(Long);

            var quiet = new List<KeyValuePair<StintLogLevel, string>>();
            Stint.SetLogHandler((level, message) => { lock (quiet) quiet.Add(new KeyValuePair<StintLogLevel, string>(level, message)); });
            options = Options(withCollector: true);
            options.LogLevel = "error";
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            Stint.Flush(Long);
            Stint.Shutdown(Long); // waits until the library has passed on its messages
            lock (quiet)
                Assert.True(quiet.All(m => m.Key == StintLogLevel.Error),
                    "only errors with logLevel \"error\": " + string.Join("; ", quiet.Select(m => m.Key + " " + m.Value).ToArray()));
            lock (debug)
                Assert.True(debug.Count > 0, "the first handler saw messages");
        }

        // ---- Every status code surfaces as StintException with its message ----

        [Test]
        public void InvalidOptionsAreInvalidArgumentNamingTheOptionAndInitializeNothing()
        {
            var cases = new List<KeyValuePair<string, Action<StintOptions>>>
            {
                Case("sessionTimeoutInSeconds", o => o.SessionTimeoutInSeconds = 0),
                Case("flushIntervalInSeconds", o => o.FlushIntervalInSeconds = 86401),
                Case("maxQueuedDatapoints", o => o.MaxQueuedDatapoints = 99),
                Case("logLevel", o => o.LogLevel = "loud"),
                Case("dataDirectory", o => o.DataDirectory = "relative/stint"),
                Case("baseUrl", o => o.BaseUrl = "http://collector.example.com"),
            };
            foreach (var c in cases)
            {
                var options = Options(withCollector: false);
                c.Value(options);
                var e = Assert.Throws(StintStatus.InvalidArgument, () => Stint.Initialize(ApiKey, options), c.Key);
                Assert.Contains(c.Key, e.Message, "the message names the option");
                Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "nothing initialised after a bad " + c.Key);
            }
            // keepOpenWhileForeground is a bool in C#: it cannot hold a bad value.
        }

        [Test]
        public void InvalidArgumentsAreReturnedNotThrownAndReachTheLogHandlerNamingTheArgument()
        {
            var e = Assert.Throws(StintStatus.InvalidArgument, () => Stint.Initialize("", Options(withCollector: false)), "empty api key");
            Assert.Contains("api_key", e.Message, "empty api key message");
            e = Assert.Throws(StintStatus.InvalidArgument, () => Stint.Initialize(null, Options(withCollector: false)), "null api key");
            Assert.Contains("api_key", e.Message, "null api key message");

            var logs = RecordLogs();
            Stint.Initialize(ApiKey, Options(withCollector: false));
            Stint.OpenSession();
            string session = Stint.SessionId;
            var cases = new List<KeyValuePair<string, Func<StintStatus>>>
            {
                Call("ChangeUser", "user_id", () => Stint.ChangeUser(null)),
                Call("ChangeUser", "user_id", () => Stint.ChangeUser(new string('u', 998))),
                Call("ChangeUser", "user_id", () => Stint.ChangeUser("ab\0cd")),
                Call("ChangeUser", "user_id", () => Stint.ChangeUser("\uDC00")),
                Call("LogCustomEvent", "name", () => Stint.LogCustomEvent(null)),
                Call("LogCustomEvent", "name", () => Stint.LogCustomEvent(new string('n', 256))),
                Call("LogCustomEvent", "name", () => Stint.LogCustomEvent("ab\0cd")),
            };
            foreach (var c in cases)
            {
                Assert.Equal(StintStatus.InvalidArgument, c.Value(), c.Key);
                string what = c.Key.Substring(0, c.Key.IndexOf(' '));
                string report = logs.NextReport(what);
                Assert.Contains(what + " failed: InvalidArgument: " + c.Key.Substring(what.Length + 1), report, "the report of " + c.Key);
            }
            Assert.Equal(session, Stint.SessionId, "the rejected calls changed nothing");
            // 997 bytes of UTF-8 is the limit, whatever the number of chars.
            Assert.Equal(StintStatus.Ok, Stint.ChangeUser(new string('ü', 498) + "x"), "997 bytes");
            Assert.True(Stint.SessionId != session, "a 997-byte user id is accepted and starts a new session");
            Stint.Shutdown(Long);
        }

        [Test]
        public void FireAndForgetCallsBeforeInitializeReturnNotInitializedWithoutThrowingAndAreReported()
        {
            var logs = RecordLogs();
            var calls = new Dictionary<string, Func<StintStatus>>
            {
                { "OpenSession", () => Stint.OpenSession() },
                { "CloseSession", () => Stint.CloseSession() },
                { "ChangeUser", () => Stint.ChangeUser("u") },
                { "LogCustomEvent", () => Stint.LogCustomEvent("e", new Dictionary<string, object> { { "k", 1 } }) },
                { "RequestImmediateDataFlush", () => Stint.RequestImmediateDataFlush() },
                { "SetTrackingEnabled", () => Stint.SetTrackingEnabled(true) },
                { "SetNetworkEnabled", () => Stint.SetNetworkEnabled(false) },
                { "WipeData", () => Stint.WipeData() },
            };
            foreach (var call in calls)
            {
                Assert.Equal(StintStatus.NotInitialized, call.Value(), call.Key);
                var report = logs.Next(call.Key);
                Assert.Equal(StintLogLevel.Warn, report.Key, "level of the report of " + call.Key);
                Assert.Contains(call.Key + " failed: NotInitialized: ", report.Value, "the report of " + call.Key);
                Assert.Contains("not initialized", report.Value, "with the library's message");
            }
            Stint.TrackingEnabled = false;
            Assert.Contains("SetTrackingEnabled failed: NotInitialized", logs.Next("the setter").Value, "the setter reports too");
            Assert.Equal(false, Stint.TrackingEnabled, "nothing is tracked before Initialize");
            Assert.Equal(null, Stint.DeviceId, "no device id before Initialize");
            Assert.Equal(0, logs.Count, "queries that answer are not reported");
            Assert.True(Stint.Version.Length > 0, "Version works before Initialize");
        }

        [Test]
        public void CallsTheGameMustHandleStillThrowNotInitialized()
        {
            var calls = new Dictionary<string, Action>
            {
                { "Flush", () => Stint.Flush(TimeSpan.FromSeconds(1)) },
                { "Shutdown", () => Stint.Shutdown(TimeSpan.FromSeconds(1)) },
                { "SessionId", () => { var unused = Stint.SessionId; } },
                { "Stats", () => { var unused = Stint.Stats; } },
            };
            foreach (var call in calls)
                Assert.Throws(StintStatus.NotInitialized, call.Value, call.Key);
            Stint.SetSessionListener(e => { });
            Stint.SetLogHandler((level, message) => { });
        }

        [Test]
        public void AThrowingLogHandlerDoesNotMakeAFireAndForgetCallThrow()
        {
            Stint.SetLogHandler((level, message) => { throw new InvalidOperationException("thrown on purpose by a test log handler"); });
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "OpenSession");
            Assert.Equal(StintStatus.InvalidArgument, Stint.LogCustomEvent("e", new Dictionary<string, object> { { "nan", double.NaN } }), "LogCustomEvent");
        }

        [Test]
        public void ALogHandlerWhoseOwnCallFailsIsNotCalledAgainForIt()
        {
            int calls = 0;
            Stint.SetLogHandler((level, message) =>
            {
                Interlocked.Increment(ref calls);
                Stint.LogCustomEvent("from the handler"); // fails too: to the default log, not here
            });
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "OpenSession");
            Assert.Equal(1, Volatile.Read(ref calls), "one report, no loop");
        }

        [Test]
        public void WithLogLevelOffAFailedCallIsNotReported()
        {
            var logs = RecordLogs();
            var options = Options(withCollector: false);
            options.LogLevel = "off";
            Stint.Initialize(ApiKey, options);
            Assert.Equal(StintStatus.InvalidArgument, Stint.ChangeUser(""), "empty user");
            Stint.Shutdown(Long);
            Assert.Equal(0, logs.Count, "nothing reported at logLevel off");
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "after Shutdown");
            Assert.Contains("OpenSession failed", logs.Next("after shutdown").Value, "the default level (warn) applies again");
        }

        [Test]
        public void AMissingNativeLibraryMakesFireAndForgetCallsFailQuietlyAndInitializeThrowStintException()
        {
            // A child process with no libstint on its library path: every DllImport fails to load.
            string output = RunSelf("missing-library", libraryPath: "/nonexistent");
            Assert.Equal("OpenSession=InternalError LogCustomEvent=InternalError WipeData=InternalError TrackingEnabled=False DeviceId=null Initialize threw InternalError DomainHooks=ok",
                string.Join(" ", output.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("log ")).ToArray()), "what each call did");
            var reports = output.Split('\n').Where(l => l.StartsWith("log ")).ToList();
            Assert.Equal("SetLogHandler OpenSession LogCustomEvent WipeData TrackingEnabled DeviceId",
                string.Join(" ", reports.Select(l => l.Split(' ')[2]).ToArray()), "one report per failed call: " + string.Join(" | ", reports.ToArray()));
            Assert.True(reports.All(l => l.StartsWith("log Error ") && l.Contains("DllNotFoundException")), "each names the cause: " + reports.FirstOrDefault());
        }

        [Test]
        public void SecondInitializeIsAlreadyInitializedAndShutdownAllowsAnother()
        {
            var options = Options(withCollector: false);
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            string session = Stint.SessionId;
            var e = Assert.Throws(StintStatus.AlreadyInitialized, () => Stint.Initialize(ApiKey, Options(withCollector: false)), "second Initialize");
            Assert.True(e.Message.Length > 0, "with a message");
            Assert.Equal(session, Stint.SessionId, "the first instance runs on");
            Stint.Shutdown(Long);
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "after Shutdown");
            Stint.Initialize(ApiKey, options);
            Assert.Equal(session, Stint.SessionId, "the session continues across a quick restart");
            Stint.Shutdown(Long);
        }

        [Test]
        public void DataDirectoryHeldByAnotherProcessIsDataDirectoryLocked()
        {
            var options = Options(withCollector: false);
            Directory.CreateDirectory(options.DataDirectory);
            string lockFile = Path.Combine(options.DataDirectory, "lock");
            var holder = Process.Start(new ProcessStartInfo("flock", "-n -o " + lockFile + " -c \"echo locked; exec cat\"")
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
            });
            processes.Add(holder);
            Assert.Equal("locked", holder.StandardOutput.ReadLine(), "flock(1) holds the lock");
            var e = Assert.Throws(StintStatus.DataDirectoryLocked, () => Stint.Initialize(ApiKey, options), "Initialize on a locked directory");
            Assert.Contains(options.DataDirectory, e.Message, "the message names the directory");
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "nothing initialised");
            holder.StandardInput.Close();
            Assert.True(holder.WaitForExit(30000), "flock(1) exits when its stdin closes");
            Stint.Initialize(ApiKey, options);
            Stint.Shutdown(Long);
        }

        [Test]
        public void DataDirectoryBelowARegularFileIsStorageError()
        {
            string file = NewDataDirectory();
            File.WriteAllText(file, "not a directory");
            var options = Options(withCollector: false);
            options.DataDirectory = Path.Combine(file, "stint");
            var e = Assert.Throws(StintStatus.StorageError, () => Stint.Initialize(ApiKey, options), "Initialize below a file");
            Assert.Contains("dataDirectory", e.Message, "the message names dataDirectory");
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "nothing initialised");
        }

        [Test]
        public void FlushThatCannotDeliverIsTimeoutAndKeepsTheData()
        {
            var options = Options(withCollector: false);
            options.BaseUrl = "http://127.0.0.1:" + Wait.ClosedPort();
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            Stint.LogCustomEvent("stuck");
            var e = Assert.Throws(StintStatus.Timeout, () => Stint.Flush(TimeSpan.FromMilliseconds(1500)), "Flush to a closed port");
            Assert.Contains("flush", e.Message, "the message says what timed out");
            Assert.Equal(2UL, Stint.Stats.DatapointsPending, "the datapoints stay queued");
            Assert.Throws(StintStatus.Timeout, () => Stint.Shutdown(TimeSpan.FromMilliseconds(500)), "Shutdown with data queued");
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "stopped even so");
        }

        [Test]
        public void ShutdownAgainstAHangingCollectorIsTimeoutAndTheDataIsDeliveredNextRun()
        {
            faultsChanged = true;
            Collector.SetFaults("{\"hang_all\":true}");
            var options = Options(withCollector: true);
            Stint.Initialize(ApiKey, options);
            string user = UniqueUser("hang");
            Stint.ChangeUser(user);
            Stint.OpenSession();
            Stint.LogCustomEvent("patience");
            var e = Assert.Throws(StintStatus.Timeout, () => Stint.Shutdown(TimeSpan.FromMilliseconds(1500)), "Shutdown against a hanging collector");
            Assert.True(e.Message.Length > 0, "with a message");
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "stopped even so");

            Collector.SetFaults("{}");
            Stint.Initialize(ApiKey, options);
            Assert.Equal(2UL, Stint.Stats.DatapointsPending, "the queued datapoints were kept");
            Stint.Flush(Long);
            Assert.Equal("ss ce", string.Join(" ", Collector.Datapoints().Where(d => (string)d["user_id"] == user)
                .Select(d => (string)d["name"]).ToArray()), "delivered by the next run");
            Stint.Shutdown(Long);
        }

        // STINT_STATUS_INTERNAL_ERROR (a caught panic) cannot be provoked through the C API from
        // outside; its number is checked against the header above and it maps like every other.

        [Test]
        public void ErrorMessagesBelongToTheThreadWhoseCallFailed()
        {
            var failures = new List<string>();
            var reports = new Dictionary<int, List<string>>();
            Stint.SetLogHandler((level, message) =>
            {
                lock (reports)
                {
                    int thread = Thread.CurrentThread.ManagedThreadId;
                    if (!reports.ContainsKey(thread))
                        reports[thread] = new List<string>();
                    reports[thread].Add(message);
                }
            });
            var start = new ManualResetEvent(false);
            var threads = new[] { "user_id", "name" }.Select(argument => new Thread(() =>
            {
                start.WaitOne();
                int thread = Thread.CurrentThread.ManagedThreadId;
                for (int i = 0; i < 300; i++)
                {
                    StintStatus status = argument == "user_id" ? Stint.ChangeUser(null) : Stint.LogCustomEvent(null);
                    if (status != StintStatus.InvalidArgument)
                        lock (failures) failures.Add("status " + status);
                }
                lock (reports)
                {
                    // Reported on the calling thread, each with this thread's own message.
                    var mine = reports.ContainsKey(thread) ? reports[thread] : new List<string>();
                    if (mine.Count != 300)
                        lock (failures) failures.Add(mine.Count + " reports on the thread of " + argument);
                    foreach (string report in mine.Where(r => !r.Contains("InvalidArgument: " + argument + " ")).Take(3))
                        lock (failures) failures.Add(report);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            start.Set();
            threads.ForEach(t => Assert.True(t.Join(Long), "thread finished"));
            Assert.Equal("", string.Join("; ", failures.Take(3).ToArray()), "each thread sees its own message");
        }

        // ---- Listeners ----

        [Test]
        public void MainThreadListenerRunsOnlyInDispatchPendingEventsOnTheCallingThread()
        {
            var threads = new List<int>();
            Stint.SetSessionListener(e => { lock (threads) threads.Add(Thread.CurrentThread.ManagedThreadId); });
            Stint.Initialize(ApiKey, Options(withCollector: false));
            Stint.OpenSession();
            Stint.ChangeUser(UniqueUser("main"));
            Stint.Flush(Long);
            Thread.Sleep(500);
            lock (threads)
                Assert.Equal(0, threads.Count, "nothing runs before DispatchPendingEvents");
            int dispatched = 0;
            Assert.True(Wait.Until(() => (dispatched += Stint.DispatchPendingEvents()) >= 3, Long), "three events dispatched");
            Assert.Equal(3, dispatched, "ss, se, ss");
            lock (threads)
                Assert.True(threads.All(id => id == Thread.CurrentThread.ManagedThreadId), "on the dispatching thread");

            // Events queued for a listener that is then replaced are never given to it.
            var replaced = new List<StintSessionEvent>();
            Stint.SetSessionListener(e => { lock (replaced) replaced.Add(e); });
            Stint.ChangeUser(UniqueUser("other"));
            Stint.Shutdown(Long); // the library has handed over its events when this returns
            var successor = new List<StintSessionEvent>();
            Stint.SetSessionListener(e => successor.Add(e));
            Assert.Equal(0, Stint.DispatchPendingEvents(), "queued events of a replaced listener are discarded");
            Assert.Equal(0, replaced.Count + successor.Count, "neither listener called");
        }

        [Test]
        public void LibraryThreadListenerCallsBackIntoTheLibrary()
        {
            var seen = new List<string>();
            var replacementEvents = new List<StintSessionEvent>();
            Exception failure = null;
            var started = new AutoResetEvent(false);
            Action<StintSessionEvent> replacement = e => { lock (replacementEvents) replacementEvents.Add(e); };
            string bob = UniqueUser("bob");
            Stint.SetSessionListener(e =>
            {
                if (e.Kind != StintSessionEventKind.Started)
                    return;
                try
                {
                    string current = Stint.SessionId;
                    lock (seen)
                        seen.Add(current);
                    Stint.LogCustomEvent("from_listener", new Dictionary<string, object> { { "event_session", e.SessionId }, { "current", current } });
                    var unused = Stint.Stats;
                    Stint.RequestImmediateDataFlush();
                    if (e.UserId == bob)
                        Stint.SetSessionListener(replacement, StintDispatch.LibraryThread); // from inside: no deadlock
                }
                catch (Exception error)
                {
                    failure = error;
                }
                finally
                {
                    started.Set();
                }
            }, StintDispatch.LibraryThread);
            Stint.Initialize(ApiKey, Options(withCollector: true));
            Stint.OpenSession();
            string first = Stint.SessionId;
            Assert.True(started.WaitOne(Long), "the listener ran");
            Stint.ChangeUser(bob);
            string second = Stint.SessionId;
            Assert.True(started.WaitOne(Long), "the listener ran for bob's session");
            Stint.ChangeUser(UniqueUser("carol"));
            Assert.True(Wait.Until(() => { lock (replacementEvents) return replacementEvents.Count == 2; }, Long),
                "the replacement set from inside the listener gets the next events");
            Assert.Equal(null, failure, "calls from inside the listener");
            lock (seen)
                Assert.Equal(first + " " + second, string.Join(" ", seen.ToArray()), "SessionId inside the listener is the new session");

            Stint.Flush(Long);
            var fromListener = Collector.Datapoints().Where(d => (string)d["name"] == "ce"
                && ((string)d["session_id"] == first || (string)d["session_id"] == second)).ToList();
            Assert.Equal(2, fromListener.Count, "the events logged by the listener arrived");
            foreach (var d in fromListener)
            {
                var p = (Dictionary<string, object>)((Dictionary<string, object>)d["data"])["p"];
                Assert.Equal((string)d["session_id"], (string)p["event_session"], "logged in the session that started");
            }
            Stint.Shutdown(Long);
        }

        [Test]
        public void ReplacedOrUnsetListenerIsNeverCalledAgainAndAThrowingOneHarmsNothing()
        {
            int oldCalls = 0;
            Stint.SetSessionListener(e => { Interlocked.Increment(ref oldCalls); throw new InvalidOperationException("thrown on purpose by a test listener"); }, StintDispatch.LibraryThread);
            Stint.Initialize(ApiKey, Options(withCollector: false));
            Stint.OpenSession();
            Assert.True(Wait.Until(() => Volatile.Read(ref oldCalls) == 1, Long), "the throwing listener ran");
            Stint.ChangeUser(UniqueUser("after-throw"));
            Assert.True(Wait.Until(() => Volatile.Read(ref oldCalls) == 3, Long), "and keeps getting events after throwing");

            var newEvents = new List<StintSessionEvent>();
            Stint.SetSessionListener(e => { lock (newEvents) newEvents.Add(e); }, StintDispatch.LibraryThread);
            int callsWhenReplaced = Volatile.Read(ref oldCalls);
            Stint.ChangeUser(UniqueUser("new"));
            Assert.True(Wait.Until(() => { lock (newEvents) return newEvents.Count == 2; }, Long), "the new listener gets se and ss");
            Assert.Equal(callsWhenReplaced, Volatile.Read(ref oldCalls), "the old listener is not called after replacement");

            Stint.SetSessionListener(null);
            Stint.ChangeUser(UniqueUser("nobody"));
            Stint.Shutdown(Long);
            lock (newEvents)
                Assert.Equal(2, newEvents.Count, "an unset listener is not called");
        }

        // ---- Threads ----

        [Test]
        public void ConcurrentCallsFromEightThreadsAllReachTheCollector()
        {
            const int threadCount = 8, perThread = 500;
            Stint.Initialize(ApiKey, Options(withCollector: true));
            string user = UniqueUser("threads");
            Stint.ChangeUser(user);
            Stint.OpenSession();
            string session = Stint.SessionId;
            var errors = new List<Exception>();
            var start = new ManualResetEvent(false);
            bool done = false;
            var workers = Enumerable.Range(0, threadCount).Select(t => new Thread(() =>
            {
                start.WaitOne();
                try
                {
                    for (int i = 0; i < perThread; i++)
                    {
                        Stint.LogCustomEvent("concurrent", new Dictionary<string, object> { { "thread", t }, { "i", i } });
                        if (i % 50 == 0)
                        {
                            var unused = Stint.Stats;
                            Assert.Equal(session, Stint.SessionId, "the session stays the same");
                            Stint.RequestImmediateDataFlush();
                        }
                    }
                }
                catch (Exception e)
                {
                    lock (errors) errors.Add(e);
                }
            })).ToList();
            var lifecycle = new Thread(() =>
            {
                start.WaitOne();
                try
                {
                    while (!Volatile.Read(ref done))
                    {
                        Stint.CloseSession();
                        Stint.OpenSession();
                        Stint.ChangeUser(user);
                    }
                }
                catch (Exception e)
                {
                    lock (errors) errors.Add(e);
                }
            });
            workers.ForEach(w => w.Start());
            lifecycle.Start();
            start.Set();
            workers.ForEach(w => Assert.True(w.Join(TimeSpan.FromMinutes(3)), "worker thread finished"));
            Volatile.Write(ref done, true);
            Assert.True(lifecycle.Join(Long), "lifecycle thread finished");
            Assert.Equal(0, errors.Count, "errors on threads: " + string.Join("; ", errors.Select(e => e.Message).Take(3).ToArray()));

            Stint.Flush(TimeSpan.FromMinutes(2));
            StintStats stats = Stint.Stats;
            Assert.Equal((ulong)(threadCount * perThread + 1), stats.DatapointsRecorded, "one ss and every ce recorded");
            Assert.Equal(0UL, stats.DatapointsPending, "nothing pending");
            var received = Collector.Datapoints().Where(d => (string)d["user_id"] == user && (string)d["name"] == "ce").ToList();
            int distinctIds = received.Select(d => (string)d["id"]).Distinct().Count();
            Assert.Equal(threadCount * perThread, distinctIds, "distinct datapoint ids at the collector");
            var pairs = new HashSet<string>(received.Select(d =>
            {
                var p = (Dictionary<string, object>)((Dictionary<string, object>)d["data"])["p"];
                return p["thread"] + "/" + p["i"];
            }));
            Assert.Equal(threadCount * perThread, pairs.Count, "every (thread, i) arrived");
            Assert.True(received.All(d => (string)d["session_id"] == session), "all in the one session");
            Stint.Shutdown(Long);
        }

        // ---- Consent, deletion, the network switch ----

        private static readonly Regex Uuid = new Regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");

        [Test]
        public void TrackingEnabledRoundTripsAndPersistsAcrossShutdownAndInitialize()
        {
            var options = Options(withCollector: false);
            Stint.Initialize(ApiKey, options);
            Assert.Equal(true, Stint.TrackingEnabled, "enabled without RequireConsent");
            Stint.OpenSession();
            Assert.Equal(1UL, Stint.Stats.DatapointsPending, "the ss is queued");

            Stint.TrackingEnabled = false;
            Assert.Equal(false, Stint.TrackingEnabled, "disabled");
            Assert.Equal(0UL, Stint.Stats.DatapointsPending, "disabling deletes what was not delivered");
            Assert.Equal(null, Stint.SessionId, "the open session is dropped");
            Assert.Equal(StintStatus.Ok, Stint.OpenSession(), "OpenSession while disabled");
            Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("ignored"), "LogCustomEvent while disabled");
            Assert.Equal(StintStatus.Ok, Stint.ChangeUser("nobody"), "ChangeUser while disabled");
            Assert.Equal(0UL, Stint.Stats.DatapointsPending, "nothing recorded while disabled");
            Assert.Equal(null, Stint.SessionId, "no session while disabled");
            Stint.Shutdown(Long);

            Stint.Initialize(ApiKey, options);
            Assert.Equal(false, Stint.TrackingEnabled, "the choice survives a restart");
            Assert.Equal(StintStatus.Ok, Stint.SetTrackingEnabled(true), "SetTrackingEnabled(true)");
            Assert.Equal(true, Stint.TrackingEnabled, "enabled again");
            Stint.OpenSession();
            Assert.True(Stint.SessionId != null, "the next OpenSession starts a session");
            Stint.Shutdown(Long);

            options.RequireConsent = true;
            Stint.Initialize(ApiKey, options);
            Assert.Equal(true, Stint.TrackingEnabled, "a saved choice wins over RequireConsent");
            Stint.Shutdown(Long);
        }

        [Test]
        public void RequireConsentStartsDisabledUntilTrackingIsEnabled()
        {
            var options = Options(withCollector: false);
            options.RequireConsent = true;
            Stint.Initialize(ApiKey, options);
            Assert.Equal(false, Stint.TrackingEnabled, "disabled until consent");
            Stint.OpenSession();
            Stint.LogCustomEvent("before consent");
            Assert.Equal(0UL, Stint.Stats.DatapointsRecorded, "nothing recorded before consent");
            Stint.TrackingEnabled = true;
            Assert.Equal(true, Stint.TrackingEnabled, "enabled");
            Stint.OpenSession();
            Stint.LogCustomEvent("after consent");
            Assert.Equal(2UL, Stint.Stats.DatapointsRecorded, "ss and ce after consent");
            Stint.Shutdown(Long);
        }

        [Test]
        public void DeviceIdIsAUuidThatWipeDataReplaces()
        {
            var options = Options(withCollector: false);
            Stint.Initialize(ApiKey, options);
            string before = Stint.DeviceId;
            Assert.True(before != null && Uuid.IsMatch(before), "a UUID: " + before);
            Assert.Equal(36, before.Length, "36 characters");
            Assert.Equal(before, Stint.DeviceId, "stable");
            Stint.ChangeUser(UniqueUser("wiped"));
            Stint.OpenSession();
            Stint.LogCustomEvent("before wipe");

            Assert.Equal(StintStatus.Ok, Stint.WipeData(), "WipeData");
            string after = Stint.DeviceId;
            Assert.True(after != null && Uuid.IsMatch(after), "a UUID after the wipe: " + after);
            Assert.True(after != before, "a new device id after the wipe");
            Assert.Equal(null, Stint.SessionId, "no session after the wipe");
            Assert.Equal(0UL, Stint.Stats.DatapointsPending, "nothing left to send");
            Assert.Equal(true, Stint.TrackingEnabled, "the tracking choice is kept");
            Stint.Shutdown(Long);

            Stint.Initialize(ApiKey, options);
            Assert.Equal(after, Stint.DeviceId, "the new id is the saved one");
            Assert.Equal(0UL, Stint.Stats.DatapointsPending, "still nothing queued after a restart");
            Stint.Shutdown(Long);
        }

        [Test]
        public void NetworkDisabledThenEnabledDeliversEverything()
        {
            var options = Options(withCollector: true);
            options.FlushIntervalInSeconds = 1;
            Stint.Initialize(ApiKey, options);
            Assert.Equal(StintStatus.Ok, Stint.SetNetworkEnabled(false), "SetNetworkEnabled(false)");
            string user = UniqueUser("offline");
            Stint.ChangeUser(user);
            Stint.OpenSession();
            for (int i = 0; i < 20; i++)
                Assert.Equal(StintStatus.Ok, Stint.LogCustomEvent("offline", new Dictionary<string, object> { { "i", i } }), "recording goes on");
            var e = Assert.Throws(StintStatus.Timeout, () => Stint.Flush(Long), "Flush with the network disabled");
            Assert.Contains("network", e.Message, "the message says why");
            Stint.RequestImmediateDataFlush();
            Thread.Sleep(2500); // more than two flush intervals
            Assert.Equal(21UL, Stint.Stats.DatapointsPending, "everything still queued");
            Assert.Equal(0, Collector.Datapoints().Count(d => (string)d["user_id"] == user), "nothing at the collector");

            Assert.Equal(StintStatus.Ok, Stint.SetNetworkEnabled(true), "SetNetworkEnabled(true)");
            Stint.Flush(Long);
            Assert.Equal(0UL, Stint.Stats.DatapointsPending, "delivered");
            var received = Collector.Datapoints().Where(d => (string)d["user_id"] == user).ToList();
            Assert.Equal("ss " + string.Join(" ", Enumerable.Repeat("ce", 20).ToArray()),
                string.Join(" ", received.Select(d => (string)d["name"]).ToArray()), "everything arrived, in order");
            Stint.Shutdown(Long);
        }

        [Test]
        public void AppVersionReachesTheCollectorWithTheSessionStartAndABadOneIsNamed()
        {
            var options = Options(withCollector: false);
            options.AppVersion = new string('v', 65);
            var e = Assert.Throws(StintStatus.InvalidArgument, () => Stint.Initialize(ApiKey, options), "65-byte appVersion");
            Assert.Contains("appVersion", e.Message, "the message names appVersion");
            options.AppVersion = "1.0\n";
            Assert.Throws(StintStatus.InvalidArgument, () => Stint.Initialize(ApiKey, options), "appVersion with a control character");
            options.AppVersion = "3.1.4 (build 15)";
            options.BaseUrl = Collector.Url;
            Stint.Initialize(ApiKey, options);
            string user = UniqueUser("versioned");
            Stint.ChangeUser(user);
            Assert.Equal(StintStatus.Ok, Stint.OpenSession(), "runs with a good appVersion");
            Stint.Flush(Long);
            var start = Collector.Datapoints().Single(d => (string)d["user_id"] == user && (string)d["name"] == "ss");
            Assert.Equal("3.1.4 (build 15)", ((Dictionary<string, object>)start["data"])["app_version"], "the session start carries it");
            Stint.Shutdown(Long);
        }

        // ---- Domain reload ----

        [Test]
        public void DomainReloadHookShutsDownTheInstanceLeftRunningSoInitializeWorksAgain()
        {
            Stint.OnDomainLoaded(); // nothing running: harmless
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "still nothing running");

            var options = Options(withCollector: false);
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            string session = Stint.SessionId;
            // What a new domain finds: the native instance of the previous one still running.
            Assert.Throws(StintStatus.AlreadyInitialized, () => Stint.Initialize(ApiKey, options), "before the hook");
            Stint.OnDomainLoaded();
            Assert.Equal(StintStatus.NotInitialized, Stint.OpenSession(), "the hook shut it down");
            Stint.Initialize(ApiKey, options); // the data directory lock was released too
            Assert.Equal(session, Stint.SessionId, "the session continues in the new domain");
            Stint.Shutdown(Long);
        }

        [Test]
        public void DomainUnloadHookUnregistersTheCallbacks()
        {
            var events = new List<StintSessionEvent>();
            var logs = new List<string>();
            Stint.SetSessionListener(e => { lock (events) events.Add(e); }, StintDispatch.LibraryThread);
            Stint.SetLogHandler((level, message) => { lock (logs) logs.Add(message); });
            var options = Options(withCollector: false);
            options.LogLevel = "debug";
            Stint.Initialize(ApiKey, options);
            Stint.OpenSession();
            Assert.True(Wait.Until(() => { lock (events) return events.Count == 1; }, Long), "the listener works before unload");
            Stint.OnDomainUnloading();
            int logCount;
            lock (logs)
                logCount = logs.Count;
            Stint.ChangeUser(UniqueUser("unloaded"));
            Stint.Shutdown(Long);
            lock (events)
                Assert.Equal(1, events.Count, "no session events after the unload hook");
            lock (logs)
                Assert.Equal(logCount, logs.Count, "no log messages after the unload hook");
        }

        [Test]
        public void RealAppDomainUnloadLeavesTheInstanceRunningAndTheNextDomainTakesOver()
        {
            // As in the Unity Editor: the managed domain goes, the native library and its
            // instance stay. (No listener in the unloaded domain: Mono cannot unload a domain
            // that a still-living native thread has called into; see docs/unity.md.)
            string directory = NewDataDirectory();
            var previous = AppDomain.CreateDomain("previous-domain", null, AppDomain.CurrentDomain.SetupInformation);
            previous.SetData("dataDirectory", directory);
            previous.DoCallBack(PreviousDomain.Start);
            string session = (string)previous.GetData("sessionId");
            Assert.True(session != null, "the previous domain opened a session");
            AppDomain.Unload(previous);

            var options = Options(withCollector: false);
            options.DataDirectory = directory;
            Assert.Throws(StintStatus.AlreadyInitialized, () => Stint.Initialize(ApiKey, options), "the instance of the unloaded domain runs on");
            Assert.Equal(session, Stint.SessionId, "its session is still open");

            var events = new List<StintSessionEvent>();
            Stint.SetSessionListener(e => { lock (events) events.Add(e); }, StintDispatch.LibraryThread);
            Stint.OnDomainLoaded();
            Stint.Initialize(ApiKey, options);
            Assert.Equal(session, Stint.SessionId, "the new domain continues the session");
            Stint.ChangeUser(UniqueUser("new-domain"));
            Assert.True(Wait.Until(() => { lock (events) return events.Count == 2; }, Long), "this domain's listener works");
            Stint.Shutdown(Long);
        }

        /// <summary>Runs inside the child AppDomain (its own static state of Stint).</summary>
        public static class PreviousDomain
        {
            public static void Start()
            {
                var domain = AppDomain.CurrentDomain;
                Stint.Initialize(ApiKey, new StintOptions { DataDirectory = (string)domain.GetData("dataDirectory") });
                Stint.OpenSession();
                domain.SetData("sessionId", Stint.SessionId);
            }
        }

        /// <summary>What a child process (TestRunner --child) does; its output is read by the test.</summary>
        public static int RunChild(string mode)
        {
            if (mode != "missing-library")
                return 2;
            var lines = new List<string>();
            Stint.SetLogHandler((level, message) => { lock (lines) lines.Add("log " + level + " " + message); });
            Action<string> add = line => { lock (lines) lines.Add(line); };
            add("OpenSession=" + Stint.OpenSession());
            add("LogCustomEvent=" + Stint.LogCustomEvent("e", new Dictionary<string, object> { { "k", 1 } }));
            add("WipeData=" + Stint.WipeData());
            add("TrackingEnabled=" + Stint.TrackingEnabled);
            add("DeviceId=" + (Stint.DeviceId ?? "null"));
            try
            {
                Stint.Initialize(ApiKey, new StintOptions { DataDirectory = Path.Combine(Path.GetTempPath(), "stint-never-created") });
                add("Initialize returned");
            }
            catch (StintException e)
            {
                add("Initialize threw " + e.Status);
            }
            catch (Exception e)
            {
                add("Initialize threw " + e.GetType().Name);
            }
            try
            {
                // What Unity runs at start-up and at a domain reload: a warning, no exception.
                Stint.OnDomainLoaded();
                Stint.OnDomainUnloading();
                add("DomainHooks=ok");
            }
            catch (Exception e)
            {
                add("DomainHooks threw " + e.GetType().Name);
            }
            lock (lines)
                foreach (string line in lines)
                    Console.WriteLine(line.Replace('\n', ' '));
            return 0;
        }

        /// <summary>Runs this test program as a child in `mode` with LD_LIBRARY_PATH = libraryPath; returns its stdout.</summary>
        private string RunSelf(string mode, string libraryPath)
        {
            var info = new ProcessStartInfo("mono", "--debug \"" + typeof(StintTests).Assembly.Location + "\" --child " + mode)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            info.EnvironmentVariables["LD_LIBRARY_PATH"] = libraryPath;
            var child = Process.Start(info);
            processes.Add(child);
            var errors = new System.Text.StringBuilder();
            child.ErrorDataReceived += (sender, line) => { lock (errors) errors.Append(line.Data).Append('\n'); };
            child.BeginErrorReadLine();
            string output = child.StandardOutput.ReadToEnd();
            Assert.True(child.WaitForExit(60000), "the child exited");
            lock (errors)
                Assert.Equal(0, child.ExitCode, "the child's exit code (stderr: " + errors + ")");
            return output;
        }

        // ---- Helpers ----

        public void CleanUp()
        {
            Stint.SetSessionListener(null);
            Stint.SetLogHandler(null);
            try
            {
                Stint.Shutdown(Long);
            }
            catch (StintException e)
            {
                if (e.Status != StintStatus.NotInitialized && e.Status != StintStatus.Timeout)
                    throw;
            }
            Stint.DispatchPendingEvents();
            if (faultsChanged)
                Collector.SetFaults("{}");
            foreach (var process in processes)
            {
                try
                {
                    if (!process.HasExited)
                        process.Kill();
                }
                catch (InvalidOperationException)
                {
                }
            }
            foreach (string path in temporaryPaths)
            {
                try
                {
                    if (Directory.Exists(path))
                        Directory.Delete(path, true);
                    else if (File.Exists(path))
                        File.Delete(path);
                }
                catch (IOException)
                {
                }
            }
        }

        private static string RepoRoot
        {
            get
            {
                string root = Environment.GetEnvironmentVariable("STINT_REPO_ROOT");
                if (string.IsNullOrEmpty(root))
                    throw new InvalidOperationException("STINT_REPO_ROOT is not set: run the tests through bindings/unity/test.sh");
                return root;
            }
        }

        private string NewDataDirectory()
        {
            string path = Path.Combine(Path.GetTempPath(), "stint-unity-test-" + Guid.NewGuid().ToString("N"));
            temporaryPaths.Add(path);
            return path;
        }

        private StintOptions Options(bool withCollector)
        {
            return new StintOptions
            {
                DataDirectory = NewDataDirectory(),
                BaseUrl = withCollector ? Collector.Url : null,
            };
        }

        private static string UniqueUser(string name)
        {
            return name + "-" + Guid.NewGuid().ToString("N").Substring(0, 12);
        }

        private static KeyValuePair<string, Func<StintStatus>> Call(string method, string argument, Func<StintStatus> call)
        {
            return new KeyValuePair<string, Func<StintStatus>>(method + " " + argument, call);
        }

        /// <summary>Sets a log handler that files every message for the test to read.</summary>
        private static LogInbox RecordLogs()
        {
            var inbox = new LogInbox();
            Stint.SetLogHandler(inbox.Add);
            return inbox;
        }

        private static KeyValuePair<string, Action<StintOptions>> Case(string key, Action<StintOptions> change)
        {
            return new KeyValuePair<string, Action<StintOptions>>(key, change);
        }

        private static double UnixNow()
        {
            return (DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds;
        }

        private static double Number(object json)
        {
            return Convert.ToDouble(json, CultureInfo.InvariantCulture);
        }

        /// <summary>Runs DispatchPendingEvents until `events` holds `count` entries.</summary>
        private static void DispatchUntil(List<StintSessionEvent> events, int count)
        {
            bool reached = Wait.Until(() =>
            {
                Stint.DispatchPendingEvents();
                lock (events) return events.Count >= count;
            }, Long);
            lock (events)
                Assert.True(reached && events.Count == count, "expected " + count + " session events, got " + events.Count);
        }

        private static void AssertEvent(StintSessionEvent e, StintSessionEventKind kind, string sessionId, string userId)
        {
            Assert.Equal(kind, e.Kind, "event kind of " + e);
            Assert.Equal(sessionId, e.SessionId, "session id of " + e);
            Assert.Equal(userId, e.UserId, "user of " + e);
        }

        private static void AssertEnumMatches<T>(string header, string prefix, int count)
        {
            var matches = Regex.Matches(header, prefix + @"([A-Z_]+) = (\d+)");
            Assert.Equal(count, matches.Count, prefix + "* constants in the header");
            Assert.Equal(count, Enum.GetValues(typeof(T)).Length, typeof(T).Name + " members");
            foreach (Match match in matches)
            {
                string name = string.Concat(match.Groups[1].Value.Split('_')
                    .Select(word => word.Substring(0, 1) + word.Substring(1).ToLowerInvariant()).ToArray());
                Assert.True(Enum.IsDefined(typeof(T), name), typeof(T).Name + " has " + name);
                Assert.Equal(int.Parse(match.Groups[2].Value), Convert.ToInt32(Enum.Parse(typeof(T), name)), typeof(T).Name + "." + name);
            }
        }
    }
}
