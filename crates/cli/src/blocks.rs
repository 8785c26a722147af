//! Which blocks the scene's creatures are born from: the embedded set, a block file or the
//! HTTP API (fetched with `fetchBlock` tasks on the pool), and their confirmations.

use std::path::Path;

use protozoa_sim::block::{record, Block, BlockSet};
use protozoa_sim::creature::Creature;
use protozoa_sim::fetch::FetchRequest;
use protozoa_sim::tasks::FetchBlock;
use protozoa_workers::WorkerPool;

use crate::args::SimulateArgs;

/// The scene's default size when no blocks are named.
pub const DEFAULT_CREATURES: usize = 64;

/// The creatures the options ask for, in scene order.
pub fn creatures(args: &SimulateArgs, pool: &WorkerPool) -> Result<Vec<Creature>, String> {
    let embedded = BlockSet::embedded().map_err(|e| format!("embedded block data: {e}"))?;
    let blocks = chosen_blocks(args, &embedded, pool)?;

    // Confirmations: an explicit tip wins, then the record's own count, then the embedded tip.
    let tip = args.tip;
    if let Some(tip) = tip {
        if let Some(block) = blocks.iter().find(|b| b.height > tip) {
            return Err(format!(
                "block {} is above the tip {tip} (--tip)",
                block.height
            ));
        }
    }
    let confirmations = |b: &Block| match (tip, b.confirmations) {
        (Some(tip), _) => b.confirmations_at(tip),
        (None, Some(count)) => count,
        (None, None) => embedded.confirmations(b),
    };

    // One creature per block, the blocks repeated if more creatures are asked for.
    let count = args.creatures.unwrap_or(blocks.len());
    let creatures = blocks
        .iter()
        .cycle()
        .take(count)
        .map(|b| Creature::from_block(b, confirmations(b)))
        .collect();
    Ok(creatures)
}

/// The blocks named by --block-file and --block, or else the newest embedded ones.
fn chosen_blocks(
    args: &SimulateArgs,
    embedded: &BlockSet,
    pool: &WorkerPool,
) -> Result<Vec<Block>, String> {
    let mut blocks = match &args.block_file {
        Some(path) => read_block_file(path)?,
        None => Vec::new(),
    };

    let mut heights = args.blocks.clone();
    if blocks.is_empty() && heights.is_empty() {
        let wanted = args.creatures.unwrap_or(DEFAULT_CREATURES);
        heights = embedded.newest(wanted).iter().map(|b| b.height).collect();
    }

    match &args.api {
        Some(url) => blocks.extend(fetch_blocks(url, &heights, pool)?),
        None => {
            for height in heights {
                blocks.push(embedded.get(height).map_err(|e| e.to_string())?.clone());
            }
        }
    }
    Ok(blocks)
}

/// Reads and checks a block file.
fn read_block_file(path: &Path) -> Result<Vec<Block>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read block file {}: {e}", path.display()))?;
    record::parse_records(&text).map_err(|e| format!("block file {}: {e}", path.display()))
}

/// Fetches the blocks at `heights` from the API, all at once, as `fetchBlock` tasks.
fn fetch_blocks(url: &str, heights: &[u64], pool: &WorkerPool) -> Result<Vec<Block>, String> {
    let handles = heights
        .iter()
        .map(|&height| pool.submit::<FetchBlock>(FetchRequest::new(url, height)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot submit fetchBlock: {e}"))?;
    handles
        .into_iter()
        .zip(heights)
        .map(|(handle, height)| {
            handle
                .wait()
                .map_err(|e| format!("fetching block {height} from {url}: {e}"))
        })
        .collect()
}
