//! Static memory planning: after bufferization every intermediate is a
//! top-level `memref.alloc` with a static shape. Each gets a fixed offset in
//! one arena (the entry function's last argument, `memref<?xi8>`) so that
//! buffers whose live ranges overlap never share bytes; the arena's size is
//! known at compile time and nothing is allocated per run. A buffer whose
//! life ends in being copied whole into a slice of another is placed at
//! that slice instead (`arena_copies`), and the copy dropped.

use anyhow::{bail, Result};
use melior::ir::{
    attribute::IntegerAttribute, block::BlockLike, operation::OperationBuilder, operation::OperationLike,
    BlockRef, Identifier, Module, OperationRef, RegionLike, Type, Value, ValueLike,
};
use melior::ir::attribute::AttributeLike;
use mlir_sys::*;
use std::collections::HashMap;

pub const ALIGNMENT: u64 = 64;

/// One buffer to place: its size and the top-level op range it is live in.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub size: u64,
    pub first: usize,
    pub last: usize,
}

/// How recently (in kernels) a buffer of the same size must have died for
/// a new buffer to take its slot rather than the lowest free one. See
/// [`assign_offsets`].
pub const TWIN_WINDOW_KERNELS: usize = 64;

/// Greedy best-fit by decreasing size: each buffer goes to the lowest
/// aligned offset that overlaps no already placed buffer live at the same
/// time, unless a buffer of its size died in the last
/// [`TWIN_WINDOW_KERNELS`] kernels and its slot is free: then it takes the
/// latest such slot (the lowest of those that died last). The layers of a
/// network's stage write buffers of one size with the same kernels, which
/// split them the same way among the threads, so each thread writes the
/// bytes it wrote for the last layer: with the threads' cores on two
/// last-level caches, a line last written by the other one moves across
/// the dies first (resnet18 at 2 threads on two dies: ~0.97 of the time;
/// 1 thread and one die: unchanged). `kernels[i]` counts the top-level ops
/// before op `i` that compute (not views, constants or allocations).
/// Returns the offsets and the arena size.
pub fn assign_offsets(intervals: &[Interval], kernels: &[usize]) -> (Vec<u64>, u64) {
    let mut order: Vec<usize> = (0..intervals.len()).collect();
    order.sort_by(|&a, &b| intervals[b].size.cmp(&intervals[a].size).then(a.cmp(&b)));
    let mut offsets = vec![0u64; intervals.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut total = 0u64;
    for i in order {
        let it = &intervals[i];
        let mut conflicts: Vec<(u64, u64)> = placed
            .iter()
            .filter(|&&j| intervals[j].first <= it.last && it.first <= intervals[j].last)
            .map(|&j| (offsets[j], offsets[j] + intervals[j].size))
            .collect();
        conflicts.sort();
        let free = |offset: u64| conflicts.iter().all(|&(start, end)| offset + it.size <= start || end <= offset);
        let twin = placed
            .iter()
            .filter(|&&j| {
                let died = &intervals[j];
                died.size == it.size && died.last < it.first && kernels[it.first] - kernels[died.last + 1] <= TWIN_WINDOW_KERNELS
            })
            .max_by_key(|&&j| (intervals[j].last, std::cmp::Reverse(offsets[j])))
            .map(|&j| offsets[j])
            .filter(|&offset| free(offset));
        let offset = twin.unwrap_or_else(|| lowest_free(&conflicts, it.size));
        offsets[i] = offset;
        total = total.max(offset + it.size);
        placed.push(i);
    }
    (offsets, total.div_ceil(ALIGNMENT) * ALIGNMENT)
}

/// The lowest aligned offset where `size` bytes overlap none of the
/// `conflicts` (byte ranges, sorted).
fn lowest_free(conflicts: &[(u64, u64)], size: u64) -> u64 {
    let mut offset = 0u64;
    for &(start, end) in conflicts {
        if offset + size <= start {
            break;
        }
        offset = offset.max(end.div_ceil(ALIGNMENT) * ALIGNMENT);
    }
    offset
}

fn elem_bytes(elem: &str) -> Option<u64> {
    Some(match elem {
        "i1" | "i8" => 1,
        "i16" | "f16" | "bf16" => 2,
        "i32" | "f32" => 4,
        "i64" | "f64" | "index" => 8,
        _ => return None,
    })
}

/// Bytes of a static memref type such as `memref<1x6x28x28xf32>`.
fn memref_bytes(ty: &str) -> Option<u64> {
    let inner = ty.strip_prefix("memref<")?.strip_suffix('>')?;
    if inner.contains(',') {
        return None; // non-identity layout or memory space
    }
    let mut parts: Vec<&str> = inner.split('x').collect();
    let elem = elem_bytes(parts.pop()?)?;
    let mut n = 1u64;
    for p in parts {
        n *= p.parse::<u64>().ok()?;
    }
    Some(n * elem)
}

/// The top-level op of `body` that contains `op`.
pub(crate) fn top_level_ancestor(op: MlirOperation, body: MlirBlock) -> Option<MlirOperation> {
    let mut op = op;
    unsafe {
        loop {
            let block = mlirOperationGetBlock(op);
            if block.ptr.is_null() {
                return None;
            }
            if block.ptr == body.ptr {
                return Some(op);
            }
            op = mlirBlockGetParentOperation(block);
            if op.ptr.is_null() {
                return None;
            }
        }
    }
}

/// The index of the last top-level op that uses `value` or any memref
/// derived from it (views, reshapes, casts, and the results of the region
/// op that a branch or loop body yields it to).
pub(crate) fn last_use(value: MlirValue, body: MlirBlock, index: &HashMap<usize, usize>) -> usize {
    let mut last = 0;
    let mut work = vec![value];
    unsafe {
        while let Some(v) = work.pop() {
            let mut use_ = mlirValueGetFirstUse(v);
            while !use_.ptr.is_null() {
                let owner = mlirOpOperandGetOwner(use_);
                if let Some(top) = top_level_ancestor(owner, body) {
                    last = last.max(index.get(&(top.ptr as usize)).copied().unwrap_or(0));
                }
                // a yielded buffer lives on in the region op's results
                let terminator = matches!(
                    OperationRef::from_raw(owner).name().as_string_ref().as_str(),
                    Ok("scf.yield") | Ok("scf.condition")
                );
                let produces = if terminator { mlirBlockGetParentOperation(mlirOperationGetBlock(owner)) } else { owner };
                for r in 0..mlirOperationGetNumResults(produces) {
                    let result = mlirOperationGetResult(produces, r);
                    if mlirTypeIsAMemRef(mlirValueGetType(result)) {
                        work.push(result);
                    }
                }
                use_ = mlirOpOperandGetNextUse(use_);
            }
        }
    }
    last
}

/// Moves every allocation inside a region (a branch of `scf.if`, the body
/// of `scf.while`) to the function's body, just before the op that holds
/// it, so that it gets an arena slot like any other. Sizes are static, so
/// this is always possible; and it is right: what a loop iteration
/// allocates is only used within that iteration (a loop's carried values
/// are updated in place, see the lowering of `scf.while`), so one buffer
/// serves every iteration, and a branch's buffers are simply reserved
/// whichever branch runs.
fn hoist_nested_allocations(function: OperationRef, block: BlockRef) -> Result<()> {
    let mut nested = Vec::new();
    function.walk(melior::ir::operation::WalkOrder::PreOrder, |o| {
        if o.name().as_string_ref().as_str() == Ok("memref.alloc") && o.block().map(|b| b.to_raw().ptr) != Some(block.to_raw().ptr) {
            nested.push(o.to_raw());
        }
        melior::ir::operation::WalkResult::Advance
    });
    for alloc in nested {
        unsafe {
            if mlirOperationGetNumOperands(alloc) != 0 {
                bail!("internal error: an allocation of dynamic size after bufferization");
            }
            let top = top_level_ancestor(alloc, block.to_raw())
                .ok_or_else(|| anyhow::anyhow!("internal error: an allocation outside the function body"))?;
            mlirOperationMoveBefore(alloc, top);
        }
    }
    Ok(())
}

/// A `memref.view` of `source` (bytes) at byte `offset`, as `ty`, built
/// before `anchor`.
fn view_at<'c, 'a>(context: &'c melior::Context, block: &BlockRef<'c, 'a>, anchor: OperationRef<'c, 'a>, source: Value<'c, 'a>, offset: u64, ty: Type<'c>) -> Result<Value<'c, 'a>> {
    let location = anchor.location();
    let index_type = Type::index(context);
    let constant = OperationBuilder::new("arith.constant", location)
        .add_attributes(&[(Identifier::new(context, "value"), IntegerAttribute::new(index_type, offset as i64).into())])
        .add_results(&[index_type])
        .build()?;
    let constant = block.insert_operation_before(anchor, constant);
    let view = OperationBuilder::new("memref.view", location).add_operands(&[source, constant.result(0)?.into()]).add_results(&[ty]).build()?;
    let view = block.insert_operation_before(anchor, view);
    Ok(view.result(0)?.into())
}

/// Replaces every allocation in the entry function with a view of the
/// arena and returns the arena's size in bytes.
pub fn plan(context: &melior::Context, module: &Module) -> Result<u64> {
    let function = crate::mlir::entry_function(module)?;
    let region = function.region(0)?;
    let block: BlockRef = region.first_block().ok_or_else(|| anyhow::anyhow!("function has no body"))?;
    let arena: Value = block.argument(block.argument_count() - 1)?.into();

    hoist_nested_allocations(function, block)?;
    let mut tops: Vec<OperationRef> = Vec::new();
    let mut op = block.first_operation();
    while let Some(o) = op {
        tops.push(o);
        op = o.next_in_block();
    }
    let index: HashMap<usize, usize> = tops.iter().enumerate().map(|(i, o)| (o.to_raw().ptr as usize, i)).collect();

    // buffers copied whole into a slice of another live in that slice
    let raw: Vec<MlirOperation> = tops.iter().map(|o| o.to_raw()).collect();
    let placements = crate::arena_copies::find(&raw, block.to_raw(), &index);
    let placed: HashMap<usize, &crate::arena_copies::Placement> = placements.iter().map(|p| (p.alloc, p)).collect();

    // see `assign_offsets`
    let mut kernels = vec![0usize];
    for o in &tops {
        let id = o.name();
        let name = id.as_string_ref().as_str().unwrap_or_default();
        let computes = name != "memref.alloc" && !crate::border_fills::PURE.contains(&name);
        kernels.push(kernels[kernels.len() - 1] + computes as usize);
    }
    let mut allocs = Vec::new();
    let mut intervals = Vec::new();
    let mut interval_of: HashMap<usize, usize> = HashMap::new();
    for (i, o) in tops.iter().enumerate() {
        if o.name().as_string_ref().as_str() != Ok("memref.alloc") || placed.contains_key(&i) {
            continue;
        }
        let result = o.result(0)?;
        let ty = result.r#type().to_string();
        let size = memref_bytes(&ty).ok_or_else(|| anyhow::anyhow!("internal error: cannot plan allocation of {ty}"))?;
        let last = last_use(result.to_raw(), block.to_raw(), &index).max(i);
        interval_of.insert(i, intervals.len());
        allocs.push(*o);
        intervals.push(Interval { size: size.max(1), first: i, last });
    }
    // a buffer holding another is live from that one's allocation on
    for p in &placements {
        let into = &mut intervals[interval_of[&p.into]];
        into.first = into.first.min(p.alloc);
    }
    let (offsets, total) = assign_offsets(&intervals, &kernels);

    // A buffer holding others and those it holds are views of one byte
    // view of their slot, not of the arena: what one kernel writes through
    // one of them another reads through the other, so none of them is a
    // kernel's private scratch (`parallel::is_scratch` looks for views of
    // the arena that only one kernel uses).
    let mut shared: HashMap<usize, Value> = HashMap::new();
    for p in &placements {
        if !shared.contains_key(&p.into) {
            let k = interval_of[&p.into];
            let bytes_type = Type::parse(context, &format!("memref<{}xi8>", intervals[k].size)).expect("a byte memref type");
            let bytes = view_at(context, &block, tops[0], arena, offsets[k], bytes_type)?;
            shared.insert(p.into, bytes);
        }
    }
    let mut views: Vec<(OperationRef, Value, u64)> = Vec::new();
    for (k, alloc) in allocs.into_iter().enumerate() {
        let top = index[&(alloc.to_raw().ptr as usize)];
        views.push(match shared.get(&top) {
            Some(&bytes) => (alloc, bytes, 0),
            None => (alloc, arena, offsets[k]),
        });
    }
    views.extend(placements.iter().map(|p| (tops[p.alloc], shared[&p.into], p.offset)));
    for (alloc, source, offset) in views {
        let result = alloc.result(0)?;
        let view = view_at(context, &block, alloc, source, offset, result.r#type())?;
        // Views of two buffers that share a slot at different times must
        // stay two values: CSE would merge alike ones, and a temporary of
        // one kernel would then look used by another (to
        // `parallel::is_scratch`), and be shared by its threads.
        let buffer = IntegerAttribute::new(Type::index(context), index[&(alloc.to_raw().ptr as usize)] as i64);
        unsafe {
            let name = Identifier::new(context, "aotc.buffer");
            mlirOperationSetAttributeByName(mlirOpResultGetOwner(view.to_raw()), mlirIdentifierStr(name.to_raw()), buffer.to_raw());
        }
        unsafe {
            mlirValueReplaceAllUsesOfWith(result.to_raw(), view.to_raw());
            mlirOperationRemoveFromParent(alloc.to_raw());
            mlirOperationDestroy(alloc.to_raw());
        }
    }
    // each of these now copies memory onto itself
    for p in &placements {
        unsafe {
            mlirOperationRemoveFromParent(p.copy);
            mlirOperationDestroy(p.copy);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(size: u64, first: usize, last: usize) -> Interval {
        Interval { size, first, last }
    }

    /// Places `intervals` with every op a kernel.
    fn assign(intervals: &[Interval]) -> (Vec<u64>, u64) {
        let ops = intervals.iter().map(|it| it.last + 2).max().unwrap_or(1);
        assign_offsets(intervals, &(0..ops).collect::<Vec<_>>())
    }

    #[test]
    fn a_buffer_takes_the_slot_of_the_last_dead_buffer_of_its_size() {
        // the second dies last: the third takes its slot, not the lowest
        let (offsets, _) = assign(&[interval(100, 0, 1), interval(100, 0, 3), interval(100, 4, 5)]);
        assert_eq!(offsets, vec![0, 128, 128]);
        // a buffer of another size takes the lowest free slot
        let (offsets, _) = assign(&[interval(100, 0, 1), interval(100, 0, 3), interval(90, 4, 5)]);
        assert_eq!(offsets, vec![0, 128, 0]);
        // and so does one whose twin died too long ago (its lines are gone
        // from the caches anyway)
        let late = 4 + TWIN_WINDOW_KERNELS + 1;
        let (offsets, _) = assign(&[interval(100, 0, 1), interval(100, 0, 3), interval(100, late, late + 1)]);
        assert_eq!(offsets, vec![0, 128, 0]);
    }

    #[test]
    fn disjoint_lifetimes_share_memory() {
        let (offsets, total) = assign(&[
            interval(100, 0, 1),
            interval(100, 2, 3),
        ]);
        assert_eq!(offsets, vec![0, 0]);
        assert_eq!(total, 128);
    }

    #[test]
    fn overlapping_lifetimes_do_not_overlap_in_memory() {
        let intervals = [
            interval(100, 0, 2),
            interval(64, 1, 3),
            interval(30, 2, 2),
        ];
        let (offsets, total) = assign(&intervals);
        for i in 0..3 {
            for j in 0..i {
                let (a, b) = (&intervals[i], &intervals[j]);
                if a.first <= b.last && b.first <= a.last {
                    let disjoint = offsets[i] + a.size <= offsets[j] || offsets[j] + b.size <= offsets[i];
                    assert!(disjoint, "{i} and {j} overlap: {offsets:?}");
                }
            }
            assert_eq!(offsets[i] % ALIGNMENT, 0);
        }
        assert!(total >= 194);
    }

    #[test]
    fn sizes_of_memref_types() {
        assert_eq!(memref_bytes("memref<1x6x28x28xf32>"), Some(6 * 28 * 28 * 4));
        assert_eq!(memref_bytes("memref<6x14x14xi1>"), Some(6 * 14 * 14));
        assert_eq!(memref_bytes("memref<?xf32>"), None);
    }
}
