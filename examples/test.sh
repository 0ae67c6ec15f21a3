#!/usr/bin/env bash
# Builds and runs the C/C++ examples: the header alone as C99 and as C++, the Makefile build
# (through pkg-config, shared and static), the CMake build (with ctest), each program with a
# fresh data directory. Exits non-zero if anything fails; runs every step regardless.
#
#   examples/test.sh            (from anywhere; needs cargo, cc, c++, make, cmake, pkg-config)
#
# Environment: PROFILE (Cargo profile directory, default debug; only debug is built here),
# CARGO_TARGET_DIR, CC, CXX, STINT_SKIP_CARGO_BUILD=1 to use the library as it is,
# KEEP_TEMP=1 to keep the temporary directory.
set -uo pipefail

examples_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$examples_dir/.." && pwd)
profile=${PROFILE:-debug}
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
lib_dir=$target_dir/$profile
export CC=${CC:-cc} CXX=${CXX:-c++}

work=$(mktemp -d "${TMPDIR:-/tmp}/stint-examples.XXXXXX") || exit 1
cleanup() {
    if [ "${KEEP_TEMP:-0}" = 1 ]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
# The programs make their own data directories with mkdtemp() under $TMPDIR when given none.
export TMPDIR=$work
unset LD_LIBRARY_PATH DYLD_LIBRARY_PATH

passed=()
failed=()

# Runs "$@" with errexit in a subshell (not in an `if`, where bash would ignore errexit).
step() {
    local name=$1
    shift
    echo
    echo "=== $name"
    (
        set -e
        "$@"
    )
    local status=$?
    if [ "$status" -eq 0 ]; then
        passed+=("$name")
    else
        echo "--- FAILED: $name (exit $status)"
        failed+=("$name")
    fi
    return 0
}

fresh_data_dir() {
    mktemp -d "$work/data.XXXXXX"
}

build_library() {
    if [ "${STINT_SKIP_CARGO_BUILD:-0}" = 1 ]; then
        echo "STINT_SKIP_CARGO_BUILD=1: using the library as it is"
    elif [ "$profile" = debug ]; then
        (cd "$root" && cargo build)
    else
        echo "PROFILE=$profile: build it yourself (cargo build --profile ...); not rebuilding"
    fi
    for file in "$root/include/stint.h" "$lib_dir/libstint.a"; do
        [ -f "$file" ] || { echo "missing $file"; return 1; }
    done
    [ -f "$lib_dir/libstint.so" ] || [ -f "$lib_dir/libstint.dylib" ] ||
        { echo "missing the shared library in $lib_dir"; return 1; }
}

header_is_self_contained() {
    local warnings=(-Wall -Wextra -Werror -pedantic)
    "$CC" -std=c99 "${warnings[@]}" -fsyntax-only -x c "$root/include/stint.h"
    "$CXX" -std=c++11 "${warnings[@]}" -fsyntax-only -x c++ "$root/include/stint.h"
    echo "include/stint.h compiles alone as C99 and as C++11"
}

generate_pkgconfig() {
    local pc
    pc=$(CARGO_TARGET_DIR=$target_dir sh "$examples_dir/gen-pkgconfig.sh" "$profile")
    cat "$pc"
    PKG_CONFIG_PATH=$lib_dir pkg-config --exists --print-errors stint
    echo "pkg-config --cflags --libs stint: $(PKG_CONFIG_PATH=$lib_dir pkg-config --cflags --libs stint)"
    local version
    version=$(PKG_CONFIG_PATH=$lib_dir pkg-config --modversion stint)
    grep -q "^#define STINT_VERSION_STRING \"$version\"$" "$root/include/stint.h" ||
        { echo "stint.pc says $version, the header says otherwise"; return 1; }
}

make_build() {
    make -C "$examples_dir" PROFILE="$profile" CARGO_TARGET_DIR="$target_dir" \
        BUILD_DIR="$work/make" all
}

run_header_checks() {
    "$work/make/header_c_check"
    "$work/make/header_cpp_check"
}

run_quickstart() {
    local data
    data=$(fresh_data_dir)
    "$work/make/quickstart" "$data"
    [ -n "$(ls -A "$data")" ] || { echo "quickstart left nothing in $data"; return 1; }
}

run_quickstart_static() {
    if command -v readelf >/dev/null 2>&1; then
        if readelf -d "$work/make/quickstart-static" | grep -q 'NEEDED.*libstint'; then
            echo "quickstart-static still needs the shared libstint"
            return 1
        fi
    fi
    "$work/make/quickstart-static" "$(fresh_data_dir)"
}

run_multithreaded() {
    "$work/make/multithreaded" "$(fresh_data_dir)" 4 2000
    "$work/make/multithreaded" "$(fresh_data_dir)" 8 500
}

cmake_build_and_run() {
    local build=$work/cmake
    cmake -S "$examples_dir" -B "$build" -DSTINT_PROFILE="$profile"
    cmake --build "$build" --parallel 2
    (cd "$build" && ctest --output-on-failure)
}

step "build libstint (cargo build)" build_library
if [ ${#failed[@]} -gt 0 ]; then
    echo "cannot go on without the library"
    exit 1
fi
step "header is self-contained (C99, C++11)" header_is_self_contained
step "generate stint.pc" generate_pkgconfig
step "make: build the examples via pkg-config" make_build
step "run the C and C++ header checks" run_header_checks
step "run quickstart (store only)" run_quickstart
step "run quickstart linked statically against libstint.a" run_quickstart_static
step "run multithreaded" run_multithreaded
step "cmake: build and ctest" cmake_build_and_run

echo
for name in ${failed[@]+"${failed[@]}"}; do
    echo "FAILED: $name"
done
echo "examples: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
