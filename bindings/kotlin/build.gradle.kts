// The Kotlin binding as a plain JVM library (a jar), for JVM apps. Not used by the repository's
// tests (see test.sh) and not run here (no Gradle on the test machines). Android apps use the AAR
// from scripts/android-aar.sh (docs/android.md).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    kotlin("jvm") version "2.0.21"
    `java-library`
}

group = "io.stint"
version = "0.1.0"

repositories {
    mavenCentral()
}

// io.stint.android compiles against test-only stubs of the android.* classes it uses (no
// android.jar on the JVM); they never reach the jar. On Android, use the AAR (scripts/android-aar.sh).
sourceSets {
    create("androidStubs") {
        java.srcDir("src/androidStubs/java")
    }
}

dependencies {
    api("net.java.dev.jna:jna:5.14.0")
    compileOnly(sourceSets["androidStubs"].output)
    testImplementation(sourceSets["androidStubs"].output)
    testImplementation("junit:junit:4.13.2")
}

java {
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_1_8)
    }
}

tasks.test {
    // The tests need the native library and a running stint-collector, as test.sh provides:
    //   gradle test -Pstint.library.path=/abs/libstint.so -Pstint.collector.url=http://127.0.0.1:PORT
    for (name in listOf("stint.library.path", "stint.collector.url")) {
        project.findProperty(name)?.let { systemProperty(name, it) }
    }
}
