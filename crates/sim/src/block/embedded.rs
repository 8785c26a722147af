//! The block set a scene draws from: by default the embedded real main-chain headers, each
//! checked (hash and proof of work) when loaded, and the tip height confirmations count from.

use std::sync::OnceLock;

use super::{Block, BlockError, Header};

/// The embedded headers: height, hash and the raw 80-byte header in hex, one block a line.
const MAINNET_HEADERS: &str = include_str!("../../data/mainnet-headers.csv");

/// Blocks known to the program, ordered by height, with the chain tip for confirmations.
#[derive(Clone, Debug)]
pub struct BlockSet {
    blocks: Vec<Block>,
    tip: u64,
}

impl BlockSet {
    /// The embedded main-chain headers, checked once per process. The tip is the newest.
    pub fn embedded() -> Result<Self, BlockError> {
        static EMBEDDED: OnceLock<Result<Vec<Block>, BlockError>> = OnceLock::new();
        let blocks = EMBEDDED
            .get_or_init(|| parse_csv(MAINNET_HEADERS))
            .clone()?;
        Ok(Self::new(blocks))
    }

    /// A set of checked records; the tip is the highest of them.
    pub fn new(mut blocks: Vec<Block>) -> Self {
        blocks.sort_by_key(|b| b.height);
        let tip = blocks.last().map_or(0, |b| b.height);
        Self { blocks, tip }
    }

    /// Sets the tip height that confirmations count from.
    pub fn with_tip(mut self, tip: u64) -> Self {
        self.tip = tip;
        self
    }

    /// The tip height.
    pub fn tip(&self) -> u64 {
        self.tip
    }

    /// All blocks, oldest first.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The block at `height`.
    pub fn get(&self, height: u64) -> Result<&Block, BlockError> {
        self.blocks
            .binary_search_by_key(&height, |b| b.height)
            .map(|i| &self.blocks[i])
            .map_err(|_| BlockError::UnknownHeight(height))
    }

    /// The newest `n` blocks, oldest of them first; fewer if the set is smaller.
    pub fn newest(&self, n: usize) -> &[Block] {
        &self.blocks[self.blocks.len().saturating_sub(n)..]
    }

    /// Confirmations of `block` against this set's tip.
    pub fn confirmations(&self, block: &Block) -> u64 {
        block.confirmations_at(self.tip)
    }
}

/// Reads `height,hash,header` lines (after a title line) and checks every header.
fn parse_csv(text: &str) -> Result<Vec<Block>, BlockError> {
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Result<Block, BlockError> {
    let mut columns = line.trim().split(',');
    let (Some(height), Some(hash), Some(header), None) = (
        columns.next(),
        columns.next(),
        columns.next(),
        columns.next(),
    ) else {
        return Err(BlockError::Json(format!(
            "expected height,hash,header in {line:?}"
        )));
    };
    let height = height
        .parse()
        .map_err(|_| BlockError::field("height", format!("{height:?} is not a height")))?;
    let header = Header::from_hex(header)?;

    let block = Block::from_header(height, &header);
    if block.hash != hash {
        return Err(BlockError::HashMismatch {
            height,
            claimed: hash.to_owned(),
            rebuilt: block.hash,
        });
    }
    header.check_proof_of_work()?;
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_header_passes_hash_and_proof_of_work() {
        let set = BlockSet::embedded().expect("embedded headers are valid");
        assert_eq!(set.blocks().len(), 437);
        assert_eq!(set.blocks()[0].height, 0);
        assert_eq!(set.tip(), 878_976);
    }

    #[test]
    fn confirmations_count_from_the_settable_tip() {
        let set = BlockSet::embedded().expect("embedded headers are valid");
        let newest = set.get(878_976).expect("newest block is embedded");
        assert_eq!(set.confirmations(newest), 1);
        let set = set.with_tip(879_975);
        assert_eq!(
            set.confirmations(set.get(878_976).expect("still there")),
            1000
        );
        assert_eq!(set.get(2016).expect("embedded").confirmations_at(100), 0);
    }

    #[test]
    fn unknown_height_is_an_error() {
        let set = BlockSet::embedded().expect("embedded headers are valid");
        assert_eq!(
            set.get(1).expect_err("not embedded"),
            BlockError::UnknownHeight(1)
        );
    }

    #[test]
    fn tampered_embedded_line_fails_the_hash_check() {
        let line = MAINNET_HEADERS.lines().nth(1).expect("genesis line");
        let tampered = line.replacen("1dac2b7c", "1dac2b7d", 1);
        assert!(matches!(
            parse_line(&tampered),
            Err(BlockError::HashMismatch { .. })
        ));
    }

    #[test]
    fn header_above_its_target_fails_proof_of_work() {
        // Genesis with a target a thousand times harder: its own hash no longer qualifies.
        let set = BlockSet::embedded().expect("embedded headers are valid");
        let mut header = set.blocks()[0]
            .header()
            .expect("valid")
            .expect("full header");
        header.bits = 0x1A00_FFFF;
        let mut record = Block::from_header(0, &header);
        record.hash = header.hash_hex();
        assert!(matches!(
            record.verify(),
            Err(BlockError::ProofOfWork { .. })
        ));
    }

    #[test]
    fn newest_returns_the_last_blocks_oldest_first() {
        let set = BlockSet::embedded().expect("embedded headers are valid");
        let newest = set.newest(3);
        assert_eq!(newest.len(), 3);
        assert_eq!(newest[2].height, 878_976);
        assert_eq!(newest[0].height, 878_976 - 2 * 2016);
    }
}
