# Sourced by test.sh, bench.sh and scripts/android-aar.sh: the tools, the jars, and the build of
# the binding with kotlinc (no Gradle, no network) into build/stint.jar.
# Needs: a JDK (javac, jar, javap) and Debian's `kotlin libjna-java junit4`.

KOTLIN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$KOTLIN_DIR/../.." && pwd)"
BUILD="$KOTLIN_DIR/build"
JAVA_LIBS=/usr/share/java
JNA="$JAVA_LIBS/jna.jar"
# io.stint.android compiles against test-only stubs of the android.* classes it uses (Debian has
# no android.jar); they are only ever on a class path, never in stint.jar.
STUBS="$BUILD/android-stubs"
STINT_JAR="$BUILD/stint.jar"

kotlin_need() {
    local tool
    for tool in kotlinc javac jar javap java cargo flock; do
        command -v "$tool" >/dev/null || {
            echo "$(basename "$0"): $tool is missing (apt-get install -y kotlin default-jdk-headless libjna-java junit4)" >&2
            exit 1
        }
    done
    [ -f "$JNA" ] || { echo "$(basename "$0"): $JNA is missing (apt-get install -y libjna-java)" >&2; exit 1; }
    # kotlinc's own runtime, for running the compiled code.
    local kotlin_home
    kotlin_home="$(dirname "$(dirname "$(readlink -f "$(command -v kotlinc)")")")"
    STDLIB="$kotlin_home/lib/kotlin-stdlib.jar"
    [ -f "$STDLIB" ] || STDLIB="$JAVA_LIBS/kotlin-stdlib.jar"
    [ -f "$STDLIB" ] || { echo "$(basename "$0"): cannot find kotlin-stdlib.jar" >&2; exit 1; }
}

# kotlinc (1.3 on Debian) warns about JVM flags that JDK 13+ deprecated; that noise is dropped.
kotlin_compile() {
    local status=0
    kotlinc -jvm-target 1.8 "$@" 2>"$BUILD/kotlinc.log" || status=$?
    grep -v -e 'Options -Xverify:none and -noverify were deprecated' "$BUILD/kotlinc.log" >&2 || true
    return $status
}

# Builds the stubs and build/stint.jar (src/main only), holding build/.lock until the caller
# exits: a concurrent run would rebuild the same classes under it.
kotlin_build_binding() {
    echo "== compiling the binding (kotlinc $(kotlinc -version 2>&1 | grep -o 'kotlinc-jvm [^ ]*' || true))"
    mkdir -p "$BUILD"
    exec 9>"$BUILD/.lock"
    flock 9
    rm -rf "$STINT_JAR" "$STUBS"
    # -options: newer JDKs note that release 8 is old; it is what the binding targets (D8 takes it).
    javac --release 8 -Xlint:all,-options -d "$STUBS" $(find "$KOTLIN_DIR/src/androidStubs/java" -name '*.java')
    # Its own module name: an APK packs every library's META-INF/<module>.kotlin_module side by
    # side, and kotlinc's default, "main", collides with other libraries built the same way.
    kotlin_compile -module-name stint -cp "$JNA:$STUBS" -d "$STINT_JAR" "$KOTLIN_DIR/src/main/kotlin"
}
