// The C# binding's own cost under Mono (issue 18): the median per call of LogCustomEvent with
// and without properties and of OpenSession, and the same C calls made straight through
// P/Invoke with bytes prepared once (what the binding adds is the difference).
//
//   bindings/unity/bench.sh [calls]       (default 500,000 per figure; docs/performance.md)
//
// Calls are timed in batches of 1,000 with a Stopwatch; a figure is the median over the batches
// of the time per call, so a preemption spoils one batch, not the figure. Every call must return
// Ok and record what it should, or the program exits 1 (the test command runs it as a smoke).

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;

namespace StintSdk.Bench
{
    public static class StintBench
    {
        private const int Batch = 1000;

        public static int Main(string[] args)
        {
            int calls = args.Length > 0 ? int.Parse(args[0]) : 500000;
            if (calls < Batch)
                calls = Batch;
            string directory = Path.Combine(Path.GetTempPath(), "stint-cs-bench-" + Guid.NewGuid().ToString("N"));
            try
            {
                return Run(calls, directory);
            }
            finally
            {
                try { Directory.Delete(directory, true); } catch (IOException) { }
            }
        }

        private static int Run(int calls, string directory)
        {
            Stint.Initialize("bench-key", new StintOptions
            {
                DataDirectory = directory,
                MaxQueuedDatapoints = 10000000,
                KeepOpenWhileForeground = true,
                LogLevel = "error",
            });
            Check(Stint.OpenSession(), "OpenSession");
            var properties = new Dictionary<string, object> { { "level", 3 } };
            byte[] name = Encoding.UTF8.GetBytes("level_up\0");
            byte[] json = Encoding.UTF8.GetBytes("{\"level\":3}\0");

            // Warm-up: the JIT, the native library's lanes.
            Measure(Math.Min(calls, 20000), () => Stint.LogCustomEvent("level_up", properties));
            Measure(Math.Min(calls, 20000), () => Stint.LogCustomEvent("level_up"));
            Stint.WipeData();
            Check(Stint.OpenSession(), "OpenSession");

            ulong before = Stint.Stats.DatapointsRecorded;
            double withProperties = Measure(calls, () => Stint.LogCustomEvent("level_up", properties));
            double withoutProperties = Measure(calls, () => Stint.LogCustomEvent("level_up"));
            ulong recorded = Stint.Stats.DatapointsRecorded - before;
            if (recorded != 2UL * (ulong)RoundedCalls(calls))
            {
                Console.Error.WriteLine("bench: " + recorded + " datapoints recorded, expected " + 2 * RoundedCalls(calls));
                return 1;
            }
            Stint.WipeData();
            Check(Stint.OpenSession(), "OpenSession");
            double openSession = Measure(calls, () => Stint.OpenSession());
            double cWithProperties = Measure(calls, () => Native.stint_log_custom_event(name, json));
            double cWithout = Measure(calls, () => Native.stint_log_custom_event(name, null));
            double cOpen = Measure(calls, () => Native.stint_open_session());
            Stint.Shutdown(TimeSpan.FromSeconds(5));

            Console.WriteLine("C# binding under Mono " + MonoVersion() + ", " + calls + " calls per figure, median per call over batches of " + Batch);
            Console.WriteLine();
            Console.WriteLine("| binding | call | median per call | target |");
            Console.WriteLine("|---|---|---|---|");
            Row("C# (Mono)", "`Stint.LogCustomEvent(\"level_up\", {\"level\": 3})`", withProperties, "≤ 1 µs");
            Row("C# (Mono)", "`Stint.LogCustomEvent(\"level_up\")`", withoutProperties, "≤ 400 ns");
            Row("C# (Mono)", "`Stint.OpenSession()`", openSession, "-");
            Row("C# (Mono), raw P/Invoke", "`stint_log_custom_event` with prepared bytes", cWithProperties, "-");
            Row("C# (Mono), raw P/Invoke", "`stint_log_custom_event`, no properties", cWithout, "-");
            Row("C# (Mono), raw P/Invoke", "`stint_open_session`", cOpen, "-");
            return 0;
        }

        private static int RoundedCalls(int calls)
        {
            return calls / Batch * Batch;
        }

        /// <summary>The median over batches of the nanoseconds per call; every call must return Ok.</summary>
        private static double Measure(int calls, Func<StintStatus> call)
        {
            int batches = calls / Batch;
            var perCall = new double[batches];
            var watch = new Stopwatch();
            for (int b = 0; b < batches; b++)
            {
                StintStatus worst = StintStatus.Ok;
                watch.Restart();
                for (int i = 0; i < Batch; i++)
                {
                    StintStatus status = call();
                    if (status != StintStatus.Ok)
                        worst = status;
                }
                watch.Stop();
                Check(worst, "a measured call");
                perCall[b] = watch.Elapsed.TotalMilliseconds * 1e6 / Batch;
            }
            Array.Sort(perCall);
            return perCall[batches / 2];
        }

        private static void Check(StintStatus status, string what)
        {
            if (status != StintStatus.Ok)
                throw new InvalidOperationException(what + " returned " + status);
        }

        private static void Row(string binding, string call, double nanoseconds, string target)
        {
            string shown = nanoseconds >= 1000
                ? (nanoseconds / 1000).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) + " µs"
                : nanoseconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture) + " ns";
            Console.WriteLine("| " + binding + " | " + call + " | " + shown + " | " + target + " |");
        }

        private static string MonoVersion()
        {
            var type = Type.GetType("Mono.Runtime");
            var method = type == null ? null : type.GetMethod("GetDisplayName", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static);
            return method == null ? "(version unknown)" : (string)method.Invoke(null, null);
        }
    }
}
