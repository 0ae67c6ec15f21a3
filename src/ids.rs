//! Random UUID v4s for sessions, datapoints and the device, from a PRNG seeded once by the OS,
//! so no call pays a system call for randomness.

use crate::error::Error;
use crate::platform::fill_random;

/// xoshiro256**: fast, 256 bits of state, plenty for unique ids when seeded from the OS.
pub struct IdGenerator {
    s: [u64; 4],
}

impl IdGenerator {
    /// A generator seeded from the operating system's random source (no fallback: see
    /// `platform::random`).
    pub fn from_os() -> Result<IdGenerator, Error> {
        let mut seed = [0u8; 32];
        fill_random(&mut seed)?;
        let mut s = [0u64; 4];
        for (word, bytes) in s.iter_mut().zip(seed.chunks_exact(8)) {
            *word = splitmix(u64::from_le_bytes(bytes.try_into().expect("8 bytes")));
        }
        Ok(IdGenerator { s })
    }

    /// A generator that always gives the same ids for the same seed: for tests, which inject it
    /// into the engine as they inject a simulated clock.
    #[cfg(test)]
    pub fn from_seed(seed: u64) -> IdGenerator {
        let mut state = seed;
        IdGenerator {
            s: std::array::from_fn(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                splitmix(state)
            }),
        }
    }

    /// A generator of its own, seeded from this one (a lane's: no shared state per id).
    pub fn seeded(from: &mut IdGenerator) -> IdGenerator {
        IdGenerator {
            s: std::array::from_fn(|_| splitmix(from.next_u64())),
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A fraction in [0, 1), for jitter.
    pub fn next_fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A UUID v4 in its text form.
    pub fn uuid(&mut self) -> String {
        String::from_utf8_lossy(&format_uuid(&self.uuid_raw())).into_owned()
    }

    /// A UUID v4 as its 16 bytes: what the hot path stores (formatting waits for delivery).
    pub fn uuid_raw(&mut self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        bytes
    }
}

/// The canonical text form of a UUID: 36 lowercase hex digits and dashes.
pub fn format_uuid(bytes: &[u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1; // the dash already there
        }
        text[at] = HEX[(byte >> 4) as usize];
        text[at + 1] = HEX[(byte & 0xf) as usize];
        at += 2;
    }
    text
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let mut ids = IdGenerator::from_os().unwrap();
        let a = ids.uuid();
        let b = ids.uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn two_generators_differ() {
        assert_ne!(
            IdGenerator::from_os().unwrap().uuid(),
            IdGenerator::from_os().unwrap().uuid()
        );
    }
}
