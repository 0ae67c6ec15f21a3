#!/usr/bin/env bash
# Packs Stint for Android: target/android/stint-<version>.aar and its POM
# (io.stint:stint-android:<version>, depending on JNA's AAR), the version being Cargo.toml's.
#
# The AAR holds AndroidManifest.xml (package io.stint, minSdk 21, the INTERNET permission),
# classes.jar (io.stint and io.stint.android, compiled by kotlinc; never the android.* stubs they
# compile against), proguard.txt (consumer rules for JNA and the binding, from
# bindings/kotlin/consumer-rules.pro), an empty R.txt (no resources) and jni/<abi>/libstint.so
# for arm64-v8a, armeabi-v7a and x86_64, each linked by the Android NDK's clang.
#
# Usage: scripts/android-aar.sh [--no-native] [--repo DIR]
#   --no-native  without an NDK: an AAR with no native code (the app adds libstint.so itself)
#   --repo DIR   also lays the AAR and POM out as a Maven repository in DIR
#                (DIR/io/stint/stint-android/<version>/stint-android-<version>.{aar,pom})
# The NDK: $ANDROID_NDK_HOME, $ANDROID_NDK_ROOT, or the newest $ANDROID_HOME/ndk/<version>.
set -euo pipefail
cd "$(dirname "$0")/.."

# JNA's Android AAR (libjnidispatch.so per ABI) that the POM depends on; the binding needs JNA 5.
JNA_VERSION=5.14.0
# The Kotlin runtime the classes need: they are compiled by kotlinc 1.3 (Debian's); any newer
# kotlin-stdlib an app already has runs them.
KOTLIN_STDLIB_VERSION=1.3.31
MIN_SDK=21
# ABI name (jni/ folder) -> Rust target -> the NDK clang's target prefix.
ABIS=("arm64-v8a aarch64-linux-android aarch64-linux-android"
    "armeabi-v7a armv7-linux-androideabi armv7a-linux-androideabi"
    "x86_64 x86_64-linux-android x86_64-linux-android")

native=1
repo=
while [ $# -gt 0 ]; do
    case "$1" in
        --no-native) native=0 ;;
        --repo) repo="${2:?--repo needs a directory}"; shift ;;
        *) echo "usage: scripts/android-aar.sh [--no-native] [--repo DIR]" >&2; exit 2 ;;
    esac
    shift
done

version="$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
[ -n "$version" ] || { echo "android-aar: no [package] version in Cargo.toml" >&2; exit 1; }

find_ndk() {
    local candidate
    for candidate in "${ANDROID_NDK_HOME:-}" "${ANDROID_NDK_ROOT:-}"; do
        [ -n "$candidate" ] && [ -d "$candidate/toolchains/llvm/prebuilt" ] && { echo "$candidate"; return; }
    done
    for candidate in "${ANDROID_HOME:-}" "${ANDROID_SDK_ROOT:-}"; do
        [ -n "$candidate" ] && [ -d "$candidate/ndk" ] || continue
        candidate="$(ls -d "$candidate"/ndk/*/ 2>/dev/null | sort -V | tail -n 1 || true)"
        [ -n "$candidate" ] && [ -d "$candidate/toolchains/llvm/prebuilt" ] && { echo "${candidate%/}"; return; }
    done
    return 0
}

ndk=
if [ "$native" = 1 ]; then
    ndk="$(find_ndk)"
    if [ -z "$ndk" ]; then
        cat >&2 <<'MSG'
android-aar: no Android NDK found ($ANDROID_NDK_HOME, $ANDROID_NDK_ROOT, $ANDROID_HOME/ndk/<version>).
libstint.so for Android must be linked by the NDK's clang against its bionic C library (libc.so,
libdl.so, liblog.so), which nothing else provides, so the AAR's jni/<abi>/libstint.so cannot be
built here. Install the NDK (r27 or newer) and set ANDROID_NDK_HOME, or pass --no-native for an
AAR without native code (the app then adds libstint.so per ABI itself, see docs/android.md).
MSG
        exit 1
    fi
fi

