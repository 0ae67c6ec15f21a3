# Sourced by scripts/cross.sh and scripts/xcframework.sh: how cargo builds for an Apple target.
#
#   apple_cargo TARGET SUBCOMMAND ARGS…   # e.g. apple_cargo aarch64-apple-ios check -q --lib
#
# Rust's std for aarch64-apple-ios-sim may be missing from the Rust distribution server (rustup
# answers 404 for it here): then the nightly toolchain builds std from source for it
# (-Zbuild-std, nightly's rust-src; scripts/install-deps.sh adds it). Every other target needs its
# rustup target. Fails with a message when neither is there.
apple_cargo() {
  local target=$1 subcommand=$2
  shift 2
  if rustup target list --installed | grep -qx "$target"; then
    cargo "$subcommand" --target "$target" "$@"
  elif [ "$target" = aarch64-apple-ios-sim ]; then
    if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
      echo "$target: neither its rustup target nor nightly's rust-src (to build std) is installed" >&2
      return 1
    fi
    echo "$target: no rustup target here; nightly, std built from source" >&2
    cargo +nightly "$subcommand" -Zbuild-std=std,panic_unwind --target "$target" "$@"
  else
    echo "the Rust target $target is missing (rustup target add $target; scripts/install-deps.sh adds it)" >&2
    return 1
  fi
}
