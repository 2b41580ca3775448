//! Border fills joined to the kernel that writes the interior.
//!
//! A padded buffer's interior is written by one kernel (the producer
//! computing in place, see `padding`, or a copy) and its border by fills of
//! its own, one per strip (two per padded dim), each a loop over the
//! channels. The fills are too small to be worth the worker threads, so
//! they ran on the calling thread alone while the others waited, and they
//! wrote cache lines (a column strip touches one line per row) that the
//! other threads had just written: 4.6% of mobilenet_v2's time at 2 threads.
//!
//! When the interior's kernel loops over the channels as the fills do (same
//! bounds), each fill's body joins that loop: a thread fills the border of
//! the channels it writes the inside of. (With fewer channels than
//! `parallel::COLLAPSE_BELOW`, the threads share the channel loop with the
//! rows inside it, and the piece that starts a channel fills its border:
//! a 5x5 depthwise of 240 channels, 15 blocks, at 2 threads 0.72-0.76 of
//! its time with the fills serial.) Right because the fills write
//! strips no other part of the loop touches and read nothing: the
//! interior's kernel reaches the padded buffer only through static slices
//! that lie apart from every strip, and any other buffer it uses is live
//! with the padded one, so its own arena slot.

use crate::mlir::{constant_loop_bounds, op_name};
use crate::outline::{defining_scope, is_inside, nested_operands};
use anyhow::Result;
use melior::ir::Module;
use mlir_sys::*;

/// The unit attribute of a fill joined to the loop that writes the
/// interior: its strip lies apart from all that loop's body touches, so
/// `parallel` may make it once per channel while the threads share the
/// loop inside with it.
pub const BORDER_FILL: &str = "aotc.border_fill";

/// Ops that only name memory or values: they may move up past a loop.
pub(crate) const PURE: &[&str] = &["memref.subview", "memref.cast", "memref.expand_shape", "memref.collapse_shape", "memref.view", "arith.constant"];

/// A static slice of a buffer: offsets and sizes per dim.
#[derive(Debug, Clone, PartialEq)]
struct Slice {
    offsets: Vec<i64>,
    sizes: Vec<i64>,
}

impl Slice {
    fn disjoint(&self, other: &Slice) -> bool {
        (0..self.offsets.len()).any(|d| {
            self.offsets[d] + self.sizes[d] <= other.offsets[d] || other.offsets[d] + other.sizes[d] <= self.offsets[d]
        })
    }
}

/// Joins every run of border fills to the loop before them, where right
/// (see the module's comment). Returns how many fills were joined.
pub fn join_border_fills(module: &Module) -> Result<usize> {
    let entry = crate::mlir::entry_function(module)?;
    let block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(entry.to_raw(), 0)) };
    let mut joined = 0;
    let mut op = unsafe { mlirBlockGetFirstOperation(block) };
    while !op.ptr.is_null() {
        joined += unsafe { join_fills_after(op) };
        op = unsafe { mlirOperationGetNextInBlock(op) };
    }
    Ok(joined)
}

pub(crate) unsafe fn is_parallel_loop(op: MlirOperation) -> bool {
    op_name(op) == "scf.for"
        && mlirOperationGetNumResults(op) == 0
        && !mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(c"aotc.parallel".as_ptr())).ptr.is_null()
}

pub(crate) unsafe fn body(op: MlirOperation) -> MlirBlock {
    mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0))
}

