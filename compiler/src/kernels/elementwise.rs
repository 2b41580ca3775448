//! Elementwise kernels: all-parallel generics (one op or a fused chain),
//! vectorized along their contiguous dim.
//!
//! An op whose operands are all read the same way from contiguous memory
//! is flattened to one dim and tiled by a few vectors (`tile`); otherwise
//! (broadcast operands, strided slices) the innermost dim is tiled, with
//! enough of the next dim to fill a vector when the innermost is short (an
//! NCHW image's 7 columns); rows that would split into several vector
//! pieces are widened to one, masked (7 -> 8 lanes, 14 -> 16). Transposed
//! reads are tiled into 2-D blocks (16 x 16 with AVX-512) shuffled in
//! registers. Generics that gather (`tensor.extract` in the body), read
//! windows, or keep bools in memory are left to scalar loops.

use super::analysis::{generic, operands_contiguous, Expr, Generic};
use super::{tag_plans, Script, Target};
use melior::ir::Module;
use melior::Context;

/// How many vectors one tile holds (independent operations per loop step).
const VECTORS_PER_TILE: i64 = 4;

/// Ops with at least this many inputs are stencils (a sum of shifted
/// windows) rather than plain elementwise chains.
const STENCIL_INPUTS: usize = 8;

/// The tile for a dim of `size`: the largest multiple of `lanes` up to
/// VECTORS_PER_TILE vectors that divides it, else that many vectors,
/// masked (true when masked).
pub fn tile_for(size: i64, lanes: i64) -> (i64, bool) {
    tile_of_vectors(size, lanes, VECTORS_PER_TILE)
}

/// [`tile_for`] with up to `vectors` vectors per tile.
fn tile_of_vectors(size: i64, lanes: i64, vectors: i64) -> (i64, bool) {
    let most = lanes * vectors;
    if size <= most {
        return (size, false);
    }
    match (1..=vectors).rev().map(|v| v * lanes).find(|t| size % t == 0) {
        Some(t) => (t, false),
        None => (most, true),
    }
}

/// The tiling of one elementwise op.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    /// Flatten to one dim, tile it.
    Flat { tile: i64, masked: bool },
    /// Tile sizes per loop (the innermost, and the next when it is short);
    /// `widened`: the innermost is a whole dim a little short of a vector
    /// size ([`widened_row`]: 14 of 16), computed in full vectors with
    /// masked loads and stores (one instruction each with AVX-512) rather
    /// than in pieces of 8, 4 and 2 lanes that LLVM assembles with inserts
    /// and spills (half the time of a 5x5 depthwise convolution on 14x14).
    Inner { sizes: Vec<i64>, widened: Option<i64> },
    /// Rows of whole vectors and one power-of-two piece (56 = 48 + 8),
    /// split along the innermost dim at `at`, each part tiled with its own
    /// sizes: as one tile, LLVM widens the row to whole vectors (a vector
    /// of 56 lanes becomes four of 16: 1/8 of the FMAs of a 7x7 depthwise
    /// convolution wasted, and the extra registers spilled). `widened`:
    /// the rest is computed in masked vectors of that width ([`long_ragged_rows`]).
    Split { at: i64, main: Vec<i64>, rest: Vec<i64>, widened: Option<i64> },
}

impl Plan {
    fn tag(&self) -> String {
        match self {
            Plan::Flat { tile, masked } => format!("ew_flat_{tile}{}", if *masked { "_masked" } else { "" }),
            Plan::Inner { sizes, widened } => {
                let s: Vec<String> = sizes.iter().map(i64::to_string).collect();
                format!("ew_{}{}", s.join("x"), widened.map(|w| format!("_widened{w}")).unwrap_or_default())
            }
            Plan::Split { at, main, rest, widened } => {
                let join = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join("x");
                format!("ew_split{at}_{}_{}{}", join(main), join(rest), widened.map(|w| format!("_widened{w}")).unwrap_or_default())
            }
        }
    }
}

/// How many vectors of each operand one tile holds. Stencils (depthwise
/// convolution's taps) are a long chain of FMAs per element: twice the
/// vectors keep enough chains in flight. An op with several results
/// (Winograd's transforms: 16 or 4) already has that many independent
/// chains per vector; more would only spill registers (and multiply the
/// code LLVM compiles).
fn vectors_per_tile(g: &Generic) -> i64 {
    if g.operands.len() - g.inputs > 1 {
        1
    } else if g.inputs >= STENCIL_INPUTS {
        2 * VECTORS_PER_TILE
    } else {
        VECTORS_PER_TILE
    }
}

