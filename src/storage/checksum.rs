//! The checksums of the files Stint keeps (byte map: `format`).
//!
//! - CRC-32C (Castagnoli) frames records. Each event's record (~150 bytes) is checksummed by
//!   the calling thread and again by the worker that moves it into the journal, so it is
//!   computed with the CPU's own instruction: SSE4.2 `crc32` on x86_64, the CRC extension on
//!   ARMv8, found at run time, and bit by bit where neither is there. The `crc32c` crate does
//!   the same, but its tables (16 KiB) do not fit the library's size budget.
//! - CRC-32 (IEEE) frames slot files, and records written before format version 1: crc32fast,
//!   which the library links anyway (gzip's trailer).

use std::sync::OnceLock;

/// CRC-32C of `first` followed by `second`.
#[inline]
pub fn crc32c(first: &[u8], second: &[u8]) -> u32 {
    let parts = [first, second];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: `sse42` needs only SSE4.2, which this CPU has (detected just above).
        return !unsafe { sse42(!0, parts) };
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("crc") {
        // SAFETY: `armv8` needs only the CRC extension, which this CPU has (detected above).
        return !unsafe { armv8(!0, parts) };
    }
    !software(!0, parts)
}

/// CRC-32 (IEEE 802.3, zlib's) of `first` followed by `second`.
pub fn crc32_ieee(first: &[u8], second: &[u8]) -> u32 {
    // `Hasher::new` detects the CPU's features each time: once per record, that was a visible
    // part of recovering 100,000 records. The detected hasher is cloned instead.
    static FRESH: OnceLock<crc32fast::Hasher> = OnceLock::new();
    let mut crc = FRESH.get_or_init(crc32fast::Hasher::new).clone();
    crc.update(first);
    crc.update(second);
    crc.finalize()
}

/// The CRC-32C register over `parts`, 8 bytes per instruction (the tail in 4, 2, 1).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn sse42(crc: u32, parts: [&[u8]; 2]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let mut crc = crc;
    for part in parts {
        let mut words = part.chunks_exact(8);
        let mut wide = u64::from(crc);
        for word in &mut words {
            wide = _mm_crc32_u64(wide, u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        crc = wide as u32;
        let mut tail = words.remainder();
        if let Some((four, rest)) = tail.split_first_chunk::<4>() {
            crc = _mm_crc32_u32(crc, u32::from_le_bytes(*four));
            tail = rest;
        }
        if let Some((two, rest)) = tail.split_first_chunk::<2>() {
            crc = _mm_crc32_u16(crc, u16::from_le_bytes(*two));
            tail = rest;
        }
        if let Some(&byte) = tail.first() {
            crc = _mm_crc32_u8(crc, byte);
        }
    }
    crc
}

/// `sse42` with the ARMv8 CRC instructions.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "crc")]
fn armv8(crc: u32, parts: [&[u8]; 2]) -> u32 {
    use std::arch::aarch64::{__crc32cb, __crc32cd, __crc32ch, __crc32cw};
    let mut crc = crc;
    for part in parts {
        let mut words = part.chunks_exact(8);
        for word in &mut words {
            crc = __crc32cd(crc, u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let mut tail = words.remainder();
        if let Some((four, rest)) = tail.split_first_chunk::<4>() {
            crc = __crc32cw(crc, u32::from_le_bytes(*four));
            tail = rest;
        }
        if let Some((two, rest)) = tail.split_first_chunk::<2>() {
            crc = __crc32ch(crc, u16::from_le_bytes(*two));
            tail = rest;
        }
        if let Some(&byte) = tail.first() {
            crc = __crc32cb(crc, byte);
        }
    }
    crc
}

/// The CRC-32C register over `parts`, a bit at a time: only for CPUs without the instruction
/// (x86_64 before 2008, some ARMv8.0), and the reference the instruction is tested against. A
/// table would be 1 KiB more in the library.
fn software(crc: u32, parts: [&[u8]; 2]) -> u32 {
    let mut crc = crc;
    for &byte in parts.into_iter().flatten() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (CASTAGNOLI & (crc & 1).wrapping_neg());
        }
    }
    crc
}

/// CRC-32C's polynomial, bit-reflected.
const CASTAGNOLI: u32 = 0x82f6_3b78;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_checksums_match_their_standard_check_values() {
        // Each CRC's catalogue check value: the CRC of "123456789".
        assert_eq!(crc32_ieee(b"1234", b"56789"), 0xcbf4_3926);
        assert_eq!(crc32_ieee(b"", b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32c(b"1234", b"56789"), 0xe306_9283);
        assert_eq!(crc32c(b"123456789", b""), 0xe306_9283);
        assert_eq!(!software(!0, [b"12345678", b"9"]), 0xe306_9283);
        // RFC 3720 (iSCSI), B.4: 32 bytes of zeros, and of 0xff.
        assert_eq!(crc32c(&[0; 32], &[]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 16], &[0xff; 16]), 0x62a8_ab43);
    }

    #[test]
    fn the_instruction_agrees_with_the_table_at_every_length_and_split() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 151 + 7) as u8).collect();
        for len in 0..bytes.len() {
            for split in [0, 1, 3, 9, len / 2, len] {
                let (first, second) = bytes[..len].split_at(split.min(len));
                assert_eq!(
                    crc32c(first, second),
                    !software(!0, [first, second]),
                    "len {len}, split {split}"
                );
            }
        }
    }
}
