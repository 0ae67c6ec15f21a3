// The Kotlin binding as a plain JVM library (a jar), usable from JVM apps and Android apps.
// Not used by the repository's tests (see test.sh). On Android, depend on JNA's AAR instead of
// its jar (docs/android.md); the native libstint.so is packaged by the app per ABI.
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

dependencies {
    api("net.java.dev.jna:jna:5.14.0")
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
