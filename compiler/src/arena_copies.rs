//! Copies planned away. A buffer whose life ends in being copied whole into
//! a contiguous slice of another buffer is placed at that slice of the
//! arena, and the copy, of memory onto itself, is dropped. Winograd's 16
//! transformed inputs, one buffer each from one multi-result kernel, are
//! stacked this way for the batched product (resnet18: 150 copy kernels a
//! run; one-shot bufferization cannot write them in place, as it cannot
//! tell that the slices the kernel writes are disjoint).
//!
//! The source must be the allocation itself or a reshape of it (its
//! elements in row-major order in memory), the destination a slice of
//! another allocation whose elements are in row-major order too (the
//! strides of its shape), so that the copy moves bytes `[0, size)` of the
//! source to bytes `[offset, offset + size)` of the destination. Placing the
//! source there is right when, from the source's allocation to the copy,
//! nothing else touches those bytes of the destination (everything that
//! does goes through a slice with static offsets that lies elsewhere) and
//! the copy is the source's last use.

use crate::mlir::op_name;
use mlir_sys::*;
use std::collections::HashMap;

/// An allocation to place inside another, found by [`find`].
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// The top-level index of the allocation placed inside another.
    pub alloc: usize,
    /// The top-level index of the allocation it is placed in.
    pub into: usize,
    /// The byte offset of its slice in that allocation.
    pub offset: u64,
    /// The copy that becomes a copy of memory onto itself.
    pub copy: MlirOperation,
}

/// The elements `[start, end)` a view spans, relative to its allocation.
type Span = (i64, i64);

fn is_reshape_or_cast(name: &str) -> bool {
    matches!(name, "memref.cast" | "memref.expand_shape" | "memref.collapse_shape")
}

/// The op defining `value`, if it is an op result.
unsafe fn definer(value: MlirValue) -> Option<MlirOperation> {
    mlirValueIsAOpResult(value).then(|| mlirOpResultGetOwner(value))
}

/// The shape, strides and offset of a memref type with a static shape and
/// a strided layout (`None` for dynamic strides; the offset may be dynamic).
pub(crate) unsafe fn layout(ty: MlirType) -> Option<(Vec<i64>, Vec<i64>, Option<i64>)> {
    if !mlirTypeIsAMemRef(ty) || !mlirShapedTypeHasStaticShape(ty) {
        return None;
    }
    let rank = mlirShapedTypeGetRank(ty) as usize;
    let shape: Vec<i64> = (0..rank).map(|d| mlirShapedTypeGetDimSize(ty, d as isize)).collect();
    let mut strides = vec![0i64; rank];
    let mut offset = 0i64;
    if mlirMemRefTypeGetStridesAndOffset(ty, strides.as_mut_ptr(), &mut offset).value == 0 {
        return None; // not a strided layout
    }
    if strides.iter().any(|&s| s == i64::MIN) {
        return None;
    }
    Some((shape, strides, (offset != i64::MIN).then_some(offset)))
}

/// Whether `strides` lay out `shape` in row-major order without gaps (dims
/// of size 1 have no say).
fn row_major(shape: &[i64], strides: &[i64]) -> bool {
    let mut expected = 1;
    for (&size, &stride) in shape.iter().zip(strides).rev() {
        if size != 1 && stride != expected {
            return false;
        }
        expected *= size;
    }
    true
}

fn elements(shape: &[i64]) -> i64 {
    shape.iter().product()
}

/// The elements a view spans, from its type (static offset) or else from
/// the view it reshapes or casts (a reshape of a row-major view spans the
/// same elements).
pub(crate) unsafe fn span(value: MlirValue) -> Option<Span> {
    let (shape, strides, offset) = layout(mlirValueGetType(value))?;
    if let Some(start) = offset {
        if shape.contains(&0) {
            return Some((start, start));
        }
        let last: i64 = shape.iter().zip(&strides).map(|(&n, &s)| (n - 1) * s).sum();
        return Some((start, start + last + 1));
    }
    let op = definer(value)?;
    if !is_reshape_or_cast(&op_name(op)) {
        return None;
    }
    span(mlirOperationGetOperand(op, 0))
}

/// The top-level `memref.alloc` that `value` is a view of, through slices,
/// reshapes and casts (`with_slices` false: reshapes and casts only).
unsafe fn allocation(value: MlirValue, body: MlirBlock, with_slices: bool) -> Option<MlirOperation> {
    let op = definer(value)?;
    let name = op_name(op);
    if name == "memref.alloc" {
        return (mlirOperationGetBlock(op).ptr == body.ptr).then_some(op);
    }
    if is_reshape_or_cast(&name) || (with_slices && name == "memref.subview") {
        return allocation(mlirOperationGetOperand(op, 0), body, with_slices);
    }
    None
}

/// The uses of `alloc` and of the views of it that `through` follows (a
/// use by `owner`, an op named `name`): each with the value it uses.
unsafe fn uses_past_views(alloc: MlirOperation, through: impl Fn(&str, MlirOperation) -> bool) -> Vec<(MlirOpOperand, MlirValue)> {
    let mut found = Vec::new();
    let mut work = vec![mlirOperationGetResult(alloc, 0)];
    while let Some(v) = work.pop() {
        let mut use_ = mlirValueGetFirstUse(v);
        while !use_.ptr.is_null() {
            let owner = mlirOpOperandGetOwner(use_);
            if through(&op_name(owner), owner) {
                work.push(mlirOperationGetResult(owner, 0));
            } else {
                found.push((use_, v));
            }
            use_ = mlirOpOperandGetNextUse(use_);
        }
    }
    found
}

