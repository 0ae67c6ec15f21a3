// Stint for Unity: a small JSON writer for options and custom event properties.

using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace StintSdk
{
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
}
