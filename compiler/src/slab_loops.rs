//! Consecutive parallel loops joined into one when each iteration of both
//! touches only its own slab of the memory they share.
//!
//! A depthwise block of mobilenet_v2 at 14x14 copies each of its 576
//! channels into its padded buffer (with the border fills, see
//! `border_fills`) and then convolves it: two loops over the channels, two
//! kernels, a start and an end for the threads each, and at 2 threads the
//! channels one core copied were read by the other. Joined, a thread copies
//! and convolves a channel while its lines are in its cache. The same joins
//! the copies of a stride's phases channel by channel (resnet18: 130 loops
//! fewer) and a norm's loop over a transformer's tokens with the next loop
//! over them.
//!
//! Right when, for every pair of buffers of the two loops that may share
//! memory and that one of the loops writes (memory both only read may be
//! read in any order: an im2col's tap copies read overlapping windows of
//! one input, 49 loops that join into one), both loops reach them only
//! through slices that take the loop's index as the offset of one dim with
//! at most `step` elements along it (a slab), and either the two are the
//! same elements sliced along the same dim, or the slabs of one iteration
//! lie within one band of memory as long as the slabs advance per
//! iteration. Then iteration `t` of the second loop touches only memory
//! that no iteration of the first but `t` touches, and the joined body
//! keeps the order within an iteration.
//!
//! An outer loop of few iterations (`parallel::COLLAPSE_BELOW`) shares its
//! range with the loop inside it, so two such loops join only when each
//! body is one loop of the same bounds, which join too, and within an
//! iteration of the outer loops the two touch memory apart (their slabs of
//! written memory do not meet): squeezenet's and mobilenet_v2's im2col, 9
//! tap copies of 3 channels by 111 or 112 rows, one kernel (convnext's 16
//! patch copies too); a call of the pool each instead of 9 costs the
//! threads 8 waits (squeezenet at 2 threads far 0.988x the time, ab both
//! orders; mobilenet_v2's joined copies at 1 thread 44 us against 49).
//!
//! Runs before memory planning (allocations apart: products, rows) and
//! after it (the copies into padded buffers are loops only from then on,
//! see `pipeline::bufferize`). After planning, slots that the arena gives
//! to buffers alive at different times overlap: the loops of a product's
//! last columns, which read a small buffer whose slot the padded buffer
//! then takes, stay apart from the copy.

use crate::arena_copies::{layout, span};
use crate::border_fills::{append_body, body, is_parallel_loop, outside_buffers, static_slice_arrays, PURE};
use crate::mlir::{constant_integer, constant_loop_bounds, only_read, op_name};
use anyhow::Result;
use melior::ir::Module;
use mlir_sys::*;

/// Where a view's elements lie: the value at the bottom of its views (an
/// argument: the arena or a parameter) and the byte offset of the memory
/// its type's layout counts from.
struct Placement {
    root: MlirValue,
    base: i64,
}

/// The bytes of one iteration's slab of a view, for the loop's first
/// iteration, relative to the view's placement, and how far they move per
/// iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slab {
    /// The dim whose offset is the loop's index.
    dim: usize,
    start: i64,
    end: i64,
    advance: i64,
}

/// Joins every parallel loop to the loops with the same bounds that follow
/// it (past ops that only name memory), where right (see the module's
/// comment). Returns how many loops were joined.
pub fn join_slab_loops(module: &Module) -> Result<usize> {
    let entry = crate::mlir::entry_function(module)?;
    let block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(entry.to_raw(), 0)) };
    // the arena is the entry's last argument (also before planning)
    let arena = unsafe { mlirBlockGetArgument(block, mlirBlockGetNumArguments(block) - 1) };
    let mut joined = 0;
    let mut op = unsafe { mlirBlockGetFirstOperation(block) };
    while !op.ptr.is_null() {
        while unsafe { join_next(op, arena) } {
            joined += 1;
        }
        op = unsafe { mlirOperationGetNextInBlock(op) };
    }
    Ok(joined)
}

