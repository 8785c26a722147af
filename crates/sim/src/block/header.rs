//! The 80-byte Bitcoin block header: its fields, its double-SHA-256 hash and its proof of work.
//!
//! Hashes are kept in the header's own (wire) byte order and shown reversed, as block explorers
//! print them. A header proves its work when its hash, read as a 256-bit big-endian number, is
//! at most the target that its compact `bits` field encodes.

use sha2::{Digest, Sha256};

use super::BlockError;

/// The length of a serialized header.
pub const HEADER_LEN: usize = 80;

/// A block header's six fields. Hashes are in wire byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub prev_hash: [u8; 32],
    pub merkle_root: [u8; 32],
    pub time: u32,
    pub bits: u32,
    pub nonce: u32,
}

impl Header {
    /// Reads a header from its 80 wire bytes.
    pub fn from_bytes(bytes: &[u8; HEADER_LEN]) -> Self {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut prev_hash = [0; 32];
        prev_hash.copy_from_slice(&bytes[4..36]);
        let mut merkle_root = [0; 32];
        merkle_root.copy_from_slice(&bytes[36..68]);
        Self {
            version: word(0),
            prev_hash,
            merkle_root,
            time: word(68),
            bits: word(72),
            nonce: word(76),
        }
    }

    /// Reads a header from 160 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, BlockError> {
        let bytes = decode_hex(hex, "header")?;
        let bytes: [u8; HEADER_LEN] = bytes.try_into().map_err(|v: Vec<u8>| {
            BlockError::field(
                "header",
                format!("expected {HEADER_LEN} bytes, got {}", v.len()),
            )
        })?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The header's 80 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..36].copy_from_slice(&self.prev_hash);
        out[36..68].copy_from_slice(&self.merkle_root);
        out[68..72].copy_from_slice(&self.time.to_le_bytes());
        out[72..76].copy_from_slice(&self.bits.to_le_bytes());
        out[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        out
    }

    /// The double SHA-256 of the header, in wire byte order.
    pub fn hash(&self) -> [u8; 32] {
        let once = Sha256::digest(self.to_bytes());
        Sha256::digest(once).into()
    }

    /// The hash as block explorers print it.
    pub fn hash_hex(&self) -> String {
        display_hex(&self.hash())
    }

    /// Checks that the hash is at most the target `bits` encodes.
    pub fn check_proof_of_work(&self) -> Result<(), BlockError> {
        let target = target_from_bits(self.bits)?;
        let mut hash = self.hash();
        hash.reverse();
        if hash <= target {
            Ok(())
        } else {
            Err(BlockError::ProofOfWork {
                hash: display_hex(&self.hash()),
                bits: self.bits,
            })
        }
    }

    /// The difficulty: the genesis target over this header's target.
    pub fn difficulty(&self) -> f64 {
        difficulty_from_bits(self.bits)
    }
}

/// Expands compact `bits` into a 256-bit big-endian target. Refuses negative, zero and
/// overflowing encodings, which no valid block carries.
pub fn target_from_bits(bits: u32) -> Result<[u8; 32], BlockError> {
    let invalid =
        || BlockError::field("bits", format!("{bits:08x} does not encode a valid target"));
    let exponent = (bits >> 24) as usize;
    let mantissa = bits & 0x007F_FFFF;
    if bits & 0x0080_0000 != 0 || mantissa == 0 {
        return Err(invalid());
    }

    // The mantissa's three bytes land at byte `32 - exponent` of the big-endian number.
    let mut target = [0u8; 32];
    for (i, byte) in mantissa.to_be_bytes()[1..].iter().enumerate() {
        let at = 32 + i as isize - exponent as isize;
        match at {
            0..=31 => target[at as usize] = *byte,
            _ if *byte == 0 || at > 31 => {}
            _ => return Err(invalid()),
        }
    }
    if target == [0; 32] {
        return Err(invalid());
    }
    Ok(target)
}

/// The difficulty that compact `bits` stands for, as a float for display.
pub fn difficulty_from_bits(bits: u32) -> f64 {
    let exponent = (bits >> 24) as i32;
    let mantissa = f64::from(bits & 0x007F_FFFF);
    if mantissa == 0.0 {
        return 0.0;
    }
    f64::from(0xFFFF) / mantissa * 256f64.powi(0x1D - exponent)
}

/// Hex of `bytes` reversed: how hashes are shown.
pub fn display_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().rev().map(|b| format!("{b:02x}")).collect()
}

/// Parses a 64-digit displayed hash into wire byte order.
pub fn parse_display_hash(hex: &str, field: &'static str) -> Result<[u8; 32], BlockError> {
    let bytes = decode_hex(hex, field)?;
    let mut out: [u8; 32] = bytes
        .try_into()
        .map_err(|_| BlockError::field(field, "expected 64 hex digits"))?;
    out.reverse();
    Ok(out)
}

/// Decodes an even-length hex string.
pub fn decode_hex(hex: &str, field: &'static str) -> Result<Vec<u8>, BlockError> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    if hex.len() % 2 != 0 {
        return Err(BlockError::field(field, "odd number of hex digits"));
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(BlockError::field(field, "not hex")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000\
        000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49\
        ffff001d1dac2b7c";

    #[test]
    fn genesis_header_hashes_to_the_known_hash() {
        let header = Header::from_hex(GENESIS).expect("genesis parses");
        assert_eq!(
            header.hash_hex(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
    }

    #[test]
    fn good_header_passes_proof_of_work() {
        let header = Header::from_hex(GENESIS).expect("genesis parses");
        assert!(header.check_proof_of_work().is_ok());
    }

    #[test]
    fn tampered_header_fails_proof_of_work() {
        let mut header = Header::from_hex(GENESIS).expect("genesis parses");
        header.nonce ^= 1;
        let err = header
            .check_proof_of_work()
            .expect_err("a changed nonce breaks the work");
        assert!(matches!(err, BlockError::ProofOfWork { .. }));
    }

    #[test]
    fn header_round_trips_through_bytes() {
        let header = Header::from_hex(GENESIS).expect("genesis parses");
        assert_eq!(Header::from_bytes(&header.to_bytes()), header);
    }

    #[test]
    fn compact_bits_expand_to_the_genesis_target() {
        let target = target_from_bits(0x1D00_FFFF).expect("valid bits");
        assert_eq!(&target[..6], &[0, 0, 0, 0, 0xFF, 0xFF]);
        assert!(target[6..].iter().all(|&b| b == 0));
        assert_eq!(difficulty_from_bits(0x1D00_FFFF), 1.0);
    }

    #[test]
    fn negative_zero_and_overflowing_bits_are_refused() {
        assert!(target_from_bits(0x1D80_FFFF).is_err());
        assert!(target_from_bits(0x1D00_0000).is_err());
        assert!(target_from_bits(0x2300_FFFF).is_err());
    }
}
