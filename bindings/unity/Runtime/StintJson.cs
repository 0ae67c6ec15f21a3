// Stint for Unity: a small JSON writer for options and custom event properties, writing
// NUL-terminated UTF-8 straight into a byte buffer that a thread reuses from call to call (no
// string, no StringBuilder, no per-call array on the hot path of LogCustomEvent).

using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace StintSdk
{
    /// <summary>A growable UTF-8 byte buffer holding one JSON text.</summary>
    internal sealed class JsonWriter
    {
        private byte[] buffer;
        private int length;

        /// <summary>The argument the text is passed as ("properties_json"), for messages.</summary>
        private readonly string argument;

        /// <summary>In use by a call on this thread (a property's own code may log an event).</summary>
        private bool taken;

        [ThreadStatic]
        private static JsonWriter properties;

        public JsonWriter(string argument, int capacity = 256)
        {
            this.argument = argument;
            buffer = new byte[capacity];
        }

        /// <summary>
        /// This thread's writer for properties_json, emptied, until Release; a fresh one if a call
        /// on this thread holds it already (a property whose enumeration logs an event itself).
        /// </summary>
        public static JsonWriter TakeForThisThread()
        {
            var writer = properties;
            if (writer == null)
                properties = writer = new JsonWriter("properties_json");
            else if (writer.taken)
                writer = new JsonWriter("properties_json");
            writer.taken = true;
            writer.length = 0;
            return writer;
        }

        public void Release()
        {
            taken = false;
        }

        /// <summary>Whether nothing but an opening brace has been written (no member yet).</summary>
        public bool AtObjectStart
        {
            get { return length > 0 && buffer[length - 1] == (byte)'{'; }
        }

        /// <summary>The text, NUL-terminated, in the writer's own array (which the next use reuses).</summary>
        public byte[] Terminated()
        {
            Ensure(1);
            buffer[length] = 0;
            return buffer;
        }

        public override string ToString()
        {
            return Encoding.UTF8.GetString(buffer, 0, length);
        }

        public void Byte(char ascii)
        {
            Ensure(1);
            buffer[length++] = (byte)ascii;
        }

        public void Ascii(string text)
        {
            Ensure(text.Length);
            for (int i = 0; i < text.Length; i++)
                buffer[length++] = (byte)text[i];
        }

        public void Integer(long value)
        {
            if (value < 0)
            {
                Byte('-');
                // -(long.MinValue) does not fit a long; it does an ulong.
                Integer(unchecked((ulong)(-(value + 1)) + 1UL));
                return;
            }
            Integer((ulong)value);
        }

        public void Integer(ulong value)
        {
            int digits = 1;
            for (ulong rest = value / 10; rest != 0; rest /= 10)
                digits++;
            Ensure(digits);
            length += digits;
            for (int at = length - 1; digits > 0; digits--, at--)
            {
                buffer[at] = (byte)('0' + (int)(value % 10));
                value /= 10;
            }
        }

        /// <summary>A JSON string: RFC 8259 escaping, the rest as UTF-8; an unpaired surrogate is InvalidArgument.</summary>
        public void String(string text)
        {
            Ensure(text.Length * 3 + 2);
            buffer[length++] = (byte)'"';
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c < 0x80)
                {
                    if (c >= 0x20 && c != '"' && c != '\\')
                    {
                        buffer[length++] = (byte)c;
                        continue;
                    }
                    Escape(c);
                    // An escape takes up to 6 bytes where 3 were reserved: reserve for the rest again.
                    Ensure(3 * (text.Length - i - 1) + 1);
                    continue;
                }
                if (c < 0x800)
                {
                    buffer[length++] = (byte)(0xC0 | (c >> 6));
                    buffer[length++] = (byte)(0x80 | (c & 0x3F));
                    continue;
                }
                if (char.IsSurrogate(c))
                {
                    if (!char.IsHighSurrogate(c) || i + 1 == text.Length || !char.IsLowSurrogate(text[i + 1]))
                        throw new StintException(StintStatus.InvalidArgument, argument + " is not valid text (unpaired UTF-16 surrogate)");
                    int code = char.ConvertToUtf32(c, text[++i]);
                    buffer[length++] = (byte)(0xF0 | (code >> 18));
                    buffer[length++] = (byte)(0x80 | ((code >> 12) & 0x3F));
                    buffer[length++] = (byte)(0x80 | ((code >> 6) & 0x3F));
                    buffer[length++] = (byte)(0x80 | (code & 0x3F));
                    continue;
                }
                buffer[length++] = (byte)(0xE0 | (c >> 12));
                buffer[length++] = (byte)(0x80 | ((c >> 6) & 0x3F));
                buffer[length++] = (byte)(0x80 | (c & 0x3F));
            }
            Ensure(1);
            buffer[length++] = (byte)'"';
        }

        private void Escape(char c)
        {
            switch (c)
            {
                case '"': Ascii("\\\""); break;
                case '\\': Ascii("\\\\"); break;
                case '\n': Ascii("\\n"); break;
                case '\r': Ascii("\\r"); break;
                case '\t': Ascii("\\t"); break;
                case '\b': Ascii("\\b"); break;
                case '\f': Ascii("\\f"); break;
                default:
                    Ascii("\\u00");
                    Byte(Hex[c >> 4]);
                    Byte(Hex[c & 0xF]);
                    break;
            }
        }

        private const string Hex = "0123456789abcdef";

        /// <summary>Room for `more` bytes after what is written.</summary>
        private void Ensure(int more)
        {
            int needed = length + more;
            if (needed <= buffer.Length)
                return;
            int size = buffer.Length * 2;
            while (size < needed)
                size *= 2;
            Array.Resize(ref buffer, size);
        }
    }

    /// <summary>
    /// A small JSON writer for options and event properties: RFC 8259 escaping, numbers in the
    /// invariant culture, and a StintException(InvalidArgument) for what JSON cannot hold, naming
    /// the property ("properties.level[2]").
    /// </summary>
    internal static class StintJson
    {
        private const int MaxDepth = 64;

        /// <summary>The properties as JSON text (for tests and ToString; the calls use Write).</summary>
        public static string Object(IDictionary<string, object> properties, string path)
        {
            var json = new JsonWriter("properties_json");
            Write(json, properties, path);
            return json.ToString();
        }

        /// <summary>Writes a whole value; `path` names it in messages.</summary>
        public static void Write(JsonWriter json, object value, string path)
        {
            Value(json, value, path, null, -1, 0);
        }

        /// <summary>Writes `"key":value` into an object the caller opened with '{' and closes.</summary>
        public static void Member(JsonWriter json, string key, object value, string path)
        {
            if (!json.AtObjectStart)
                json.Byte(',');
            json.String(key);
            json.Byte(':');
            Value(json, value, path, key, -1, 1);
        }

        // A value's path is built only for a message or a nested container: `parent` plus ".key",
        // or "[index]", or nothing (the top).
        private static string PathOf(string parent, string key, int index)
        {
            if (key != null)
                return parent + "." + key;
            if (index >= 0)
                return parent + "[" + index.ToString(CultureInfo.InvariantCulture) + "]";
            return parent;
        }

        private static void Value(JsonWriter json, object value, string parent, string key, int index, int depth)
        {
            if (depth > MaxDepth)
                throw Invalid(PathOf(parent, key, index), "is nested more than " + MaxDepth + " levels deep (a cycle?)");
            if (value == null)
            {
                json.Ascii("null");
                return;
            }
            var text = value as string;
            if (text != null)
            {
                json.String(text);
                return;
            }
            if (value is int)
            {
                json.Integer((int)value);
                return;
            }
            if (value is bool)
            {
                json.Ascii((bool)value ? "true" : "false");
                return;
            }
            if (value is long)
            {
                json.Integer((long)value);
                return;
            }
            if (value is double || value is float)
            {
                double number = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                if (double.IsNaN(number) || double.IsInfinity(number))
                    throw Invalid(PathOf(parent, key, index), "is " + number.ToString(CultureInfo.InvariantCulture) + ", which JSON cannot represent");
                // "R" round-trips; a float is formatted as a float so 0.1f stays 0.1.
                json.Ascii(value is float
                    ? ((float)value).ToString("R", CultureInfo.InvariantCulture)
                    : number.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            if (value is char || value is Enum)
            {
                json.String(value.ToString());
                return;
            }
            if (value is sbyte || value is short)
            {
                json.Integer(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                return;
            }
            if (value is byte || value is ushort || value is uint || value is ulong)
            {
                json.Integer(Convert.ToUInt64(value, CultureInfo.InvariantCulture));
                return;
            }
            if (value is decimal)
            {
                json.Ascii(((decimal)value).ToString(CultureInfo.InvariantCulture));
                return;
            }
            // The common case first: Dictionary's own enumerator is a struct (no allocation), where
            // the IDictionary one boxes every entry.
            var objects = value as Dictionary<string, object>;
            if (objects != null)
            {
                string path = PathOf(parent, key, index);
                json.Byte('{');
                bool first = true;
                foreach (var pair in objects)
                    Entry(json, ref first, pair.Key, pair.Value, path, depth);
                json.Byte('}');
                return;
            }
            var dictionary = value as IDictionary;
            if (dictionary != null)
            {
                string path = PathOf(parent, key, index);
                json.Byte('{');
                bool first = true;
                foreach (DictionaryEntry entry in dictionary)
                {
                    var entryKey = entry.Key as string;
                    if (entryKey == null)
                        throw Invalid(path, "has a key that is not a string (" + entry.Key.GetType().Name + ")");
                    Entry(json, ref first, entryKey, entry.Value, path, depth);
                }
                json.Byte('}');
                return;
            }
            var pairs = value as IEnumerable<KeyValuePair<string, object>>;
            if (pairs != null)
            {
                string path = PathOf(parent, key, index);
                json.Byte('{');
                bool first = true;
                foreach (var pair in pairs)
                {
                    if (pair.Key == null)
                        throw Invalid(path, "has a null key");
                    Entry(json, ref first, pair.Key, pair.Value, path, depth);
                }
                json.Byte('}');
                return;
            }
            var list = value as IEnumerable;
            if (list != null)
            {
                string path = PathOf(parent, key, index);
                json.Byte('[');
                int item = 0;
                foreach (object element in list)
                {
                    if (item > 0)
                        json.Byte(',');
                    Value(json, element, path, null, item, depth + 1);
                    item++;
                }
                json.Byte(']');
                return;
            }
            throw Invalid(PathOf(parent, key, index), "has a type JSON cannot hold: " + value.GetType().FullName);
        }

        /// <summary>One `"key":value` of an object at `depth` whose path is `path`.</summary>
        private static void Entry(JsonWriter json, ref bool first, string key, object value, string path, int depth)
        {
            if (!first)
                json.Byte(',');
            first = false;
            json.String(key);
            json.Byte(':');
            Value(json, value, path, key, -1, depth + 1);
        }

        private static StintException Invalid(string path, string problem)
        {
            return new StintException(StintStatus.InvalidArgument, path + " " + problem);
        }
    }
}
