//! Reduction kernels: generics with reduction loops (sum, mean, max, the
//! statistics of softmax and the norms, after fusion with what feeds them).
//!
//! Along the contiguous dim (a row of softmax or layer norm), each row is
//! reduced into a vector of partial results, a few vectors per step (the
//! accumulators stay in registers across the row), then once across the
//! lanes (a tree of shuffles: see [`reassociate_lane_sums`]). When the
//! contiguous dim is parallel (a sum over rows), the
//! reduced dims become outer loops and the contiguous dim a vector, like an
//! elementwise op. Dims the vector tile does not divide, windows and
//! gathers are left to scalar loops.

use super::analysis::{generic, Generic};
use super::elementwise::tile_for;
use super::{tag_plans, Script, Target};
use melior::ir::operation::{OperationLike, OperationMutLike, OperationRefMut};
use melior::ir::{Attribute, Module, ValueLike};
use melior::Context;

/// The tiling of one reduction.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    /// Every loop but the innermost one at a time; the innermost (a
    /// reduction) into `lanes`-partial accumulators, `tile` at a time.
    /// `parallel`: for each outer loop, whether its dim is parallel (the
    /// others reduce too: a sum over rows and columns accumulates in memory
    /// across their iterations).
    Rows { parallel: Vec<bool>, tile: i64 },
    /// Rows whose length is no whole number of vectors (a global pool's
    /// 7 x 7 = 49): split along the row at `at` (48), the first part as
    /// [`Plan::Rows`] by `tile`; the rest (1), a sum over [rows, 1] that
    /// starts from the first part's, is lowered to plain loops.
    SplitRows { parallel: Vec<bool>, tile: i64, at: i64 },
    /// The innermost (parallel) dim `tile` at a time, every other loop one
    /// at a time.
    Columns { sizes: Vec<i64> },
}

impl Plan {
    fn tag(&self) -> String {
        match self {
            Plan::Rows { parallel, tile, .. } => format!("red_rows_{}_{tile}", loop_kinds(parallel)),
            Plan::SplitRows { parallel, tile, at } => format!("red_split{at}_rows_{}_{tile}", loop_kinds(parallel)),
            Plan::Columns { sizes } => {
                let s: Vec<String> = sizes.iter().map(i64::to_string).collect();
                format!("red_cols_{}", s.join("x"))
            }
        }
    }
}

/// The outer loops' kinds in a tag: `p` parallel, `r` reduction.
fn loop_kinds(parallel: &[bool]) -> String {
    parallel.iter().map(|&p| if p { 'p' } else { 'r' }).collect()
}

fn plan_for(g: &Generic, lanes: i64) -> Option<Plan> {
    if g.all_parallel() || !g.projected() || !g.vectorizable() || g.operands.len() - g.inputs != 1 {
        return None;
    }
    let rank = g.rank();
    let inner = g.ranges[rank - 1];
    if !g.parallel[rank - 1] {
        // full vectors, else half vectors (a row of 1176 = 147 x 8)
        let whole_row = |length: i64| {
            [lanes, lanes / 2].into_iter().filter(|&width| width > 1).find_map(|width| {
                let (tile, masked) = tile_for(length, width);
                (!masked && tile % width == 0).then_some(tile)
            })
        };
        let parallel = g.parallel[..rank - 1].to_vec();
        if let Some(tile) = whole_row(inner) {
            return Some(Plan::Rows { parallel, tile });
        }
        // the row's whole vectors, then its few last elements
        let at = inner - inner % (lanes / 2).max(1);
        let tile = (at >= lanes).then(|| whole_row(at)).flatten()?;
        return Some(Plan::SplitRows { parallel, tile, at });
    }
    let (tile, masked) = tile_for(inner, lanes);
    if masked || inner < lanes {
        return None;
    }
    let mut sizes = vec![1i64; rank];
    sizes[rank - 1] = tile;
    Some(Plan::Columns { sizes })
}

/// Tags every reduction with its plan and writes the script.
pub fn plan(context: &Context, module: &Module, target: &Target, script: &mut Script) {
    let plans = tag_plans(context, module, "linalg.generic", |raw| generic(raw).and_then(|g| plan_for(&g, target.lanes())), Plan::tag);
    for p in plans {
        let op = script.match_tagged("linalg.generic", &p.tag());
        match &p {
            Plan::Rows { parallel, tile } => rows_in_vectors(script, &op, parallel, *tile),
            Plan::SplitRows { parallel, tile, at } => {
                // one op at a time: the split of several ops is one list
                let one = script.handle("one");
                script.line(format!("transform.foreach {op} : !transform.any_op {{"));
                script.line(format!("^bb0({one}: !transform.any_op):"));
                let (parts, lower, upper) = (script.handle("parts"), script.handle("lower"), script.handle("upper"));
                script.line(format!("{parts} = transform.structured.split {one} after {at} {{dimension = {}}} : !transform.any_op", parallel.len()));
                script.line(format!(
                    "{lower}, {upper} = transform.split_handle {parts} : (!transform.any_op) -> (!transform.any_op, !transform.any_op)"
                ));
                rows_in_vectors(script, &lower, parallel, *tile);
                script.line("}");
            }
            Plan::Columns { sizes } => {
                let (tiled, _) = script.tile(&op, sizes);
                script.vectorize(&tiled, None);
            }
        }
    }
}

/// `op`'s rows one at a time (the `parallel` outer loops shared by the
/// threads), each reduced into `tile` lanes of partial results, then once
/// across them.
fn rows_in_vectors(script: &mut Script, op: &str, parallel: &[bool], tile: i64) {
    let outer: Vec<i64> = parallel.iter().map(|_| 1).chain([0]).collect();
    let (rows, row_loops) = script.tile(op, &outer);
    let parallel_loops: Vec<String> = row_loops.iter().zip(parallel).filter(|(_, &p)| p).map(|(l, _)| l.clone()).collect();
    script.mark_parallel(&parallel_loops);
    let (fill, partial, combine, k_loop) = (script.handle("fill"), script.handle("partial"), script.handle("combine"), script.handle("loop"));
    let zeros = vec!["0"; outer.len() - 1].join(", ");
    script.line(format!(
        "{fill}, {partial}, {combine}, {k_loop} = transform.structured.tile_reduction_using_for {rows} by tile_sizes = [{zeros}, {tile}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)"
    ));
    script.vectorize(&fill, None);
    script.vectorize(&partial, None);
    script.vectorize(&combine, None);
    script.hoist_after_cleanup(&k_loop);
}

/// Lets LLVM sum the lanes of a row's partial sums (or products) as a tree:
/// `vector.reduction <add>` is an ordered reduction otherwise, one scalar
/// add after another (64 dependent adds for a tile of four vectors: on
/// attention's rows of 128, more time than the adds along the row). The
/// order of the sum is the vectorizer's already (lane partial sums, not
/// torch's), so the tree changes no guarantee.
pub fn reassociate_lane_sums(context: &Context, module: &Module) {
    let reassoc = Attribute::parse(context, "#arith.fastmath<reassoc>").expect("a fastmath attribute");
    for raw in super::ops_named(module, "vector.reduction") {
        let mut op = unsafe { OperationRefMut::from_raw(raw) };
        let kind = op.attribute("kind").map(|k| k.to_string()).unwrap_or_default();
        // f16/bf16/f32/f64 (integer sums are exact in any order anyway)
        let float = op.result(0).is_ok_and(|r| r.r#type().to_string().contains('f'));
        if float && (kind.contains("add") || kind.contains("mul")) {
            op.set_attribute("fastmath", reassoc);
        }
    }
}