fn plan_for(g: &Generic, lanes: i64) -> Option<Plan> {
    if !g.all_parallel() || !g.projected() || !g.vectorizable() || g.elements() < lanes {
        return None;
    }
    let vectors = vectors_per_tile(g);
    // the fewest vectors up to `vectors` that divide the dim, else tile_for's
    let tile_of = |size: i64| match tile_of_vectors(size, lanes, vectors.min(VECTORS_PER_TILE)) {
        (_, true) => tile_for(size, lanes),
        unmasked => unmasked,
    };
    if g.identity() && operands_contiguous(g.op) {
        let (tile, masked) = tile_of(g.elements());
        if !masked {
            return Some(Plan::Flat { tile, masked });
        }
    }
    let rank = g.rank();
    let inner = g.ranges[rank - 1];
    let mut sizes = vec![1i64; rank];
    let (tile, masked) = tile_of(inner);
    sizes[rank - 1] = tile;
    let mut transposed = transposed_loops(g, lanes);
    if transposed.iter().any(|&j| g.ranges[j] > lanes) {
        if inner % lanes == 0 {
            // a 2-D transpose in blocks of lanes x lanes
            sizes[rank - 1] = lanes;
        } else if let Some(split) = ragged_transpose(g, &transposed, lanes) {
            return Some(split);
        } else {
            transposed.retain(|&j| g.ranges[j] <= lanes);
        }
    }
    let with_rows = |sizes: &mut Vec<i64>, tile: i64| with_rows_of_next_dim(g, sizes, tile, lanes * vectors);
    let rest = inner % lanes;
    if !masked && tile == inner && inner > lanes && (rest as u64).is_power_of_two() && transposed.is_empty() {
        // the whole vectors in one tile
        return Some(split_at_last_vector(g, inner - rest, lanes, vectors));
    }
    if masked && transposed.is_empty() {
        return long_ragged_rows(g, lanes, vectors);
    }
    if transposed.is_empty() {
        with_rows(&mut sizes, tile);
    }
    for &j in &transposed {
        sizes[j] = if g.ranges[j] <= lanes { g.ranges[j] } else { lanes };
    }
    if !transposed.is_empty() && sizes[rank - 1] > lanes {
        if let Some(piece) = transpose_row_piece(inner, lanes) {
            sizes[rank - 1] = piece;
        }
    }
    // (transposes keep their exact rows: their reads are shuffled)
    let widened = (sizes[rank - 1] == inner && inner < lanes * vectors && transposed.is_empty()).then(|| widened_row(inner, lanes)).flatten();
    (!masked).then_some(Plan::Inner { sizes, widened })
}

/// Rows longer than a tile of `vectors` vectors that no tile of whole
/// vectors divides (111, a stride-2 stem's output rows; 12321 = 111 x 111
/// flattened), split at the last whole vector: the main part in tiles of
/// whole vectors that divide it, the rest (under a vector) in one piece,
/// in a masked vector of the next power of two when it is none (15 -> 16:
/// not 8 + 4 + 2 + 1). As one op they stayed scalar loops (squeezenet's
/// ReLU into the max pool's padded input, its first convolution's bias).
fn long_ragged_rows(g: &Generic, lanes: i64, vectors: i64) -> Option<Plan> {
    let rank = g.rank();
    let inner = g.ranges[rank - 1];
    let rest = inner % lanes;
    if inner <= lanes || rest == 0 {
        return None;
    }
    let (tile, _) = tile_of_vectors(inner - rest, lanes, vectors);
    Some(split_at_last_vector(g, tile, lanes, vectors))
}

/// The innermost dim split at its last whole vector: the whole vectors in
/// tiles of `main_tile`, the rest (under a vector) in one piece, in a
/// masked vector when it is no power of two ([`widened_row`]); short tiles
/// take rows of the next dim ([`with_rows_of_next_dim`]).
fn split_at_last_vector(g: &Generic, main_tile: i64, lanes: i64, vectors: i64) -> Plan {
    let rank = g.rank();
    let inner = g.ranges[rank - 1];
    let rest = inner % lanes;
    let (mut main, mut tail) = (vec![1i64; rank], vec![1i64; rank]);
    main[rank - 1] = main_tile;
    tail[rank - 1] = rest;
    with_rows_of_next_dim(g, &mut main, main_tile, lanes * vectors);
    // the piece takes a register of its own per row, like a vector:
    // as many rows as vectors (14 rows of 8: 0.34 ms, 8 rows: 0.325)
    with_rows_of_next_dim(g, &mut tail, lanes, lanes * vectors);
    Plan::Split { at: inner - rest, main, rest: tail, widened: widened_row(rest, lanes) }
}

