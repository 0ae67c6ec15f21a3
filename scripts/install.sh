#!/usr/bin/env bash
# Installs libstint for C and C++ hosts under a prefix:
#
#   <prefix>/include/stint.h
#   <prefix>/lib/libstint.so (libstint.dylib on macOS)   SONAME libstint.so (@rpath/libstint.dylib)
#   <prefix>/lib/libstint.a
#   <prefix>/lib/pkgconfig/stint.pc                     pkg-config --cflags --libs stint
#   <prefix>/lib/cmake/Stint/StintConfig.cmake          find_package(Stint CONFIG REQUIRED)
#   <prefix>/lib/cmake/Stint/StintConfigVersion.cmake
#
# CMake: the imported target Stint::stint is the shared library (Stint::stint_static the archive,
# with the system libraries a static link needs). Set Stint_USE_STATIC_LIBS ON before find_package to make
# Stint::stint the archive. An executable linked in CMake's build tree finds the shared library
# through the build RPATH CMake writes; `pkg-config --libs stint` carries -Wl,-rpath for the same.
#
# Usage: scripts/install.sh --prefix DIR [--profile release|debug] [--no-build]
#   --prefix DIR   where to install (created if missing; an absolute path is written into the
#                  pkg-config file, the CMake files find their prefix relative to themselves)
#   --profile P    the Cargo profile to build and install (default: release)
#   --no-build     install what is already in the target directory instead of running cargo
# Environment: CARGO_TARGET_DIR is honoured, as by cargo.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=""
profile=release
build=1

fail() {
    echo "install.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift ;;
        --prefix=*) prefix="${1#--prefix=}" ;;
        --profile) profile="${2:?--profile needs release or debug}"; shift ;;
        --profile=*) profile="${1#--profile=}" ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) fail "unknown argument $1 (see --help)" ;;
    esac
    shift
done
[ -n "$prefix" ] || fail "--prefix DIR is required (see --help)"
case "$profile" in release|debug) ;; *) fail "--profile must be release or debug, not $profile" ;; esac
# pkg-config splits its variables at spaces.
case "$prefix" in *[[:space:]]*) fail "the prefix must not contain spaces (pkg-config cannot express them): $prefix" ;; esac
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
lib_dir="$target_dir/$profile"

case "$(uname -s)" in
    Darwin)
        shared=libstint.dylib soname=@rpath/libstint.dylib
        # What a static link needs besides libc (rustc --print native-static-libs); TLS is
        # Security.framework.
        private_libs=(-framework Security -framework CoreFoundation -liconv -lm)
        ;;
    Linux)
        shared=libstint.so soname=libstint.so
        # TLS is the system's OpenSSL (Linux aarch64 builds take rustls, which needs neither).
        private_libs=(-lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl)
        ;;
    *) fail "$(uname -s) is not supported here (Linux and macOS; on Windows link stint.dll's import library)" ;;
esac

if [ "$build" = 1 ]; then
    flags=(--lib)
    [ "$profile" = release ] && flags+=(--release)
    echo "== cargo build ${flags[*]}"
    (cd "$repo" && cargo build --quiet "${flags[@]}")
fi
for file in "$lib_dir/$shared" "$lib_dir/libstint.a" "$repo/include/stint.h"; do
    [ -f "$file" ] || fail "$file is missing (build it: cargo build --lib$([ "$profile" = release ] && echo " --release"))"
done

# name, version and description from Cargo.toml's [package] section.
package_field() {
    sed -n '/^\[package\]/,/^\[/{
        s/^'"$1"'[[:space:]]*=[[:space:]]*"\(.*\)"[[:space:]]*$/\1/p
    }' "$repo/Cargo.toml" | head -n 1
}
version="$(package_field version)"
description="$(package_field description)"
[ -n "$version" ] || fail "no version in the [package] section of $repo/Cargo.toml"
grep -q "^#define STINT_VERSION_STRING \"$version\"$" "$repo/include/stint.h" ||
    fail "include/stint.h is not the header of version $version (regenerate: STINT_UPDATE_HEADER=1 cargo build)"

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/Stint"
install -m 0644 "$repo/include/stint.h" "$prefix/include/stint.h"
install -m 0755 "$lib_dir/$shared" "$prefix/lib/$shared"
install -m 0644 "$lib_dir/libstint.a" "$prefix/lib/libstint.a"