out=target/android
stage="$out/aar"
rm -rf "$stage"
mkdir -p "$stage"

if [ "$native" = 1 ]; then
    prebuilt="$(ls -d "$ndk"/toolchains/llvm/prebuilt/*/ | head -n 1)"
    bin="${prebuilt%/}/bin"
    for abi in "${ABIS[@]}"; do
        read -r name target clang <<<"$abi"
        var="$(tr 'a-z-' 'A-Z_' <<<"$target")"
        [ -x "$bin/${clang}${MIN_SDK}-clang" ] ||
            { echo "android-aar: the NDK at $ndk has no $bin/${clang}${MIN_SDK}-clang" >&2; exit 1; }
        echo "== libstint.so for $name ($target) with $bin/${clang}${MIN_SDK}-clang"
        # ring's C and the final link both go through the NDK's clang for this API level; 16 KB
        # pages, which Google Play requires from Android 15 (the default from NDK r28 on).
        env "CC_${target//-/_}=$bin/${clang}${MIN_SDK}-clang" "AR_${target//-/_}=$bin/llvm-ar" \
            "CARGO_TARGET_${var}_LINKER=$bin/${clang}${MIN_SDK}-clang" \
            "CARGO_TARGET_${var}_RUSTFLAGS=-C link-arg=-Wl,-z,max-page-size=16384" \
            cargo build --release --lib --quiet --target "$target"
        mkdir -p "$stage/jni/$name"
        cp "${CARGO_TARGET_DIR:-target}/$target/release/libstint.so" "$stage/jni/$name/libstint.so"
    done
fi

# classes.jar: the binding as kotlinc builds it for the JVM tests (src/main only).
. bindings/kotlin/lib.sh
kotlin_need
kotlin_build_binding
if jar tf "$STINT_JAR" | grep -v -e '^io/stint/' -e '^META-INF/' | grep -q .; then
    echo "android-aar: $STINT_JAR holds classes outside io.stint:" >&2
    jar tf "$STINT_JAR" | grep -v -e '^io/stint/' -e '^META-INF/' >&2
    exit 1
fi
cp "$STINT_JAR" "$stage/classes.jar"
cp bindings/kotlin/consumer-rules.pro "$stage/proguard.txt"
: >"$stage/R.txt"
cat >"$stage/AndroidManifest.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="io.stint">

    <uses-sdk android:minSdkVersion="$MIN_SDK" />

    <!-- Delivery to the collector. -->
    <uses-permission android:name="android.permission.INTERNET" />

</manifest>
XML

aar="$out/stint-$version.aar"
pom="$out/stint-$version.pom"
rm -f "$aar"
jar --create --no-manifest --file "$aar" -C "$stage" .
cat >"$pom" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.stint</groupId>
  <artifactId>stint-android</artifactId>
  <version>$version</version>
  <packaging>aar</packaging>
  <name>Stint for Android</name>
  <description>Session tracking: the Kotlin binding (io.stint, io.stint.android) and libstint.so</description>
  <licenses>
    <license><name>MIT OR Apache-2.0</name></license>
  </licenses>
  <dependencies>
    <dependency>
      <groupId>net.java.dev.jna</groupId>
      <artifactId>jna</artifactId>
      <version>$JNA_VERSION</version>
      <type>aar</type>
    </dependency>
    <dependency>
      <groupId>org.jetbrains.kotlin</groupId>
      <artifactId>kotlin-stdlib</artifactId>
      <version>$KOTLIN_STDLIB_VERSION</version>
    </dependency>
  </dependencies>
</project>
XML

if [ -n "$repo" ]; then
    dir="$repo/io/stint/stint-android/$version"
    mkdir -p "$dir"
    cp "$aar" "$dir/stint-android-$version.aar"
    cp "$pom" "$dir/stint-android-$version.pom"
    echo "Maven repository: $dir"
fi

echo "$aar"
echo "$pom"
if [ "$native" = 1 ]; then
    echo "native code: $(cd "$stage" && echo jni/*/libstint.so)"
else
    echo "the AAR has no native code (--no-native): the app must add libstint.so for each ABI (jniLibs, docs/android.md)"
fi