/// Joins the next loop after `first` (past pure ops) to it, if right.
unsafe fn join_next(first: MlirOperation, arena: MlirValue) -> bool {
    if !is_parallel_loop(first) {
        return false;
    }
    let Some(bounds) = constant_loop_bounds(first) else { return false };
    let (lb, ub, step) = bounds;
    if step <= 0 {
        return false;
    }
    // a loop of few iterations shares its range with the loop inside it
    // among the threads (`parallel::COLLAPSE_BELOW`), which a body of two
    // loops would prevent: such loops join only with their inner loops
    let few = (ub - lb + step - 1) / step < crate::parallel::COLLAPSE_BELOW;
    let (between, next) = past_views(first);
    if next.ptr.is_null() || !is_parallel_loop(next) || constant_loop_bounds(next) != Some(bounds) || !apart(first, next, step, arena, few) {
        return false;
    }
    let inner = match (few, lone_inner_loop(first), lone_inner_loop(next)) {
        (false, ..) => None,
        (true, Some(a), Some(b)) if constant_loop_bounds(a).is_some() && constant_loop_bounds(a) == constant_loop_bounds(b) => Some((a, b)),
        (true, ..) => return false,
    };
    join(first, &between, next);
    if let Some((a, b)) = inner {
        // b now follows a (past views); within an iteration of the outer
        // loop the two touch memory apart (`apart` with `within`), so
        // their iterations may interleave
        let (between, after_a) = past_views(a);
        debug_assert!(after_a.ptr == b.ptr);
        join(a, &between, b);
    }
    true
}

/// The ops after `op` that only name memory (or allocate it, before
/// planning), and the op after them (null at the block's end).
unsafe fn past_views(op: MlirOperation) -> (Vec<MlirOperation>, MlirOperation) {
    let mut between = Vec::new();
    let mut next = mlirOperationGetNextInBlock(op);
    while !next.ptr.is_null() && (PURE.contains(&op_name(next).as_str()) || is_static_alloc(next)) {
        between.push(next);
        next = mlirOperationGetNextInBlock(next);
    }
    (between, next)
}

/// Appends loop `next`'s body to `first`'s, the ops `between` them moved
/// before `first`.
unsafe fn join(first: MlirOperation, between: &[MlirOperation], next: MlirOperation) {
    for &op in between {
        mlirOperationMoveBefore(op, first);
    }
    append_body(first, next);
}

/// The parallel loop that is all `for_op`'s body does (past ops that only
/// name memory): squeezenet's im2col copies a tap's window channel by
/// channel (3), row by row (111). Stricter than
/// `parallel::collapsed_inner_loop` (which also takes index arithmetic
/// and border fills beside the loop): only ops that [`past_views`] moves,
/// so that the two inner loops end up next to each other.
unsafe fn lone_inner_loop(for_op: MlirOperation) -> Option<MlirOperation> {
    let mut inner = None;
    let mut op = mlirBlockGetFirstOperation(body(for_op));
    while !op.ptr.is_null() {
        match op_name(op).as_str() {
            "scf.for" if inner.is_none() && is_parallel_loop(op) => inner = Some(op),
            "scf.yield" => {}
            name if PURE.contains(&name) => {}
            _ => return None,
        }
        op = mlirOperationGetNextInBlock(op);
    }
    inner
}

/// An allocation of a static shape (before memory planning): it may move
/// up past a loop, which then sees it allocated.
unsafe fn is_static_alloc(op: MlirOperation) -> bool {
    op_name(op) == "memref.alloc" && mlirOperationGetNumOperands(op) == 0
}