/// A short tile (`tile` elements of the innermost dim, under `elements`)
/// takes rows of the next dim too, as many as fill `elements` and divide
/// that dim.
fn with_rows_of_next_dim(g: &Generic, sizes: &mut [i64], tile: i64, elements: i64) {
    let rank = g.rank();
    if tile < elements && rank >= 2 {
        let rows = (elements / tile.max(1)).max(1);
        let next = g.ranges[rank - 2];
        sizes[rank - 2] = (1..=rows.min(next)).rev().find(|r| next % r == 0).unwrap_or(1);
    }
}

/// `sizes` with the innermost widened to `width`, if any: the vector
/// sizes of a tile computed in masked vectors.
fn widened_sizes(sizes: &[i64], width: Option<i64>) -> Option<Vec<i64>> {
    width.map(|w| sizes[..sizes.len() - 1].iter().copied().chain([w]).collect())
}

/// A transpose whose rows (`inner`, past a vector) are no whole number of
/// vectors nor of a power-of-two piece of 8 or more ([`transpose_row_piece`]),
/// split at the last whole vector: the rows' vectors in blocks of lanes x
/// lanes, the few columns past them apart. GPT-2's tied LM head reads its
/// [50257, 768] embedding transposed: one element per step, 180 ms a run.
fn ragged_transpose(g: &Generic, transposed: &[usize], lanes: i64) -> Option<Plan> {
    let rank = g.rank();
    let inner = g.ranges[rank - 1];
    let rest = inner % lanes;
    if inner < lanes || rest == 0 || transpose_row_piece(inner, lanes).is_some() {
        return None;
    }
    let mut main = vec![1i64; rank];
    for &j in transposed {
        main[j] = g.ranges[j].min(lanes);
    }
    let mut tail = main.clone();
    main[rank - 1] = lanes;
    tail[rank - 1] = rest;
    Some(Plan::Split { at: inner - rest, main, rest: tail, widened: None })
}

/// The row length of a transpose's blocks when its rows (`inner`, longer
/// than a vector) are not whole vectors: the largest power-of-two piece of
/// at least 8 that divides them. The whole row made one shuffle of
/// 16 x 56 elements that LLVM expanded badly: mobilenet's depthwise
/// output transposes ([56, 16] -> [16, 56] blocks) took 1.5% of its time,
/// 0.7% in 16 x 8 blocks.
fn transpose_row_piece(inner: i64, lanes: i64) -> Option<i64> {
    if inner % lanes == 0 {
        return None;
    }
    (8..=lanes).rev().find(|&t| (t as u64).is_power_of_two() && inner % t == 0)
}

/// The vector width for rows of `inner` elements, when the row would
/// otherwise be split into several pieces (a remainder past the last whole
/// vector that is not one power-of-two piece: 14 = 8 + 4 + 2, 7 = 4 + 2 + 1,
/// 28 = 16 + 8 + 4): the next power of two below a vector (7 -> 8), else
/// the next whole number of vectors (14 -> 16, 28 -> 32).
fn widened_row(inner: i64, lanes: i64) -> Option<i64> {
    let rest = inner % lanes;
    if inner < 2 || rest == 0 || (rest as u64).is_power_of_two() {
        return None;
    }
    Some(if inner < lanes { (inner as u64).next_power_of_two() as i64 } else { (inner + lanes - 1) / lanes * lanes })
}

