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

use super::analysis::{generic, Expr, Generic};
use aotc_dialects::lower::elementwise::dim_list;
use aotc_dialects::types::Ty;
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
    /// [`Plan::Rows`] where the last outer loop (a few `rows`, parallel)
    /// indexes some inputs and not others: its rows are reduced together,
    /// one vector of partial results each, so that each step loads the
    /// shared input's vector once for all of them. The dot products of a
    /// product's last few columns (squeezenet's 9 of 169, `linear::
    /// last_columns`): one at a time, each read its row of the weight again.
    SharedRows { parallel: Vec<bool>, rows: i64, tile: i64 },
    /// The innermost (parallel) dim `tile` at a time, every other loop one
    /// at a time.
    Columns { sizes: Vec<i64> },
}

impl Plan {
    fn tag(&self) -> String {
        match self {
            Plan::Rows { parallel, tile, .. } => format!("red_rows_{}_{tile}", loop_kinds(parallel)),
            Plan::SplitRows { parallel, tile, at } => format!("red_split{at}_rows_{}_{tile}", loop_kinds(parallel)),
            Plan::SharedRows { parallel, rows, tile } => format!("red_shared{rows}_rows_{}_{tile}", loop_kinds(parallel)),
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
        if let Some(rows) = shared_rows(g) {
            if inner >= lanes && inner % lanes == 0 {
                return Some(Plan::SharedRows { parallel, rows, tile: lanes });
            }
        }
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

/// The most rows reduced together ([`Plan::SharedRows`]): one vector
/// register of partial results each, beside the loads.
const SHARED_ROWS: i64 = 12;

/// The rows of a row reduction's last outer loop, when they are reduced
/// together ([`Plan::SharedRows`]): a parallel loop of 2 to
/// [`SHARED_ROWS`] iterations that indexes some inputs but not all.
fn shared_rows(g: &Generic) -> Option<i64> {
    let rank = g.rank();
    if rank < 2 || !g.parallel[rank - 2] || !(2..=SHARED_ROWS).contains(&g.ranges[rank - 2]) {
        return None;
    }
    let indexes = |map: &Vec<Expr>| map.contains(&Expr::Dim(rank - 2));
    let inputs = &g.operands[..g.inputs];
    (inputs.iter().any(|(_, m)| indexes(m)) && inputs.iter().any(|(_, m)| !indexes(m))).then_some(g.ranges[rank - 2])
}

/// Tags every reduction with its plan and writes the script.
pub fn plan(context: &Context, module: &Module, target: &Target, script: &mut Script) {
    let plans = tag_plans(context, module, "linalg.generic", |raw| generic(raw).and_then(|g| plan_for(&g, target.lanes())), Plan::tag);
    for p in plans {
        let op = script.match_tagged("linalg.generic", &p.tag());
        match &p {
            Plan::Rows { parallel, tile } => rows_in_vectors(script, &op, parallel, 1, *tile),
            Plan::SharedRows { parallel, rows, tile } => rows_in_vectors(script, &op, parallel, *rows, *tile),
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
                rows_in_vectors(script, &lower, parallel, 1, *tile);
                script.line("}");
            }
            Plan::Columns { sizes } => {
                let (tiled, _) = script.tile(&op, sizes);
                script.vectorize(&tiled, None);
            }
        }
    }
}

/// `op`'s rows `rows` at a time along the last outer loop, one at a time
/// along the others (the `parallel` outer loops shared by the threads),
/// each reduced into `tile` lanes of partial results, then once across
/// them.
fn rows_in_vectors(script: &mut Script, op: &str, parallel: &[bool], rows: i64, tile: i64) {
    let last = parallel.len().saturating_sub(1);
    let outer: Vec<i64> = (0..parallel.len()).map(|d| if d == last { rows } else { 1 }).chain([0]).collect();
    let (rows, row_loops) = script.tile(op, &outer);
    let parallel_loops: Vec<String> = row_loops.iter().zip(parallel).filter(|(_, &p)| p).map(|(l, _)| l.clone()).collect();
    script.mark_parallel(&parallel_loops);
    let (fill, partial, combine, k_loop) = (script.handle("fill"), script.handle("partial"), script.handle("combine"), script.handle("loop"));
    // the outer loops untiled (none when the op reduces all its dims)
    let sizes: Vec<String> = outer[..outer.len() - 1].iter().map(|_| "0".to_string()).chain([tile.to_string()]).collect();
    let sizes = sizes.join(", ");
    script.line(format!(
        "{fill}, {partial}, {combine}, {k_loop} = transform.structured.tile_reduction_using_for {rows} by tile_sizes = [{sizes}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)"
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

/// Reductions over several trailing dims that every input reads whole and
/// in order (a global pool's 7 x 7, with the activation before it fused
/// in) become reductions over one dim of their product (49): the plans
/// above vectorize along one contiguous dim, and a row of 7 is no vector,
/// so such a reduction stayed a scalar loop (efficientnet_b0's pools and
/// squeeze-and-excitation means, each with a SiLU fused: ~6% of its time).
/// Elementwise fusion makes these: it expands a reduction over a collapsed
/// tensor back to its producer's dims to fuse the producer in.
pub fn collapse_trailing_reduction_dims(context: &Context, module: &Module) -> anyhow::Result<()> {
    for raw in super::ops_named(module, "linalg.generic") {
        let Some(g) = generic(raw) else { continue };
        if let Some(k) = collapsible_trailing_reduction_dims(&g) {
            collapse_trailing_dims(context, &g, k)?;
        }
    }
    Ok(())
}

/// How many trailing dims of `g` (2 or more) reduce, read by every input
/// that reads any of them as its own trailing dims in order, from
/// contiguous tensors, and by no output; None if fewer.
fn collapsible_trailing_reduction_dims(g: &Generic) -> Option<usize> {
    let rank = g.rank();
    let k = g.parallel.iter().rev().take_while(|&&p| !p).count();
    // (on tensors: a generic on tensors has a result per output)
    let on_tensors = unsafe { mlir_sys::mlirOperationGetNumResults(g.op) } as usize == g.operands.len() - g.inputs;
    if k < 2 || !on_tensors || !g.projected() || g.reads_indices || !super::analysis::operands_contiguous(g.op) {
        return None;
    }
    let first = rank - k;
    let is_trailing = |e: &Expr| matches!(e, Expr::Dim(d) if *d >= first);
    for (i, (ty, map)) in g.operands.iter().enumerate() {
        let reads_trailing = map.iter().any(is_trailing);
        if i >= g.inputs && reads_trailing {
            return None;
        }
        if !reads_trailing {
            continue;
        }
        let tail = &map[map.len().checked_sub(k)?..];
        let in_order = tail.iter().enumerate().all(|(j, e)| *e == Expr::Dim(first + j));
        if !in_order || map[..map.len() - k].iter().any(is_trailing) || ty.shape.len() != map.len() {
            return None;
        }
    }
    Some(k)
}

/// Replaces `g` by the same generic over its dims but the last `k`, which
/// become one: the inputs that read them through `tensor.collapse_shape`,
/// the body moved over as it is.
fn collapse_trailing_dims(context: &Context, g: &Generic, k: usize) -> anyhow::Result<()> {
    use melior::ir::operation::{OperationBuilder, OperationRef};
    use melior::ir::{BlockLike, Identifier, Region, RegionLike, Type, Value};
    use mlir_sys::*;
    let op = unsafe { OperationRef::from_raw(g.op) };
    let at = crate::mlir::InsertBefore::new(context, op);
    let first = g.rank() - k;
    let mut operands = Vec::new();
    let mut maps = Vec::new();
    for (i, (ty, map)) in g.operands.iter().enumerate() {
        let value = unsafe { mlirOperationGetOperand(g.op, i as isize) };
        let reads_trailing = map.iter().any(|e| matches!(e, Expr::Dim(d) if *d >= first));
        let kept = if reads_trailing { &map[..map.len() - k] } else { &map[..] };
        let mut results: Vec<String> = kept
            .iter()
            .map(|e| match e {
                Expr::Dim(d) => format!("d{d}"),
                Expr::Const(c) => c.to_string(),
                Expr::Other => unreachable!("projected maps only"),
            })
            .collect();
        if reads_trailing {
            results.push(format!("d{first}"));
        }
        maps.push(format!("affine_map<({}) -> ({})>", dim_list(first + 1), results.join(", ")));
        operands.push(if reads_trailing { collapse_trailing(context, &at, value, ty, k)? } else { value });
    }
    let iterators: Vec<&str> = g.parallel[..first].iter().map(|&p| if p { "parallel" } else { "reduction" }).chain(["reduction"]).collect();
    let iterators = iterators.iter().map(|i| format!("#linalg.iterator_type<{i}>")).collect::<Vec<_>>().join(", ");
    let outputs = g.operands.len() - g.inputs;
    let mut attributes = vec![
        (Identifier::new(context, "indexing_maps"), parse_attribute(context, &format!("[{}]", maps.join(", ")))?),
        (Identifier::new(context, "iterator_types"), parse_attribute(context, &format!("[{iterators}]"))?),
        (Identifier::new(context, "operandSegmentSizes"), parse_attribute(context, &format!("array<i32: {}, {outputs}>", g.inputs))?),
    ];
    for attribute in op.attributes() {
        let (name, value) = attribute;
        if !["indexing_maps", "iterator_types", "operandSegmentSizes"].contains(&name.as_string_ref().as_str().unwrap_or("")) {
            attributes.push((name, value));
        }
    }
    let region = Region::new();
    unsafe { mlirRegionTakeBody(region.to_raw(), mlirOperationGetRegion(g.op, 0)) };
    let result_types: Vec<Type> = op.results().map(|r| r.r#type()).collect();
    let operands: Vec<Value> = operands.into_iter().map(|v| unsafe { Value::from_raw(v) }).collect();
    let collapsed = OperationBuilder::new("linalg.generic", at.location)
        .add_operands(&operands)
        .add_attributes(&attributes)
        .add_results(&result_types)
        .add_regions([region])
        .build()?;
    let new_op = at.block.insert_operation_before(op, collapsed);
    for i in 0..op.result_count() {
        unsafe { mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(g.op, i as isize), mlirOperationGetResult(new_op.to_raw(), i as isize)) };
    }
    unsafe { mlirOperationDestroy(g.op) };
    Ok(())
}

/// `value` (of type `ty`) with its last `k` dims collapsed into one,
/// inserted by `at`.
fn collapse_trailing(context: &Context, at: &crate::mlir::InsertBefore, value: mlir_sys::MlirValue, ty: &Ty, k: usize) -> anyhow::Result<mlir_sys::MlirValue> {
    use melior::ir::operation::OperationBuilder;
    use melior::ir::{Identifier, Type, Value};
    let rank = ty.shape.len();
    let mut groups: Vec<String> = (0..rank - k).map(|d| format!("[{d}]")).collect();
    groups.push(format!("[{}]", (rank - k..rank).map(|d| d.to_string()).collect::<Vec<_>>().join(", ")));
    let mut shape: Vec<i64> = ty.shape[..rank - k].to_vec();
    shape.push(ty.shape[rank - k..].iter().product());
    let collapsed_ty = ty.with_shape(shape).to_string();
    let collapse = OperationBuilder::new("tensor.collapse_shape", at.location)
        .add_operands(&[unsafe { Value::from_raw(value) }])
        .add_attributes(&[(Identifier::new(context, "reassociation"), parse_attribute(context, &format!("[{}]", groups.join(", ")))?)])
        .add_results(&[Type::parse(context, &collapsed_ty).ok_or_else(|| anyhow::anyhow!("bad type {collapsed_ty}"))?])
        .build()?;
    at.insert(collapse)
}

fn parse_attribute<'c>(context: &'c Context, text: &str) -> anyhow::Result<Attribute<'c>> {
    Attribute::parse(context, text).ok_or_else(|| anyhow::anyhow!("cannot parse the attribute {text}"))
}