/// Whether the iterations of loops `a` and `b` (same bounds, `step`) touch
/// memory apart but for the same iteration's (see the module's comment);
/// `within`: the same iteration's too.
unsafe fn apart(a: MlirOperation, b: MlirOperation, step: i64, arena: MlirValue, within: bool) -> bool {
    let (used_a, used_b) = (distinct(outside_buffers(a)), distinct(outside_buffers(b)));
    // Working memory (the arena, or an allocation before planning) that a
    // loop uses whole in every iteration is a temporary: each thread gets a
    // copy of it only when `parallel::is_scratch` finds that no other
    // kernel uses its view. Joined loops take slabs only, so that no join
    // rests on that (a race when it fails, as it did when CSE merged the
    // views of alike temporaries: GPT-2's norms).
    let working = |v: MlirValue| placement(v).is_none_or(|p| p.root.ptr == arena.ptr || mlirValueIsAOpResult(p.root));
    let slabs_only = |used: &[MlirValue], l: MlirOperation| used.iter().all(|&v| !working(v) || slab(v, l, step).is_some());
    if !slabs_only(&used_a, a) || !slabs_only(&used_b, b) {
        return false;
    }
    used_a.iter().all(|&u| {
        used_b.iter().all(|&v| {
            // memory both loops only read may be read in any order
            if !may_overlap(u, v) || (only_read(u, Some(a)) && only_read(v, Some(b))) {
                return true;
            }
            let (Some(pu), Some(pv)) = (placement(u), placement(v)) else { return false };
            match (slab(u, a, step), slab(v, b, step)) {
                // slabs of one dim of the same elements: boxes apart
                (Some(su), Some(sv)) if su.dim == sv.dim && same_elements(u, v) => !within,
                (Some(su), Some(sv)) if su.advance == sv.advance => {
                    let (u_start, u_end) = (pu.base + su.start, pu.base + su.end);
                    let (v_start, v_end) = (pv.base + sv.start, pv.base + sv.end);
                    let in_one_band = u_end.max(v_end) - u_start.min(v_start) <= su.advance;
                    in_one_band && (!within || u_end <= v_start || v_end <= u_start)
                }
                _ => false,
            }
        })
    })
}

/// Whether two views name the same elements the same way: one placement,
/// shape, layout and element type.
unsafe fn same_elements(u: MlirValue, v: MlirValue) -> bool {
    let (tu, tv) = (mlirValueGetType(u), mlirValueGetType(v));
    let (Some(pu), Some(pv)) = (placement(u), placement(v)) else { return false };
    let (Some(lu), Some(lv)) = (layout(tu), layout(tv)) else { return false };
    pu.root.ptr == pv.root.ptr
        && pu.base == pv.base
        && lu.0 == lv.0
        && lu.1 == lv.1
        && injective(&lu.0, &lu.1)
        && element_offset(u).is_some()
        && element_offset(u) == element_offset(v)
        && mlirTypeEqual(mlirShapedTypeGetElementType(tu), mlirShapedTypeGetElementType(tv))
}

/// Whether a strided layout puts distinct indices at distinct elements:
/// each stride, smallest first, steps past all the elements of the dims
/// with smaller strides (dims of size 1 have no say).
fn injective(shape: &[i64], strides: &[i64]) -> bool {
    let mut dims: Vec<(i64, i64)> = strides.iter().zip(shape).filter(|(_, &n)| n > 1).map(|(&s, &n)| (s, n)).collect();
    dims.sort();
    let mut reach = 0;
    for (stride, size) in dims {
        if stride <= reach {
            return false;
        }
        reach += (size - 1) * stride;
    }
    true
}

fn distinct(values: Vec<MlirValue>) -> Vec<MlirValue> {
    let mut seen: Vec<MlirValue> = Vec::new();
    for v in values {
        if !seen.iter().any(|s| s.ptr == v.ptr) {
            seen.push(v);
        }
    }
    seen
}

/// The placement of `value` (see [`Placement`]), through slices, reshapes,
/// casts and views at constant byte offsets.
unsafe fn placement(mut value: MlirValue) -> Option<Placement> {
    let mut base = 0;
    while mlirValueIsAOpResult(value) {
        let op = mlirOpResultGetOwner(value);
        match op_name(op).as_str() {
            "memref.subview" | "memref.cast" | "memref.expand_shape" | "memref.collapse_shape" => {}
            "memref.view" => base += constant_integer(mlirOperationGetOperand(op, 1))?,
            // before memory planning: an allocation of its own
            "memref.alloc" => break,
            _ => return None,
        }
        value = mlirOperationGetOperand(op, 0);
    }
    Some(Placement { root: value, base })
}

/// The bytes `value`'s elements span, from its placement's base.
unsafe fn byte_span(value: MlirValue) -> Option<(i64, i64)> {
    let bytes = element_bytes(mlirValueGetType(value))?;
    span(value).map(|(start, end)| (start * bytes, end * bytes))
}

/// The static offset of `value`'s layout (see `arena_copies::span`).
unsafe fn element_offset(value: MlirValue) -> Option<i64> {
    span(value).map(|(start, _)| start)
}

