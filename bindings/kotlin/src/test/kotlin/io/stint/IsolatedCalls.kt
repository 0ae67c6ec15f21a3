package io.stint

import java.io.File
import java.net.URLClassLoader
import java.util.Collections

/**
 * Loads the `io.stint` classes afresh (its own [Stint] object, whose library is not loaded yet)
 * while sharing JNA and Kotlin with the tests: JNA's native part can be loaded only once per
 * process.
 */
class FreshStintLoader : URLClassLoader(
    System.getProperty("java.class.path").split(File.pathSeparator).map { File(it).toURI().toURL() }.toTypedArray(),
    FreshStintLoader::class.java.classLoader
) {
    override fun loadClass(name: String, resolve: Boolean): Class<*> {
        if (!name.startsWith("io.stint.")) return super.loadClass(name, resolve)
        synchronized(getClassLoadingLock(name)) {
            val type = findLoadedClass(name) ?: findClass(name)
            if (resolve) resolveClass(type)
            return type
        }
    }
}

/** Runs inside a [FreshStintLoader]: calls Stint and writes down what each call did. */
object IsolatedCalls {
    @JvmStatic
    fun run(): List<String> {
        val results = Collections.synchronizedList(ArrayList<String>())
        Stint.setLogHandler { level, message -> results.add("log $level $message") }
        results.add("openSession=${Stint.openSession()}")
        results.add("logCustomEvent=${Stint.logCustomEvent("e", mapOf("k" to 1))}")
        results.add("wipeData=${Stint.wipeData()}")
        results.add("trackingEnabled=${Stint.trackingEnabled}")
        results.add("deviceId=${Stint.deviceId}")
        try {
            Stint.initialize("key")
            results.add("initialize returned")
        } catch (error: StintException) {
            results.add("initialize threw ${error.status}")
        } catch (error: Throwable) {
            results.add("initialize threw $error")
        }
        return ArrayList(results)
    }
}
