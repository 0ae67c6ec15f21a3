// A tiny test runner for plain Mono: runs every [Test] method of StintTests in declaration order,
// one at a time, and ends with the line "N passed, M failed" (exit code 1 on any failure).
// Usage: mono StintTests.exe [name-part ...] [!name-part ...]  (run matching tests, skip "!" ones)

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Reflection;
using System.Threading;
using StintSdk;

namespace StintSdk.Tests
{
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute
    {
    }

    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void True(bool condition, string message)
        {
            if (!condition)
                throw new AssertionException(message);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected <" + Show(expected) + "> but got <" + Show(actual) + ">");
        }

        public static void Contains(string expectedPart, string actual, string what)
        {
            if (actual == null || actual.IndexOf(expectedPart, StringComparison.Ordinal) < 0)
                throw new AssertionException(what + ": expected it to contain <" + expectedPart + "> but got <" + Show(actual) + ">");
        }

        public static StintException Throws(StintStatus status, Action action, string what)
        {
            try
            {
                action();
            }
            catch (StintException e)
            {
                if (e.Status != status)
                    throw new AssertionException(what + ": expected status " + status + " but got " + e.Status + " (" + e.Message + ")");
                if (string.IsNullOrEmpty(e.Message))
                    throw new AssertionException(what + ": StintException without a message");
                return e;
            }
            throw new AssertionException(what + ": expected StintException(" + status + ") but nothing was thrown");
        }

        private static string Show(object value)
        {
            return value == null ? "null" : value.ToString();
        }
    }

    public static class TestRunner
    {
        /// <summary>A test that takes longer than this is stuck (a deadlock): stop everything.</summary>
        private static readonly TimeSpan TestTimeout = TimeSpan.FromMinutes(4);

        public static int Main(string[] args)
        {
            if (args.Length == 2 && args[0] == "--child")
            {
                Exit(StintTests.RunChild(args[1]));
                return 1;
            }
            var include = args.Where(a => !a.StartsWith("!")).ToList();
            var exclude = args.Where(a => a.StartsWith("!")).Select(a => a.Substring(1)).ToList();
            Func<string, string, bool> matches = (name, part) => name.IndexOf(part, StringComparison.OrdinalIgnoreCase) >= 0;
            var tests = typeof(StintTests).GetMethods(BindingFlags.Public | BindingFlags.Instance)
                .Where(m => m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0)
                .OrderBy(m => m.MetadataToken)
                .Where(m => include.Count == 0 || include.Any(part => matches(m.Name, part)))
                .Where(m => !exclude.Any(part => matches(m.Name, part)))
                .ToList();
            Console.WriteLine("Stint C# binding tests against libstint " + Stint.Version + ": " + tests.Count + " tests");
            int passed = 0, failed = 0;
            foreach (var test in tests)
            {
                Exception failure = null;
                var watch = Stopwatch.StartNew();
                var thread = new Thread(() => failure = Run(test));
                thread.IsBackground = true;
                thread.Start();
                if (!thread.Join(TestTimeout))
                {
                    Console.WriteLine("FAIL " + test.Name + ": still running after " + TestTimeout.TotalSeconds + " s (deadlock?)");
                    failed++;
                    Console.WriteLine(passed + " passed, " + failed + " failed");
                    Exit(1);
                }
                if (failure == null)
                {
                    passed++;
                    Console.WriteLine("PASS " + test.Name + " (" + watch.Elapsed.TotalSeconds.ToString("0.0") + " s)");
                }
                else
                {
                    failed++;
                    Console.WriteLine("FAIL " + test.Name + ": " + failure.GetType().Name + ": " + failure.Message);
                    if (!(failure is AssertionException))
                        Console.WriteLine(failure.StackTrace);
                }
                Console.Out.Flush();
            }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            Console.Out.Flush();
            Exit(failed == 0 && tests.Count > 0 ? 0 : 1);
            return 1;
        }

        /// <summary>
        /// Leaves at once. Mono before 6.10 waits at exit for every native thread that has ever
        /// called a managed delegate (mono/mono#18656), here the library's callback thread, which
        /// never ends: Environment.Exit would hang.
        /// </summary>
        private static void Exit(int code)
        {
            Console.Out.Flush();
            Console.Error.Flush();
            _exit(code);
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "_exit")]
        private static extern void _exit(int status);

        private static Exception Run(MethodInfo test)
        {
            var fixture = new StintTests();
            Exception failure = null;
            try
            {
                test.Invoke(fixture, null);
            }
            catch (TargetInvocationException e)
            {
                failure = e.InnerException ?? e;
            }
            catch (Exception e)
            {
                failure = e;
            }
            try
            {
                fixture.CleanUp();
            }
            catch (Exception e)
            {
                if (failure == null)
                    failure = e;
            }
            return failure;
        }
    }
}