/// Every use of `alloc` outside the views of it: the top-level index of the
/// op that holds the use, and the elements the used view spans (`None`:
/// unknown, all of it).
unsafe fn accesses(alloc: MlirOperation, body: MlirBlock, index: &HashMap<usize, usize>) -> Vec<(usize, Option<Span>)> {
    let top_level_view = |name: &str, owner: MlirOperation| {
        mlirOperationGetBlock(owner).ptr == body.ptr && (is_reshape_or_cast(name) || name == "memref.subview")
    };
    uses_past_views(alloc, top_level_view)
        .into_iter()
        .filter_map(|(use_, v)| {
            let top = super::arena::top_level_ancestor(mlirOpOperandGetOwner(use_), body)?;
            Some((index.get(&(top.ptr as usize)).copied().unwrap_or(0), span(v)))
        })
        .collect()
}

/// How many top-level `memref.copy` ops read `alloc` (or a reshape of it).
unsafe fn copies_of(alloc: MlirOperation, body: MlirBlock) -> usize {
    let reads_as_copy = |use_: MlirOpOperand| {
        let owner = mlirOpOperandGetOwner(use_);
        op_name(owner) == "memref.copy" && mlirOpOperandGetOperandNumber(use_) == 0 && mlirOperationGetBlock(owner).ptr == body.ptr
    };
    uses_past_views(alloc, |name, _| is_reshape_or_cast(name)).into_iter().filter(|&(use_, _)| reads_as_copy(use_)).count()
}

/// The placement that drops `copy` (a top-level `memref.copy` at index
/// `at`), if it is right (see the module's comment).
unsafe fn placement(copy: MlirOperation, at: usize, body: MlirBlock, index: &HashMap<usize, usize>) -> Option<Placement> {
    let (source, target) = (mlirOperationGetOperand(copy, 0), mlirOperationGetOperand(copy, 1));
    let alloc = allocation(source, body, false)?;
    let into = allocation(target, body, true)?;
    if alloc.ptr == into.ptr {
        return None;
    }
    let (alloc_shape, _, _) = layout(mlirValueGetType(mlirOperationGetResult(alloc, 0)))?;
    let (source_shape, source_strides, source_offset) = layout(mlirValueGetType(source))?;
    let (target_shape, target_strides, _) = layout(mlirValueGetType(target))?;
    let whole = source_offset == Some(0) && row_major(&source_shape, &source_strides) && elements(&source_shape) == elements(&alloc_shape);
    if !whole || !row_major(&target_shape, &target_strides) || elements(&target_shape) != elements(&source_shape) {
        return None;
    }
    let (start, end) = span(target)?;
    let alloc_at = *index.get(&(alloc.ptr as usize))?;
    let source_dies_here = super::arena::last_use(mlirOperationGetResult(alloc, 0), body, index) == at;
    // a buffer that several copies read is a temporary shared by several
    // producers (bufferization gives the first result of every Winograd
    // transform one buffer): placed in the last copy's destination, it
    // would keep that destination live since the first producer
    let copied_once = copies_of(alloc, body) == 1;
    let untouched = accesses(into, body, index).into_iter().all(|(op, used)| {
        op < alloc_at || op >= at || used.is_some_and(|(from, to)| to <= start || end <= from || from == to)
    });
    let elem_bytes = element_bytes(mlirValueGetType(target));
    (source_dies_here && copied_once && untouched && elem_bytes > 0).then(|| Placement {
        alloc: alloc_at,
        into: *index.get(&(into.ptr as usize)).expect("a top-level allocation"),
        offset: start as u64 * elem_bytes,
        copy,
    })
}

/// The placements for the top-level copies of `body` (`tops`: its ops in
/// order, `index`: their positions). An allocation that is placed inside
/// another is not a destination itself (its own offset is not known yet).
pub fn find(tops: &[MlirOperation], body: MlirBlock, index: &HashMap<usize, usize>) -> Vec<Placement> {
    let mut found: Vec<Placement> = tops
        .iter()
        .enumerate()
        .filter(|(_, &op)| op_name(op) == "memref.copy")
        .filter_map(|(at, &op)| unsafe { placement(op, at, body, index) })
        .collect();
    let placed: std::collections::HashSet<usize> = found.iter().map(|p| p.alloc).collect();
    found.retain(|p| !placed.contains(&p.into));
    found
}

/// The bytes of one element of a memref type (0 when not a whole number of
/// bytes: `i1`, `index`).
pub(crate) unsafe fn element_bytes(ty: MlirType) -> u64 {
    let elem = mlirShapedTypeGetElementType(ty);
    let bits = if mlirTypeIsAFloat(elem) {
        mlirFloatTypeGetWidth(elem)
    } else if mlirTypeIsAInteger(elem) {
        mlirIntegerTypeGetWidth(elem)
    } else {
        0
    };
    if bits % 8 == 0 { (bits / 8) as u64 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::row_major;

    #[test]
    fn row_major_strides() {
        assert!(row_major(&[1, 64, 28, 28], &[50176, 784, 28, 1]));
        assert!(row_major(&[1, 64, 28, 28], &[802816, 784, 28, 1]));
        assert!(!row_major(&[64, 28, 28], &[784, 29, 1]));
        assert!(!row_major(&[28, 28], &[1, 28]));
    }
}