/// The bytes of one element: `i1` is stored in a byte (None for `index`).
unsafe fn element_bytes(ty: MlirType) -> Option<i64> {
    let element = mlirShapedTypeGetElementType(ty);
    match crate::arena_copies::element_bytes(ty) {
        0 if mlirTypeIsAInteger(element) && mlirIntegerTypeGetWidth(element) == 1 => Some(1),
        0 => None,
        bytes => Some(bytes as i64),
    }
}

/// Whether two views may share memory: unless both are placed at known
/// bytes, of different roots or apart. (Distinct arguments are distinct
/// buffers: parameters, inputs, outputs and the arena.)
unsafe fn may_overlap(u: MlirValue, v: MlirValue) -> bool {
    let (Some(pu), Some(pv)) = (placement(u), placement(v)) else { return true };
    if pu.root.ptr != pv.root.ptr {
        return false;
    }
    match (byte_span(u), byte_span(v)) {
        (Some((us, ue)), Some((vs, ve))) => pu.base + us < pv.base + ve && pv.base + vs < pu.base + ue,
        _ => true,
    }
}

/// The slab of `value` that an iteration of `for_op` (step `step`)
/// touches: every use of `value` inside the loop must be a slice whose
/// offset in one dim (the same for all) is the loop's index, with at most
/// `step` elements at stride 1 along it.
unsafe fn slab(value: MlirValue, for_op: MlirOperation, step: i64) -> Option<Slab> {
    let index = mlirBlockGetArgument(body(for_op), 0);
    let mut dim = None;
    let mut operand = mlirValueGetFirstUse(value);
    while !operand.ptr.is_null() {
        let user = mlirOpOperandGetOwner(operand);
        operand = mlirOpOperandGetNextUse(operand);
        if !crate::outline::is_inside(user, for_op) {
            continue;
        }
        if op_name(user) != "memref.subview" || mlirOperationGetNumOperands(user) < 2 {
            return None;
        }
        let d = sliced_dim(user, index, step)?;
        if dim.is_some_and(|known| known != d) {
            return None;
        }
        dim = Some(d);
    }
    let dim = dim?;
    let ty = mlirValueGetType(value);
    let (shape, strides, _) = layout(ty)?;
    let (lb, _, _) = constant_loop_bounds(for_op)?;
    let bytes = element_bytes(ty)?;
    let offset = element_offset(value)?;
    if strides[dim] <= 0 || shape.iter().any(|&n| n <= 0) {
        return None;
    }
    let rest: i64 = (0..shape.len()).filter(|&e| e != dim).map(|e| (shape[e] - 1) * strides[e]).sum();
    let start = offset + lb * strides[dim];
    let end = start + (step - 1) * strides[dim] + rest + 1;
    Some(Slab { dim, start: start * bytes, end: end * bytes, advance: step * strides[dim] * bytes })
}

/// The dim of `subview` whose offset is `index`, with a static size of at
/// most `step` and stride 1 along it (exactly one such dim).
unsafe fn sliced_dim(subview: MlirOperation, index: MlirValue, step: i64) -> Option<usize> {
    let (offsets, sizes, strides) = static_slice_arrays(subview)?;
    let mut dynamic = 0;
    let mut found = None;
    for d in 0..offsets.len() {
        if offsets[d] != i64::MIN {
            continue;
        }
        dynamic += 1;
        if mlirOperationGetOperand(subview, dynamic).ptr != index.ptr {
            continue;
        }
        if found.is_some() || sizes[d] == i64::MIN || sizes[d] > step || strides[d] != 1 {
            return None;
        }
        found = Some(d);
    }
    found
}


#[cfg(test)]
mod tests {
    use super::injective;

    #[test]
    fn layouts_that_step_past_their_inner_dims_are_injective() {
        assert!(injective(&[64, 10, 10], &[100, 10, 1]));
        assert!(injective(&[64, 8, 8], &[100, 10, 1])); // an interior: gaps are fine
        assert!(injective(&[1, 64, 1, 8], &[0, 8, 0, 1])); // dims of size 1 have no say
        assert!(!injective(&[4, 8], &[1, 1]));
        assert!(!injective(&[4, 8], &[0, 1])); // a broadcast
        assert!(!injective(&[3, 10], &[9, 1]));
    }
}
