#!/usr/bin/env bash
# Tests scripts/android-aar.sh here, where there is no NDK: it must refuse without --no-native,
# saying why; with it, the AAR and POM must have the layout, manifest, classes and coordinates
# of issue 18 (checked by src/aarCheck/java/AarCheck.java), and a --repo its Maven layout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
kotlin_need
cd "$ROOT"
version="$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
no_ndk=(env -u ANDROID_NDK_HOME -u ANDROID_NDK_ROOT -u ANDROID_HOME -u ANDROID_SDK_ROOT)
log="$(mktemp)"
repo="$(mktemp -d)"
trap 'rm -rf "$log" "$repo"' EXIT

echo "== without an NDK, the script refuses"
if "${no_ndk[@]}" scripts/android-aar.sh >"$log" 2>&1; then
    cat "$log"; echo "aar-test: android-aar.sh succeeded without an NDK" >&2; exit 1
fi
grep -q "no Android NDK found" "$log" && grep -q -- "--no-native" "$log" ||
    { cat "$log"; echo "aar-test: the refusal does not say why, or how to go on" >&2; exit 1; }

echo "== --no-native"
"${no_ndk[@]}" scripts/android-aar.sh --no-native --repo "$repo" | tee "$log"
grep -q "the AAR has no native code" "$log" || { echo "aar-test: --no-native did not say the AAR has no native code" >&2; exit 1; }

aar="target/android/stint-$version.aar"
pom="target/android/stint-$version.pom"
java "$KOTLIN_DIR/src/aarCheck/java/AarCheck.java" "$aar" "$pom" "$version" 0 "$STUBS:$JNA:$STDLIB"
# No stub class, seen by the JDK's own tools too.
(cd "$repo" && jar xf "$ROOT/$aar" classes.jar)
if jar tf "$repo/classes.jar" | grep -E '^(android|io/stint/stubs)/'; then
    echo "aar-test: classes.jar holds test-only stubs" >&2; exit 1
fi
javap -cp "$repo/classes.jar" io.stint.android.StintActivityLifecycleCallbacks |
    grep -q 'implements android.app.Application\$ActivityLifecycleCallbacks' ||
    { echo "aar-test: javap: StintActivityLifecycleCallbacks does not implement ActivityLifecycleCallbacks" >&2; exit 1; }
for ext in aar pom; do
    cmp "target/android/stint-$version.$ext" "$repo/io/stint/stint-android/$version/stint-android-$version.$ext" ||
        { echo "aar-test: the Maven repository's .$ext differs" >&2; exit 1; }
done
echo "aar-test: OK"
