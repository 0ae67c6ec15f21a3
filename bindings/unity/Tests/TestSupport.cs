// Helpers for the tests: the loopback collector over HTTP, a small JSON reader, waiting.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace StintSdk.Tests
{
    /// <summary>The stint-collector started by test.sh (its URL in STINT_COLLECTOR_URL).</summary>
    public static class Collector
    {
        public static string Url
        {
            get
            {
                string url = Environment.GetEnvironmentVariable("STINT_COLLECTOR_URL");
                if (string.IsNullOrEmpty(url))
                    throw new InvalidOperationException("STINT_COLLECTOR_URL is not set: run the tests through bindings/unity/test.sh");
                return url.TrimEnd('/');
            }
        }

        public static string Get(string path)
        {
            return Send("GET", path, null);
        }

        public static string Post(string path, string body)
        {
            return Send("POST", path, body);
        }

        private static string Send(string method, string path, string body)
        {
            var request = (HttpWebRequest)WebRequest.Create(Url + path);
            request.Method = method;
            request.Proxy = null;
            request.Timeout = 30000;
            request.ReadWriteTimeout = 30000;
            request.KeepAlive = false;
            if (body != null)
            {
                byte[] bytes = Encoding.UTF8.GetBytes(body);
                request.ContentType = "application/json";
                request.ContentLength = bytes.Length;
                using (var stream = request.GetRequestStream())
                    stream.Write(bytes, 0, bytes.Length);
            }
            using (var response = (HttpWebResponse)request.GetResponse())
            using (var reader = new StreamReader(response.GetResponseStream(), Encoding.UTF8))
                return reader.ReadToEnd();
        }

        /// <summary>Every de-duplicated datapoint the collector holds, in arrival order.</summary>
        public static List<Dictionary<string, object>> Datapoints()
        {
            var body = (Dictionary<string, object>)Json.Parse(Get("/api/datapoints"));
            return ((List<object>)body["datapoints"]).Cast<Dictionary<string, object>>().ToList();
        }

        /// <summary>Polls until `select` over the datapoints returns at least `count` of them.</summary>
        public static List<Dictionary<string, object>> WaitForDatapoints(
            Func<Dictionary<string, object>, bool> select, int count, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                var found = Datapoints().Where(select).ToList();
                if (found.Count >= count || DateTime.UtcNow > deadline)
                    return found;
                Thread.Sleep(100);
            }
        }

        public static void SetFaults(string faultsJson)
        {
            Post("/admin/faults", faultsJson);
        }
    }

    /// <summary>A minimal JSON reader: objects become Dictionary, arrays List, integers long, other numbers double.</summary>
    public static class Json
    {
        public static object Parse(string text)
        {
            int position = 0;
            object value = ParseValue(text, ref position);
            SkipWhitespace(text, ref position);
            if (position != text.Length)
                throw new FormatException("trailing characters at " + position + " in " + text);
            return value;
        }

        private static object ParseValue(string text, ref int position)
        {
            SkipWhitespace(text, ref position);
            if (position >= text.Length)
                throw new FormatException("unexpected end of JSON");
            char c = text[position];
            if (c == '{')
            {
                var result = new Dictionary<string, object>();
                position++;
                SkipWhitespace(text, ref position);
                if (text[position] == '}')
                {
                    position++;
                    return result;
                }
                while (true)
                {
                    SkipWhitespace(text, ref position);
                    string key = ParseString(text, ref position);
                    SkipWhitespace(text, ref position);
                    Expect(text, ref position, ':');
                    result[key] = ParseValue(text, ref position);
                    SkipWhitespace(text, ref position);
                    if (text[position] == ',')
                    {
                        position++;
                        continue;
                    }
                    Expect(text, ref position, '}');
                    return result;
                }
            }
            if (c == '[')
            {
                var result = new List<object>();
                position++;
                SkipWhitespace(text, ref position);
                if (text[position] == ']')
                {
                    position++;
                    return result;
                }
                while (true)
                {
                    result.Add(ParseValue(text, ref position));
                    SkipWhitespace(text, ref position);
                    if (text[position] == ',')
                    {
                        position++;
                        continue;
                    }
                    Expect(text, ref position, ']');
                    return result;
                }
            }
            if (c == '"')
                return ParseString(text, ref position);
            if (Literal(text, ref position, "true"))
                return true;
            if (Literal(text, ref position, "false"))
                return false;
            if (Literal(text, ref position, "null"))
                return null;
            int start = position;
            while (position < text.Length && "+-0123456789.eE".IndexOf(text[position]) >= 0)
                position++;
            string number = text.Substring(start, position - start);
            if (number.Length == 0)
                throw new FormatException("unexpected character '" + c + "' at " + start);
            long integer;
            if (number.IndexOfAny(new[] { '.', 'e', 'E' }) < 0 && long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out integer))
                return integer;
            decimal exact;
            if (number.IndexOfAny(new[] { '.', 'e', 'E' }) < 0 && decimal.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out exact))
                return exact; // beyond long (e.g. ulong.MaxValue)
            return double.Parse(number, NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        private static string ParseString(string text, ref int position)
        {
            Expect(text, ref position, '"');
            var result = new StringBuilder();
            while (true)
            {
                char c = text[position++];
                if (c == '"')
                    return result.ToString();
                if (c < 0x20)
                    throw new FormatException("raw control character in a JSON string");
                if (c != '\\')
                {
                    result.Append(c);
                    continue;
                }
                char escape = text[position++];
                switch (escape)
                {
                    case '"': result.Append('"'); break;
                    case '\\': result.Append('\\'); break;
                    case '/': result.Append('/'); break;
                    case 'b': result.Append('\b'); break;
                    case 'f': result.Append('\f'); break;
                    case 'n': result.Append('\n'); break;
                    case 'r': result.Append('\r'); break;
                    case 't': result.Append('\t'); break;
                    case 'u':
                        result.Append((char)int.Parse(text.Substring(position, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        position += 4;
                        break;
                    default: throw new FormatException("bad escape \\" + escape);
                }
            }
        }

        private static bool Literal(string text, ref int position, string literal)
        {
            if (string.CompareOrdinal(text, position, literal, 0, literal.Length) != 0)
                return false;
            position += literal.Length;
            return true;
        }

        private static void Expect(string text, ref int position, char expected)
        {
            if (position >= text.Length || text[position] != expected)
                throw new FormatException("expected '" + expected + "' at " + position);
            position++;
        }

        private static void SkipWhitespace(string text, ref int position)
        {
            while (position < text.Length && char.IsWhiteSpace(text[position]))
                position++;
        }
    }

    /// <summary>Log messages as a log handler receives them, for a test to wait on in order.</summary>
    public sealed class LogInbox
    {
        private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
        private readonly Queue<KeyValuePair<StintLogLevel, string>> messages = new Queue<KeyValuePair<StintLogLevel, string>>();

        public void Add(StintLogLevel level, string message)
        {
            lock (messages)
            {
                messages.Enqueue(new KeyValuePair<StintLogLevel, string>(level, message));
                Monitor.PulseAll(messages);
            }
        }

        public int Count
        {
            get { lock (messages) return messages.Count; }
        }

        /// <summary>The next message; fails after a minute without one.</summary>
        public KeyValuePair<StintLogLevel, string> Next(string what)
        {
            var deadline = DateTime.UtcNow + Patience;
            lock (messages)
            {
                while (messages.Count == 0)
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero)
                        throw new AssertionException("no log message for " + what);
                    Monitor.Wait(messages, left);
                }
                return messages.Dequeue();
            }
        }

        /// <summary>The next report of a failed `method` call, skipping the library's own messages.</summary>
        public string NextReport(string method)
        {
            while (true)
            {
                string message = Next("the report of " + method).Value;
                if (message.StartsWith(method + " failed: ", StringComparison.Ordinal))
                    return message;
            }
        }
    }

    public static class Wait
    {
        /// <summary>Polls `condition` (every 20 ms) until it holds or `timeout` passes; returns whether it held.</summary>
        public static bool Until(Func<bool> condition, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!condition())
            {
                if (DateTime.UtcNow > deadline)
                    return false;
                Thread.Sleep(20);
            }
            return true;
        }

        /// <summary>A loopback port on which nothing listens.</summary>
        public static int ClosedPort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }
    }
}
