package io.stint

import org.junit.internal.TextListener
import org.junit.runner.JUnitCore
import org.junit.runner.Request
import kotlin.system.exitProcess

/**
 * Runs the test classes named in [args] (default: all) with JUnit's own runner and output, then
 * ends with the line `kotlin: N passed, N failed` and a non-zero exit status on any failure.
 * An optional `Class#method` runs one test.
 */
object RunTests {
    private val ALL = listOf(
        "io.stint.OptionsTest",
        "io.stint.StatusTest",
        "io.stint.LifecycleTest",
        "io.stint.ListenerTest",
        "io.stint.ConcurrencyTest",
        "io.stint.PrivacyTest",
        "io.stint.EncodingTest",
        "io.stint.android.AndroidLifecycleTest"
    )

    @JvmStatic
    fun main(args: Array<String>) {
        val core = JUnitCore()
        core.addListener(TextListener(System.out))
        var run = 0
        var failed = 0
        var ignored = 0
        for (name in if (args.isNotEmpty()) args.toList() else ALL) {
            val parts = name.split("#")
            val type = Class.forName(parts[0])
            val request = if (parts.size > 1) Request.method(type, parts[1]) else Request.aClass(type)
            val result = core.run(request)
            run += result.runCount
            failed += result.failureCount
            ignored += result.ignoreCount
        }
        if (run == 0) failed++
        println("kotlin: ${run - failed} passed, $failed failed" + if (ignored > 0) ", $ignored skipped" else "")
        exitProcess(if (failed == 0) 0 else 1)
    }
}
