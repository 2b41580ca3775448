//! Generics that no other strategy vectorizes (gathers, windows with a
//! mask, bools kept in memory) run as scalar loops. Their outermost
//! parallel dim with more than one iteration is tiled by one, so that loop
//! is marked parallel and the worker threads share it (a max pool over 64
//! channels: 64 iterations) instead of the whole op running on one thread.

use super::analysis::generic;
use super::{ops_named, tag, Script};
use melior::ir::operation::OperationLike;
use melior::ir::Module;
use melior::Context;

/// The tag of the generics this strategy tiles.
const TAG: &str = "scalar_outer";

/// The tile sizes of a leftover generic: 1 on its first parallel dim with
/// more than one iteration, 0 elsewhere; None when it has none, has an
/// empty dim, or a strategy already took it.
fn outer_tile(raw: mlir_sys::MlirOperation) -> Option<Vec<i64>> {
    if unsafe { melior::ir::operation::OperationRef::from_raw(raw) }.has_attribute("aotc.kernel") {
        return None;
    }
    let g = generic(raw)?;
    // an empty loop leaves nothing to share (and MLIR's tiling crashes on it)
    if g.ranges.contains(&0) {
        return None;
    }
    let d = (0..g.rank()).find(|&d| g.parallel[d] && g.ranges[d] > 1)?;
    let mut sizes = vec![0; g.rank()];
    sizes[d] = 1;
    Some(sizes)
}

/// Tags the leftover generics and writes their tiling (one op at a time:
/// their tile sizes differ).
pub fn plan(context: &Context, module: &Module, script: &mut Script) {
    for raw in ops_named(module, "linalg.generic") {
        let Some(sizes) = outer_tile(raw) else { continue };
        let tag_text = format!("{TAG}_{}", sizes.iter().map(i64::to_string).collect::<Vec<_>>().join("_"));
        tag(context, raw, &tag_text);
    }
    let mut seen = Vec::new();
    for raw in ops_named(module, "linalg.generic") {
        let op = unsafe { melior::ir::operation::OperationRef::from_raw(raw) };
        let Some(tag_text) = op.attribute("aotc.kernel").ok().map(|a| a.to_string().trim_matches('"').to_string()) else { continue };
        let Some(sizes) = tag_text.strip_prefix(&format!("{TAG}_")) else { continue };
        if seen.contains(&tag_text) {
            continue;
        }
        let sizes: Vec<i64> = sizes.split('_').filter_map(|s| s.parse().ok()).collect();
        let ops = script.match_tagged("linalg.generic", &tag_text);
        let (_, loops) = script.tile(&ops, &sizes);
        script.mark_parallel(&loops);
        seen.push(tag_text);
    }
}
