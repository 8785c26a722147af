//! Bitcoin blocks: the record a creature is born from, where records come from, and how they
//! are checked.
//!
//! A [`Block`] carries the fields of the original API's `blockinfo` answer. Records come from
//! the embedded set of real main-chain headers ([`BlockSet::embedded`]), from a JSON file in the
//! `blockinfo` shape ([`record`]), or from an HTTP API (the `fetch` module). Whenever a record
//! carries a full header (version, previous block hash, merkle root, time, bits and nonce), the
//! header is rebuilt and its hash and proof of work are checked before the record is accepted.

mod embedded;
mod header;
pub mod record;

use serde::{Deserialize, Serialize};

pub use embedded::BlockSet;
pub use header::{difficulty_from_bits, target_from_bits, Header};

/// One block, as the `blockinfo` API describes it. Fields that a source may not know are
/// optional; `height`, `hash` and `nonce` are always present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub height: u64,
    pub hash: String,
    pub nonce: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merkleroot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previousblockhash: Option<String>,
    /// The compact target as eight hex digits, as Bitcoin Core prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<String>,
}

impl Block {
    /// The record of a checked header at `height`.
    pub fn from_header(height: u64, header: &Header) -> Self {
        Self {
            height,
            hash: header.hash_hex(),
            nonce: header.nonce,
            confirmations: None,
            time: Some(header.time),
            merkleroot: Some(header::display_hex(&header.merkle_root)),
            difficulty: Some(header.difficulty()),
            size: None,
            weight: None,
            version: Some(header.version),
            previousblockhash: Some(header::display_hex(&header.prev_hash)),
            bits: Some(format!("{:08x}", header.bits)),
        }
    }

    /// Confirmations with the chain's tip at `tip`: `tip - height + 1`, or 0 above the tip.
    pub fn confirmations_at(&self, tip: u64) -> u64 {
        (tip + 1).saturating_sub(self.height)
    }

    /// The header this record describes, if it carries every header field.
    pub fn header(&self) -> Result<Option<Header>, BlockError> {
        let (Some(version), Some(prev), Some(merkle), Some(time), Some(bits)) = (
            self.version,
            self.previousblockhash.as_deref(),
            self.merkleroot.as_deref(),
            self.time,
            self.bits.as_deref(),
        ) else {
            return Ok(None);
        };
        let bits = u32::from_str_radix(bits, 16)
            .ok()
            .filter(|_| bits.len() == 8)
            .ok_or_else(|| BlockError::field("bits", "expected eight hex digits"))?;
        Ok(Some(Header {
            version,
            prev_hash: header::parse_display_hash(prev, "previousblockhash")?,
            merkle_root: header::parse_display_hash(merkle, "merkleroot")?,
            time,
            bits,
            nonce: self.nonce,
        }))
    }

    /// Checks the record: the hash is well formed and, where the record carries a full header,
    /// the rebuilt header hashes to `hash` and proves its work. The original API's shape has
    /// no `bits` or `previousblockhash`; a record with either of them must carry the whole
    /// header.
    pub fn verify(&self) -> Result<(), BlockError> {
        header::parse_display_hash(&self.hash, "hash")?;

        let Some(header) = self.header()? else {
            if self.bits.is_some() || self.previousblockhash.is_some() {
                return Err(BlockError::IncompleteHeader {
                    height: self.height,
                });
            }
            return Ok(());
        };

        let rebuilt = header.hash_hex();
        if rebuilt != self.hash.to_ascii_lowercase() {
            return Err(BlockError::HashMismatch {
                height: self.height,
                claimed: self.hash.clone(),
                rebuilt,
            });
        }
        header.check_proof_of_work()
    }
}

/// Why a block record was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlockError {
    /// A field is missing or malformed.
    #[error("field `{field}`: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
    /// The record is not JSON, or not an object or array of objects.
    #[error("not a blockinfo record: {0}")]
    Json(String),
    /// Some header fields are present but not all six.
    #[error("block {height}: header fields are incomplete (need version, previousblockhash, merkleroot, time, bits and nonce)")]
    IncompleteHeader { height: u64 },
    /// The rebuilt header does not hash to the record's `hash`.
    #[error(
        "block {height}: hash check failed: header hashes to {rebuilt}, record says {claimed}"
    )]
    HashMismatch {
        height: u64,
        claimed: String,
        rebuilt: String,
    },
    /// The header's hash is above its target.
    #[error("proof-of-work check failed: hash {hash} is above the target of bits {bits:08x}")]
    ProofOfWork { hash: String, bits: u32 },
    /// No block at this height in the set.
    #[error("unknown block height {0}")]
    UnknownHeight(u64),
}

impl BlockError {
    pub(crate) fn field(field: &'static str, problem: impl Into<String>) -> Self {
        BlockError::Field {
            field,
            problem: problem.into(),
        }
    }
}
