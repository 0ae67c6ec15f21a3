//! Generates the C header from src/ffi with cbindgen. It goes to OUT_DIR; a test compares it
//! with the committed include/stint.h, and `STINT_UPDATE_HEADER=1 cargo build` rewrites that.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=STINT_UPDATE_HEADER");
    // A SONAME (install name on Apple) so programs linked by full path find the library at run
    // time by name, as hosts and packagers expect.
    match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("linux") | Ok("android") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libstint.so")
        }
        Ok("macos") | Ok("ios") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libstint.dylib")
        }
        _ => {}
    }
    // Identical code folding: generic code monomorphised into byte-identical copies is kept once
    // (-12.8 KB stripped). Only where the linker is known to be rust-lld, x86_64 Linux's default
    // since Rust 1.90; GNU ld (older toolchains, the cross builds) has no such flag. Rust promises
    // no unique function addresses, so folding is safe for it.
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && env::var("PROFILE").as_deref() == Ok("release")
        && rustc_minor().is_some_and(|minor| minor >= 90)
    {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--icf=all");
    }
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("stint.h");
    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let version =
        |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets it");
    config.after_includes = Some(format!(
        "\n#define STINT_VERSION_MAJOR {}\n#define STINT_VERSION_MINOR {}\n#define STINT_VERSION_PATCH {}\n#define STINT_VERSION_STRING \"{}\"",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        env::var("CARGO_PKG_VERSION").expect("cargo sets it"),
    ));
    // Only the C API's files: the crate's internal constants stay out of the header.
    cbindgen::Builder::new()
        .with_src(crate_dir.join("src/ffi/types.rs"))
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
    if env::var_os("STINT_UPDATE_HEADER").is_some() {
        std::fs::copy(&out, crate_dir.join("include/stint.h")).expect("write include/stint.h");
    }
}

/// The minor version of the compiler building us (`rustc 1.95.0 (...)` gives 95).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var_os("RUSTC")?;
    let output = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}