/// The static box `value` is of `base`: a `memref.subview` of `base` (or of
/// such a box of it) with static offsets and sizes and unit strides.
unsafe fn static_box(value: MlirValue) -> Option<(MlirValue, Slice)> {
    if !mlirValueIsAOpResult(value) {
        return None;
    }
    let subview = mlirOpResultGetOwner(value);
    if op_name(subview) != "memref.subview" || mlirOperationGetNumOperands(subview) != 1 {
        return None;
    }
    let (offsets, sizes, strides) = static_slice_arrays(subview)?;
    let source_rank = mlirShapedTypeGetRank(mlirValueGetType(mlirOperationGetOperand(subview, 0))) as usize;
    if strides.iter().any(|&s| s != 1) || offsets.len() != source_rank || offsets.iter().chain(&sizes).any(|&v| v < 0) {
        return None;
    }
    let source = mlirOperationGetOperand(subview, 0);
    // a static box of a static box is one of the buffer below
    match static_box(source) {
        Some((base, outer)) => {
            let offsets = offsets.iter().zip(&outer.offsets).map(|(a, b)| a + b).collect();
            Some((base, Slice { offsets, sizes }))
        }
        None => Some((source, Slice { offsets, sizes })),
    }
}

/// The static offsets, sizes and strides of a `memref.subview` (a dynamic
/// one is `i64::MIN`, its value an operand).
pub(crate) unsafe fn static_slice_arrays(subview: MlirOperation) -> Option<(Vec<i64>, Vec<i64>, Vec<i64>)> {
    let array = |name: &std::ffi::CStr| -> Option<Vec<i64>> {
        let attr = mlirOperationGetAttributeByName(subview, mlirStringRefCreateFromCString(name.as_ptr()));
        (!attr.ptr.is_null() && mlirAttributeIsADenseI64Array(attr))
            .then(|| (0..mlirDenseArrayGetNumElements(attr)).map(|i| mlirDenseI64ArrayGetElement(attr, i)).collect())
    };
    Some((array(c"static_offsets")?, array(c"static_sizes")?, array(c"static_strides")?))
}

/// The strip a fill loop writes, if `op` is one: a loop with the bounds
/// `bounds` whose body fills a slice (by the loop's index) of a static box
/// of a buffer defined outside it, and does nothing else. Also the fill.
unsafe fn fill_strip(op: MlirOperation, bounds: (i64, i64, i64)) -> Option<(MlirValue, Slice, MlirOperation)> {
    if !is_parallel_loop(op) || constant_loop_bounds(op) != Some(bounds) {
        return None;
    }
    let mut ops = Vec::new();
    let mut inner = mlirBlockGetFirstOperation(body(op));
    while !inner.ptr.is_null() {
        ops.push(inner);
        inner = mlirOperationGetNextInBlock(inner);
    }
    let [slice, fill, _yield] = ops[..] else { return None };
    if op_name(slice) != "memref.subview" || op_name(fill) != "linalg.fill" {
        return None;
    }
    let filled = mlirOperationGetOperand(fill, 1);
    if !mlirValueIsAOpResult(filled) || mlirOpResultGetOwner(filled).ptr != slice.ptr || mlirOperationGetNumResults(fill) != 0 {
        return None;
    }
    let strip = mlirOperationGetOperand(slice, 0);
    if mlirValueIsAOpResult(strip) && mlirOperationGetBlock(mlirOpResultGetOwner(strip)).ptr == body(op).ptr {
        return None;
    }
    static_box(strip).map(|(base, slice)| (base, slice, fill))
}

/// The buffer at the bottom of `value`'s views: a slot of the arena (a
/// `memref.view` of it), the byte view several placed buffers share (see
/// `arena_copies`), or an argument.
unsafe fn root(mut value: MlirValue) -> MlirValue {
    while mlirValueIsAOpResult(value) {
        let op = mlirOpResultGetOwner(value);
        let through = match op_name(op).as_str() {
            "memref.subview" | "memref.cast" | "memref.expand_shape" | "memref.collapse_shape" => true,
            "memref.view" => mlirValueIsAOpResult(mlirOperationGetOperand(op, 0)),
            _ => false,
        };
        if !through {
            break;
        }
        value = mlirOperationGetOperand(op, 0);
    }
    value
}

/// The values of memref type that ops inside `op` use from outside it.
pub(crate) unsafe fn outside_buffers(op: MlirOperation) -> Vec<MlirValue> {
    nested_operands(op)
        .into_iter()
        .map(|(_, _, v)| v)
        .filter(|&v| !is_inside(defining_scope(v), op) && mlirTypeIsAMemRef(mlirValueGetType(v)))
        .collect()
}

