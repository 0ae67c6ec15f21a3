#!/usr/bin/env bash
# Builds and runs the C/C++ examples as a host would: libstint installed into a prefix by
# scripts/install.sh, the header alone as C99 and as C++, the Makefile build (through the
# installed pkg-config file, shared and static), and a copy of examples/ outside the repository
# built with CMake's find_package(Stint) (with ctest); each program with a fresh data directory
# and without LD_LIBRARY_PATH. Exits non-zero if anything fails; runs every step regardless.
#
#   examples/test.sh            (from anywhere; needs cargo, cc, c++, make, cmake, pkg-config)
#
# Environment: PROFILE (release or debug, default debug; only debug is built here),
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

prefix=$work/prefix

install_into_prefix() {
    CARGO_TARGET_DIR=$target_dir "$root/scripts/install.sh" --prefix "$prefix" --profile "$profile" --no-build
    local file
    for file in include/stint.h lib/libstint.so lib/libstint.a lib/pkgconfig/stint.pc \
        lib/cmake/Stint/StintConfig.cmake lib/cmake/Stint/StintConfigVersion.cmake; do
        [ -f "$prefix/$file" ] || { echo "the prefix lacks $file"; return 1; }
    done
    cmp "$root/include/stint.h" "$prefix/include/stint.h"
    # Programs record the SONAME, never the path they were linked with.
    readelf -d "$prefix/lib/libstint.so" | grep >/dev/null 'SONAME.*\[libstint.so\]' ||
        { echo "the installed libstint.so has no SONAME libstint.so"; return 1; }
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
    pkg-config --exists --print-errors stint
    echo "pkg-config --cflags --libs stint: $(pkg-config --cflags --libs stint)"
    pkg-config --libs stint | grep -q -- "-Wl,-rpath,$prefix/lib" ||
        { echo "stint.pc does not carry the rpath"; return 1; }
    local version
    version=$(pkg-config --modversion stint)
    grep -q "^#define STINT_VERSION_STRING \"$version\"$" "$root/include/stint.h" ||
        { echo "stint.pc says $version, the header says otherwise"; return 1; }
    # The version file: 0.x is compatible within its minor version only.
    local major minor
    major=${version%%.*} minor=${version#*.} minor=${minor%%.*}
    [ "$(version_compatible "$major.$minor")" = TRUE ] || { echo "$major.$minor refused"; return 1; }
    [ "$(version_compatible "$major.$((minor + 1))")" = FALSE ] || { echo "$major.$((minor + 1)) accepted"; return 1; }
    [ "$(version_compatible "$((major + 1)).0")" = FALSE ] || { echo "$((major + 1)).0 accepted"; return 1; }
    echo "StintConfigVersion.cmake: $major.$minor accepted, $major.$((minor + 1)) and $((major + 1)).0 refused"
}

# Whether StintConfigVersion.cmake accepts find_package(Stint <version>): prints TRUE or FALSE.
version_compatible() {
    local wanted=$1 script=$work/version-check.cmake
    cat >"$script" <<EOF
set(PACKAGE_FIND_VERSION "$wanted")
string(REPLACE "." ";" _parts "$wanted")
list(GET _parts 0 PACKAGE_FIND_VERSION_MAJOR)
list(GET _parts 1 PACKAGE_FIND_VERSION_MINOR)
set(CMAKE_SIZEOF_VOID_P 8)
include("$prefix/lib/cmake/Stint/StintConfigVersion.cmake")
if(PACKAGE_VERSION_COMPATIBLE)
  message("TRUE")
else()
  message("FALSE")
endif()
EOF
    cmake -P "$script" 2>&1
}

make_build() {
    make -C "$examples_dir" PROFILE="$profile" CARGO_TARGET_DIR="$target_dir" \
        STINT_PREFIX="$prefix" BUILD_DIR="$work/make" all
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
        if readelf -d "$work/make/quickstart-static" | grep >/dev/null 'NEEDED.*libstint'; then
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

# A project outside the repository: a copy of the examples' sources and CMakeLists.txt, which
# finds libstint only through find_package(Stint) in the prefix.
cmake_find_package_build_and_run() {
    local source=$work/consumer build=$work/consumer-build
    mkdir -p "$source"
    cp "$examples_dir/CMakeLists.txt" "$examples_dir"/*.c "$examples_dir"/*.cpp "$source/"
    cmake -S "$source" -B "$build" -DCMAKE_PREFIX_PATH="$prefix"
    cmake --build "$build" --parallel 2
    (cd "$build" && ctest --output-on-failure)
    # The shared library by name, found through the build tree's RPATH (LD_LIBRARY_PATH is unset).
    readelf -d "$build/quickstart" | grep >/dev/null 'NEEDED.*\[libstint.so\]' ||
        { echo "quickstart does not need libstint.so by name"; return 1; }
    readelf -d "$build/quickstart" | grep -E 'R(UN)?PATH' | grep >/dev/null "$prefix/lib" ||
        { echo "quickstart has no rpath to $prefix/lib"; return 1; }
    if readelf -d "$build/quickstart_static" | grep >/dev/null 'NEEDED.*libstint'; then
        echo "quickstart_static (Stint::stint_static) still needs the shared libstint"
        return 1
    fi
    "$build/quickstart" "$(fresh_data_dir)"
    # Stint_USE_STATIC_LIBS makes Stint::stint itself the archive.
    local static_build=$work/consumer-build-static
    cmake -S "$source" -B "$static_build" -DCMAKE_PREFIX_PATH="$prefix" -DStint_USE_STATIC_LIBS=ON >/dev/null
    cmake --build "$static_build" --target quickstart >/dev/null
    if readelf -d "$static_build/quickstart" | grep >/dev/null 'NEEDED.*libstint'; then
        echo "with Stint_USE_STATIC_LIBS, quickstart still needs the shared libstint"
        return 1
    fi
    "$static_build/quickstart" "$(fresh_data_dir)" >/dev/null
    echo "Stint_USE_STATIC_LIBS=ON: Stint::stint linked the archive"
}

step "build libstint (cargo build)" build_library
if [ ${#failed[@]} -gt 0 ]; then
    echo "cannot go on without the library"
    exit 1
fi
step "header is self-contained (C99, C++11)" header_is_self_contained
step "scripts/install.sh into a prefix (header, libraries, pkg-config, CMake package)" install_into_prefix
step "make: build the examples via the installed stint.pc" make_build
step "run the C and C++ header checks" run_header_checks
step "run quickstart (store only)" run_quickstart
step "run quickstart linked statically against libstint.a" run_quickstart_static
step "run multithreaded" run_multithreaded
step "cmake: a project outside the repository with find_package(Stint); build, ctest" cmake_find_package_build_and_run

echo
for name in ${failed[@]+"${failed[@]}"}; do
    echo "FAILED: $name"
done
echo "examples: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
