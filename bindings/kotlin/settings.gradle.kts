// Standalone build of the Kotlin binding for JVM and Android users. The repository's own tests
// do not use Gradle: they run through test.sh with Debian's kotlinc.
rootProject.name = "stint"