cat >"$prefix/lib/pkgconfig/stint.pc" <<EOF
# Written by scripts/install.sh. The rpath lets a program linked with --libs run without
# LD_LIBRARY_PATH; a static link: --static --libs, with \${libdir}/libstint.a in place of -lstint.
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: stint
Description: ${description:-Session-tracking SDK with a C ABI}
Version: $version
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lstint
Libs.private: ${private_libs[*]}
Cflags: -I\${includedir}
EOF

# CMake wants the private libraries as a list of link items: -framework X stays one item.
cmake_private_libs=""
for ((i = 0; i < ${#private_libs[@]}; i++)); do
    item="${private_libs[$i]}"
    if [ "$item" = -framework ]; then
        i=$((i + 1))
        item="-framework ${private_libs[$i]}"
    else
        item="${item#-l}"
    fi
    cmake_private_libs+="${cmake_private_libs:+;}$item"
done

cat >"$prefix/lib/cmake/Stint/StintConfig.cmake" <<EOF
# Written by scripts/install.sh: libstint $version.
#   find_package(Stint CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE Stint::stint)
# Stint::stint is the shared library; Stint::stint_static the archive with what a static link
# needs. Stint_USE_STATIC_LIBS ON (before find_package) makes Stint::stint the archive.
# Executables in the build tree find the shared library through CMake's build RPATH; for an
# installed one, set CMAKE_INSTALL_RPATH_USE_LINK_PATH ON (or install libstint beside it).

get_filename_component(_stint_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(Stint_VERSION "$version")
set(Stint_INCLUDE_DIRS "\${_stint_prefix}/include")

if(NOT TARGET Stint::stint_static)
  add_library(Stint::stint_static STATIC IMPORTED)
  set_target_properties(Stint::stint_static PROPERTIES
    IMPORTED_LOCATION "\${_stint_prefix}/lib/libstint.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${_stint_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$cmake_private_libs")
endif()
if(NOT TARGET Stint::stint)
  if(Stint_USE_STATIC_LIBS)
    add_library(Stint::stint STATIC IMPORTED)
    set_target_properties(Stint::stint PROPERTIES
      IMPORTED_LOCATION "\${_stint_prefix}/lib/libstint.a"
      IMPORTED_LINK_INTERFACE_LANGUAGES "C"
      INTERFACE_LINK_LIBRARIES "$cmake_private_libs")
  else()
    add_library(Stint::stint SHARED IMPORTED)
    set_target_properties(Stint::stint PROPERTIES
      IMPORTED_LOCATION "\${_stint_prefix}/lib/$shared"
      IMPORTED_SONAME "$soname")
  endif()
  set_target_properties(Stint::stint PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "\${_stint_prefix}/include")
endif()
unset(_stint_prefix)
EOF

# 0.x releases are compatible within a minor version, 1.0 and later within a major one; the
# library is 64-bit only where it was built so.
cat >"$prefix/lib/cmake/Stint/StintConfigVersion.cmake" <<EOF
# Written by scripts/install.sh.
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(PACKAGE_FIND_VERSION_MAJOR STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$(echo "$version" | cut -d. -f2)")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$(echo "$version" | cut -d. -f1)")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(NOT CMAKE_SIZEOF_VOID_P STREQUAL "" AND NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
EOF

echo "installed libstint $version ($profile) under $prefix:"
(cd "$prefix" && find include/stint.h lib/$shared lib/libstint.a lib/pkgconfig/stint.pc lib/cmake/Stint -type f | sort | sed 's/^/  /')