/// The loops that are the contiguous dim of some input read through a
/// permutation of all loops (a transpose, the phases of a strided
/// convolution's input; not a broadcast) and not innermost: short ones
/// (up to a vector) or whole multiples of a vector. Tiled whole (short) or
/// by one vector, each such read is contiguous vectors and one 2-D shuffle
/// (16 x 16 blocks: the unpack-and-shuffle network), not one load per
/// element; the other outer loops then stay at 1 so the transpose stays
/// 2-D. Attention's K^T (64 x 128 per head) took 7% of its time as scalar
/// loops.
fn transposed_loops(g: &Generic, lanes: i64) -> Vec<usize> {
    let rank = g.rank();
    let mut loops = Vec::new();
    for (_, exprs) in &g.operands[..g.inputs] {
        let permutation = exprs.len() == rank && exprs.iter().all(|e| matches!(e, Expr::Dim(_)));
        if let (true, Some(&Expr::Dim(j))) = (permutation, exprs.last()) {
            let blocks = g.ranges[j] <= lanes || g.ranges[j] % lanes == 0;
            if j != rank - 1 && blocks && !loops.contains(&j) {
                loops.push(j);
            }
        }
    }
    loops
}

/// Tags every elementwise generic with its plan and writes the script.
pub fn plan(context: &Context, module: &Module, target: &Target, script: &mut Script) {
    let plans = tag_plans(context, module, "linalg.generic", |raw| generic(raw).and_then(|g| plan_for(&g, target.lanes())), Plan::tag);
    for p in plans {
        let op = script.match_tagged("linalg.generic", &p.tag());
        match &p {
            Plan::Flat { tile, masked } => {
                let flat = script.handle("flat");
                script.line(format!("{flat} = transform.structured.flatten_elementwise {op} : (!transform.any_op) -> !transform.any_op"));
                let (tiled, loops) = script.tile(&flat, &[*tile]);
                script.mark_parallel(&loops);
                script.vectorize(&tiled, masked.then_some(&[*tile][..]));
            }
            Plan::Inner { sizes, widened } => {
                let (tiled, loops) = script.tile(&op, sizes);
                script.mark_parallel(&loops);
                script.vectorize(&tiled, widened_sizes(sizes, *widened).as_deref());
            }
            Plan::Split { at, main, rest, widened } => {
                // one op at a time: the split of several ops is one list
                let one = script.handle("one");
                script.line(format!("transform.foreach {op} : !transform.any_op {{"));
                script.line(format!("^bb0({one}: !transform.any_op):"));
                let (parts, lower, upper) = (script.handle("parts"), script.handle("lower"), script.handle("upper"));
                script.line(format!(
                    "{parts} = transform.structured.split {one} after {at} {{dimension = {}}} : !transform.any_op",
                    main.len() - 1
                ));
                script.line(format!(
                    "{lower}, {upper} = transform.split_handle {parts} : (!transform.any_op) -> (!transform.any_op, !transform.any_op)"
                ));
                let rest_vector = widened_sizes(rest, *widened);
                for (part, sizes, vector) in [(&lower, main, None), (&upper, rest, rest_vector.as_deref())] {
                    let (tiled, loops) = script.tile(part, sizes);
                    script.mark_parallel(&loops);
                    script.vectorize(&tiled, vector);
                }
                script.line("}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_divide_or_mask() {
        assert_eq!(tile_for(1228800, 16), (64, false));
        assert_eq!(tile_for(1000, 8), (8, false));
        assert_eq!(tile_for(196, 8), (32, true));
        assert_eq!(tile_for(49, 16), (49, false));
        assert_eq!(tile_for(7, 16), (7, false));
        assert_eq!(tile_of_vectors(50176, 16, 1), (16, false));
        assert_eq!(tile_of_vectors(28, 16, 1), (16, true));
    }

    #[test]
    fn transposes_of_ragged_rows_take_power_of_two_pieces() {
        assert_eq!(transpose_row_piece(56, 16), Some(8));
        assert_eq!(transpose_row_piece(40, 16), Some(8));
        assert_eq!(transpose_row_piece(64, 16), None);
        assert_eq!(transpose_row_piece(28, 16), None);
        assert_eq!(transpose_row_piece(49, 16), None);
        assert_eq!(transpose_row_piece(24, 8), None);
    }

    #[test]
    fn rows_widen_to_one_vector_piece() {
        assert_eq!(widened_row(14, 16), Some(16));
        assert_eq!(widened_row(7, 16), Some(8));
        assert_eq!(widened_row(28, 16), Some(32));
        // already whole pieces: 8, 16 + 8, 4
        assert_eq!(widened_row(8, 16), None);
        assert_eq!(widened_row(24, 16), None);
        assert_eq!(widened_row(56, 16), None);
        assert_eq!(widened_row(4, 8), None);
        assert_eq!(widened_row(1, 16), None);
    }
}