/// Joins the fill loops that follow `first` (past pure ops) to it, when
/// right. Returns how many were joined.
unsafe fn join_fills_after(first: MlirOperation) -> usize {
    if !is_parallel_loop(first) {
        return 0;
    }
    let Some(bounds) = constant_loop_bounds(first) else { return 0 };
    let mut between = Vec::new();
    // (the fill loop, its strip, its fill)
    let mut fills: Vec<(MlirOperation, Slice, MlirOperation)> = Vec::new();
    let mut padded: Option<MlirValue> = None;
    let mut next = mlirOperationGetNextInBlock(first);
    while !next.ptr.is_null() {
        if PURE.contains(&op_name(next).as_str()) {
            between.push(next);
        } else if let Some((base, strip, fill)) = fill_strip(next, bounds) {
            if padded.is_some_and(|p| p.ptr != base.ptr) {
                break;
            }
            padded = Some(base);
            fills.push((next, strip, fill));
        } else {
            break;
        }
        next = mlirOperationGetNextInBlock(next);
    }
    let Some(padded) = padded else { return 0 };
    // the first loop writes the padded buffer through static slices off
    // the strips (so the buffers it uses are live with it: other slots)
    let used = outside_buffers(first);
    let inside = |v: MlirValue| static_box(v).filter(|(base, _)| base.ptr == padded.ptr).map(|(_, b)| b);
    let apart = used.iter().all(|&v| match inside(v) {
        Some(slice) => fills.iter().all(|(_, strip, _)| slice.disjoint(strip)),
        None => root(v).ptr != root(padded).ptr,
    });
    if !apart || !used.iter().any(|&v| inside(v).is_some()) {
        return 0;
    }
    // the strips' slices are defined between the loops: up above the first
    for &op in &between {
        mlirOperationMoveBefore(op, first);
    }
    for (fill_loop, _, fill) in &fills {
        mark_border_fill(*fill);
        append_body(first, *fill_loop);
    }
    fills.len()
}

/// Tags `fill` with [`BORDER_FILL`].
unsafe fn mark_border_fill(fill: MlirOperation) {
    let name = MlirStringRef { data: BORDER_FILL.as_ptr().cast(), length: BORDER_FILL.len() };
    mlirOperationSetAttributeByName(fill, name, mlirUnitAttrGet(mlirOperationGetContext(fill)));
}

/// Moves the body of loop `from` (bounds as `into`'s) to the end of
/// `into`'s body, its index replaced by `into`'s, and erases `from`.
pub(crate) unsafe fn append_body(into: MlirOperation, from: MlirOperation) {
    let (into_body, from_body) = (body(into), body(from));
    mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(from_body, 0), mlirBlockGetArgument(into_body, 0));
    let end = mlirBlockGetTerminator(into_body);
    let mut inner = mlirBlockGetFirstOperation(from_body);
    while !inner.ptr.is_null() {
        let after = mlirOperationGetNextInBlock(inner);
        if op_name(inner) != "scf.yield" {
            mlirOperationMoveBefore(inner, end);
        }
        inner = after;
    }
    mlirOperationRemoveFromParent(from);
    mlirOperationDestroy(from);
}

#[cfg(test)]
mod tests {
    use super::Slice;

    #[test]
    fn boxes_apart_in_one_dim_are_disjoint() {
        let interior = Slice { offsets: vec![0, 0, 1, 1], sizes: vec![1, 32, 112, 112] };
        let top = Slice { offsets: vec![0, 0, 0, 0], sizes: vec![1, 32, 1, 114] };
        let left = Slice { offsets: vec![0, 0, 1, 0], sizes: vec![1, 32, 112, 1] };
        let overlapping = Slice { offsets: vec![0, 0, 0, 0], sizes: vec![1, 32, 2, 114] };
        assert!(interior.disjoint(&top) && interior.disjoint(&left) && top.disjoint(&left));
        assert!(!interior.disjoint(&overlapping));
    }
}
