//! Static memory planning: after bufferization every intermediate is a
//! top-level `memref.alloc` with a static shape. Each gets a fixed offset in
//! one arena (the entry function's last argument, `memref<?xi8>`) so that
//! buffers whose live ranges overlap never share bytes; the arena's size is
//! known at compile time and nothing is allocated per run.

use anyhow::{bail, Result};
use melior::ir::{
    attribute::IntegerAttribute, block::BlockLike, operation::OperationBuilder, operation::OperationLike,
    BlockRef, Identifier, Module, OperationRef, RegionLike, Type, Value, ValueLike,
};
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

/// Greedy best-fit by decreasing size: each buffer goes to the lowest
/// aligned offset that overlaps no already placed buffer live at the same
/// time. Returns the offsets and the arena size.
pub fn assign_offsets(intervals: &[Interval]) -> (Vec<u64>, u64) {
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
        let mut offset = 0u64;
        for (start, end) in conflicts {
            if offset + it.size <= start {
                break;
            }
            offset = offset.max(end.div_ceil(ALIGNMENT) * ALIGNMENT);
        }
        offsets[i] = offset;
        total = total.max(offset + it.size);
        placed.push(i);
    }
    (offsets, total.div_ceil(ALIGNMENT) * ALIGNMENT)
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
fn top_level_ancestor(op: MlirOperation, body: MlirBlock) -> Option<MlirOperation> {
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
fn last_use(value: MlirValue, body: MlirBlock, index: &HashMap<usize, usize>) -> usize {
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

    let mut allocs = Vec::new();
    let mut intervals = Vec::new();
    for (i, o) in tops.iter().enumerate() {
        if o.name().as_string_ref().as_str() != Ok("memref.alloc") {
            continue;
        }
        let result = o.result(0)?;
        let ty = result.r#type().to_string();
        let size = memref_bytes(&ty).ok_or_else(|| anyhow::anyhow!("internal error: cannot plan allocation of {ty}"))?;
        let last = last_use(result.to_raw(), block.to_raw(), &index).max(i);
        allocs.push(*o);
        intervals.push(Interval { size: size.max(1), first: i, last });
    }
    let (offsets, total) = assign_offsets(&intervals);

    let index_type = Type::index(context);
    for (alloc, offset) in allocs.iter().zip(offsets) {
        let location = alloc.location();
        let constant = OperationBuilder::new("arith.constant", location)
            .add_attributes(&[(
                Identifier::new(context, "value"),
                IntegerAttribute::new(index_type, offset as i64).into(),
            )])
            .add_results(&[index_type])
            .build()?;
        let constant = block.insert_operation_before(*alloc, constant);
        let result = alloc.result(0)?;
        let view = OperationBuilder::new("memref.view", location)
            .add_operands(&[arena, constant.result(0)?.into()])
            .add_results(&[result.r#type()])
            .build()?;
        let view = block.insert_operation_before(*alloc, view);
        unsafe {
            mlirValueReplaceAllUsesOfWith(result.to_raw(), view.result(0)?.to_raw());
            mlirOperationRemoveFromParent(alloc.to_raw());
            mlirOperationDestroy(alloc.to_raw());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_lifetimes_share_memory() {
        let (offsets, total) = assign_offsets(&[
            Interval { size: 100, first: 0, last: 1 },
            Interval { size: 100, first: 2, last: 3 },
        ]);
        assert_eq!(offsets, vec![0, 0]);
        assert_eq!(total, 128);
    }

    #[test]
    fn overlapping_lifetimes_do_not_overlap_in_memory() {
        let intervals = [
            Interval { size: 100, first: 0, last: 2 },
            Interval { size: 64, first: 1, last: 3 },
            Interval { size: 30, first: 2, last: 2 },
        ];
        let (offsets, total) = assign_offsets(&intervals);
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
