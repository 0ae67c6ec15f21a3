// Stint for Unity: the C API of include/stint.h as P/Invoke declarations, and the NUL-terminated
// UTF-8 strings that cross it (encoded here, not by the marshaller's platform-dependent default).

using System;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;

namespace StintSdk
{
    /// <summary>
    /// The C API, one to one (see include/stint.h). Every signature is blittable (byte[] is pinned,
    /// not copied), and the security stack walk is skipped on every call: the library is trusted.
    /// </summary>
    [SuppressUnmanagedCodeSecurity]
    internal static class Native
    {
#if UNITY_IOS && !UNITY_EDITOR
        internal const string LibName = "__Internal";
#else
        internal const string LibName = "stint";
#endif

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
        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_initialize(byte[] apiKey, byte[] optionsJson);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_shutdown(uint timeoutMs);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_open_session();

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_close_session();

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_change_user(byte[] userId);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_log_custom_event(byte[] name, byte[] propertiesJson);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_request_immediate_data_flush();

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_flush(uint timeoutMs);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_get_session_id([Out] byte[] buffer, UIntPtr bufferLen);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_get_stats(out StintStats stats);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern UIntPtr stint_last_error_message([Out] byte[] buffer, UIntPtr bufferLen);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_set_session_listener(SessionListener listener, IntPtr userData);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_set_log_handler(LogHandler handler, IntPtr userData);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr stint_version();

        // C bool is one byte: I1, not the 4-byte Win32 BOOL the marshaller assumes for bool.
        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_set_tracking_enabled([MarshalAs(UnmanagedType.I1)] bool enabled);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_get_tracking_enabled([MarshalAs(UnmanagedType.I1)] out bool enabled);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_wipe_data();

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_get_device_id([Out] byte[] buffer, UIntPtr bufferLen);

        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]
        internal static extern StintStatus stint_set_network_enabled([MarshalAs(UnmanagedType.I1)] bool enabled);
    }

    /// <summary>NUL-terminated UTF-8, encoded and decoded here rather than by the marshaller.</summary>
    internal static class Utf8
    {
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        [ThreadStatic]
        private static byte[] reused;

        /// <summary>Null stays null (a NULL pointer: the library names the argument).</summary>
        public static byte[] Encode(string text, string argument)
        {
            return text == null ? null : Into(text, argument, new byte[MostBytes(text)]);
        }

        /// <summary>
        /// As Encode, into this thread's reusable array (no allocation once it is big enough): valid
        /// until the next EncodeReused on this thread. For the hot calls' string argument.
        /// </summary>
        public static byte[] EncodeReused(string text, string argument)
        {
            if (text == null)
                return null;
            byte[] bytes = reused;
            if (bytes == null || bytes.Length < MostBytes(text))
                reused = bytes = new byte[Math.Max(MostBytes(text), 64)];
            return Into(text, argument, bytes);
        }

        /// <summary>3 bytes per UTF-16 unit at most (a surrogate pair: 4 for 2), plus the NUL.</summary>
        private static int MostBytes(string text)
        {
            return text.Length * 3 + 1;
        }

        private static byte[] Into(string text, string argument, byte[] bytes)
        {
            // Names are mostly ASCII: copied as they are, the encoder only for the rest.
            int ascii = 0;
            while (ascii < text.Length && text[ascii] < 0x80 && text[ascii] != '\0')
            {
                bytes[ascii] = (byte)text[ascii];
                ascii++;
            }
            if (ascii == text.Length)
            {
                bytes[ascii] = 0;
                return bytes;
            }
            if (text.IndexOf('\0') >= 0)
                throw new StintException(StintStatus.InvalidArgument, argument + " must not contain NUL characters");
            try
            {
                bytes[Strict.GetBytes(text, 0, text.Length, bytes, 0)] = 0;
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
