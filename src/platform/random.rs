//! Randomness from the operating system (getrandom: `getrandom(2)` on Linux and Android,
//! `SecRandomCopyBytes`/`getentropy` on Apple platforms, `ProcessPrng` on Windows). There is no
//! fallback: ids made from the time or the pid would collide across a fleet of devices, and a
//! system that cannot give randomness cannot give much else either.

use crate::error::Error;

/// Fills `bytes` from the OS's random source; an error is an `Error::Internal`.
pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(bytes).map_err(|error| {
        Error::internal(format!(
            "the operating system gave no random bytes: {error}"
        ))
    })
}
