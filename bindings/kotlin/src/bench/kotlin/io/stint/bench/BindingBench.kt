package io.stint.bench

import io.stint.Stint
import io.stint.StintOptions
import io.stint.StintStatus
import java.io.File
import java.nio.file.Files
import kotlin.system.exitProcess

/**
 * The Kotlin binding's own cost (issue 18): the median per call of `logCustomEvent` with and
 * without properties and of `openSession` (on an open session), on one thread, timed in batches
 * of [BATCH] calls (the median of the batches' per-call times), after an untimed warm-up that
 * lets the JIT compile the path. A benchmark: it prints, and never judges the figures; it exits
 * non-zero only if a call did not return OK (then it measured an error path).
 *
 * Usage (bench.sh): BindingBench [calls per figure, default 500000]
 */
object BindingBench {
    private const val BATCH = 1000
    private val PROPERTIES: Map<String, Any?> = mapOf("level" to 3)

    @JvmStatic
    fun main(args: Array<String>) {
        val calls = args.firstOrNull()?.toInt() ?: 500_000
        val batches = maxOf(1, calls / BATCH)
        val directory = Files.createTempDirectory("stint-kotlin-bench").toFile()
        var failures = 0L
        try {
            // Store only (no baseUrl); a queue large enough that no call drops an older event.
            Stint.initialize("bench-key", StintOptions(dataDirectory = File(directory, "data").absolutePath, maxQueuedDatapoints = 10_000_000))
            if (Stint.openSession() != StintStatus.OK) failures++
            println("| binding | call | median per call | target |")
            println("|---|---|---|---|")
            val figures = listOf(
                Triple("`Stint.logCustomEvent(\"level_up\", mapOf(\"level\" to 3))`", "≤ 1 µs") { Stint.logCustomEvent("level_up", PROPERTIES) },
                Triple("`Stint.logCustomEvent(\"level_up\")`", "≤ 400 ns") { Stint.logCustomEvent("level_up") },
                Triple("`Stint.openSession()` (session open)", "") { Stint.openSession() }
            )
            for ((name, target, call) in figures) {
                val (median, failed) = medianPerCall(batches, call)
                failures += failed
                println("| Kotlin (JNA, JVM) | $name | ${format(median)} | $target |")
            }
            println("($calls calls per figure, batches of $BATCH, ${System.getProperty("java.vm.name")} ${System.getProperty("java.version")})")
            Stint.shutdown(30_000L)
        } finally {
            directory.deleteRecursively()
        }
        if (failures > 0) {
            System.err.println("bench: $failures calls did not return OK: the figures are not the binding's normal path")
            exitProcess(1)
        }
    }

    /** The median per-call time in ns of [batches] batches, and how many calls failed. */
    private fun medianPerCall(batches: Int, call: () -> StintStatus): Pair<Double, Long> {
        var failed = 0L
        // Warm-up: the JIT compiles the whole path before any timing.
        repeat(maxOf(20_000, batches * BATCH / 10)) { if (call() != StintStatus.OK) failed++ }
        val perCall = DoubleArray(batches)
        for (batch in 0 until batches) {
            val start = System.nanoTime()
            for (i in 0 until BATCH) {
                if (call() != StintStatus.OK) failed++
            }
            perCall[batch] = (System.nanoTime() - start).toDouble() / BATCH
        }
        perCall.sort()
        return perCall[batches / 2] to failed
    }

    private fun format(ns: Double): String = if (ns >= 1000) "%.2f µs".format(ns / 1000) else "%.0f ns".format(ns)
}
