//! Padded tensors computed in place, their border filled alone.
//!
//! A convolution pads its input (`tensor.pad`), which bufferizes to a new
//! buffer filled whole with the padding value, then a copy of the input
//! into its interior. Two passes over memory that are mostly avoidable:
//! when the input is computed by the program (a conv, a batch norm, an
//! activation), the producer can write straight into the interior of the
//! padded buffer; and only the border needs the padding value. This
//! rewrite does both, on tensors, before the kernel strategies run (so
//! they see the producer's output as a strided slice and do not flatten it):
//!
//! ```text
//! %e = tensor.empty                      %p = bufferization.alloc_tensor  (padded shape)
//! %x = <producer> outs(%e)        =>     %e = tensor.extract_slice %p[low] [sizes] [1]
//! %q = tensor.pad %x low high            %x = <producer> outs(%e)
//!                                        %i = tensor.insert_slice %x into %p[low] [sizes] [1]
//!                                        %q = fill of each border slice of %i
//! ```
//!
//! One-shot bufferization sees the insert of a slice into the very place it
//! was extracted from and writes no copy (the same shape MLIR's
//! `eliminate-empty-tensors` produces). The padded tensor starts as an
//! `alloc_tensor`, not a `linalg.fill`: writing into a slice of a filled
//! tensor that is read afterwards is a conflict that bufferization resolves
//! by copying; and not a `tensor.empty`, which canonicalization would fold
//! the slice of into a fresh empty tensor. Measured on mobilenet_v2: 8.8 ->
//! 8.4 ms (the copies into padded buffers and their memsets).
//!
//! The producer writes in place only in the simple and certain case: a
//! chain from a `tensor.empty` without reshapes (collapsing a strided slice
//! of the padded buffer would make bufferization copy it anyway), in the
//! pad's block. Other pads keep their `tensor.pad` (memset and copy): for
//! a source that must be copied anyway (an argument), filling the border
//! alone was no faster (depthwise 5x5 and 7x7 benchmarks): on rows of a
//! few cache lines, the side strips touch every line the memset would.

use crate::mlir::{dense_array, op_name, static_slice_attributes, InsertBefore};
use crate::outputs::empty_origin;
use anyhow::Result;
use melior::ir::block::BlockLike;
use melior::ir::RegionLike;
use melior::ir::operation::OperationBuilder;
use melior::ir::{Attribute, Block, Region, Identifier, Module, OperationRef, Type, Value, ValueLike};
use melior::Context;
use aotc_dialects::types::Ty;
use mlir_sys::*;

/// Rewrites every `tensor.pad` whose source can be computed in place.
pub fn compute_pads_in_place(context: &Context, module: &Module) -> Result<()> {
    for pad in crate::kernels::ops_named(module, "tensor.pad") {
        unsafe { rewrite_pad(context, pad)? };
    }
    Ok(())
}

/// The `static_low`/`static_high` of a pad, if it has no dynamic padding.
unsafe fn static_padding(pad: MlirOperation, name: &std::ffi::CStr) -> Option<Vec<i64>> {
    if mlirOperationGetNumOperands(pad) != 1 {
        return None;
    }
    let attr = mlirOperationGetAttributeByName(pad, mlirStringRefCreateFromCString(name.as_ptr()));
    if attr.ptr.is_null() || !mlirAttributeIsADenseI64Array(attr) {
        return None;
    }
    Some((0..mlirDenseArrayGetNumElements(attr)).map(|i| mlirDenseI64ArrayGetElement(attr, i)).collect())
}

/// The `arith.constant` a pad's region yields, if that is what it yields.
unsafe fn padding_constant(pad: MlirOperation) -> Option<MlirOperation> {
    let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(pad, 0));
    let value = mlirOperationGetOperand(mlirBlockGetTerminator(block), 0);
    if !mlirValueIsAOpResult(value) {
        return None;
    }
    let constant = mlirOpResultGetOwner(value);
    (op_name(constant) == "arith.constant").then_some(constant)
}

/// A static slice of a tensor: where it starts and its shape.
struct Slice {
    offsets: Vec<i64>,
    sizes: Vec<i64>,
}

/// The border of a padded tensor as disjoint slices: for each padded dim,
/// the part below and the part above the interior, taking the interior
/// range of the dims before it and the whole range of the dims after.
fn border(low: &[i64], interior: &[i64], padded: &[i64]) -> Vec<Slice> {
    let mut slices = Vec::new();
    for d in 0..padded.len() {
        let high = padded[d] - low[d] - interior[d];
        for (offset, size) in [(0, low[d]), (low[d] + interior[d], high)] {
            if size == 0 {
                continue;
            }
            let mut offsets: Vec<i64> = (0..padded.len()).map(|e| if e < d { low[e] } else { 0 }).collect();
            let mut sizes: Vec<i64> = (0..padded.len()).map(|e| if e < d { interior[e] } else { padded[e] }).collect();
            offsets[d] = offset;
            sizes[d] = size;
            slices.push(Slice { offsets, sizes });
        }
    }
    slices
}

/// The ops of the rewrite.
impl<'c, 'a> InsertBefore<'c, 'a> {
    fn slice_attributes(&self, slice: &Slice, operand_segments: &[i64]) -> Vec<(Identifier<'c>, Attribute<'c>)> {
        static_slice_attributes(self.context, &slice.offsets, &slice.sizes, operand_segments)
    }

    /// A new tensor with undefined contents: `bufferization.alloc_tensor`,
    /// which canonicalization leaves alone (it folds a slice of a
    /// `tensor.empty` into an unrelated `tensor.empty`).
    fn uninitialized(&self, ty: Type<'c>) -> Result<MlirValue> {
        let op = OperationBuilder::new("bufferization.alloc_tensor", self.location)
            .add_attributes(&[(Identifier::new(self.context, "operandSegmentSizes"), dense_array(self.context, "i32", &[0, 0, 0]))])
            .add_results(&[ty])
            .build()?;
        self.insert(op)
    }

    unsafe fn extract_slice(&self, source: MlirValue, slice: &Slice, ty: Type<'c>) -> Result<MlirValue> {
        let op = OperationBuilder::new("tensor.extract_slice", self.location)
            .add_operands(&[Value::from_raw(source)])
            .add_attributes(&self.slice_attributes(slice, &[1, 0, 0, 0]))
            .add_results(&[ty])
            .build()?;
        self.insert(op)
    }

    unsafe fn insert_slice(&self, source: MlirValue, dest: MlirValue, slice: &Slice) -> Result<MlirValue> {
        let op = OperationBuilder::new("tensor.insert_slice", self.location)
            .add_operands(&[Value::from_raw(source), Value::from_raw(dest)])
            .add_attributes(&self.slice_attributes(slice, &[1, 1, 0, 0, 0]))
            .add_results(&[Type::from_raw(mlirValueGetType(dest))])
            .build()?;
        self.insert(op)
    }

    /// `linalg.fill ins(%value) outs(%dest)`.
    unsafe fn fill(&self, value: MlirValue, dest: MlirValue) -> Result<MlirValue> {
        let element = Type::from_raw(mlirValueGetType(value));
        let body = Block::new(&[(element, self.location), (element, self.location)]);
        body.append_operation(OperationBuilder::new("linalg.yield", self.location).add_operands(&[body.argument(0)?.into()]).build()?);
        let region = Region::new();
        region.append_block(body);
        let op = OperationBuilder::new("linalg.fill", self.location)
            .add_operands(&[Value::from_raw(value), Value::from_raw(dest)])
            .add_attributes(&[(Identifier::new(self.context, "operandSegmentSizes"), dense_array(self.context, "i32", &[1, 1]))])
            .add_regions([region])
            .add_results(&[Type::from_raw(mlirValueGetType(dest))])
            .build()?;
        self.insert(op)
    }
}

/// The `tensor.empty` that `source` is computed into, when the producer
/// can write the interior of the padded tensor instead: a chain without
/// reshapes, in the pad's block (the padded tensor is made where the empty
/// tensor was and must dominate the pad).
unsafe fn producer_empty(source: MlirValue, pad: MlirOperation) -> Option<MlirOperation> {
    let mut reshapes = Vec::new();
    let empty = empty_origin(source, &mut reshapes)?;
    let same_block = mlirBlockEqual(mlirOperationGetBlock(empty), mlirOperationGetBlock(pad));
    let same_type = mlirTypeEqual(mlirValueGetType(mlirOperationGetResult(empty, 0)), mlirValueGetType(source));
    (same_block && same_type && reshapes.is_empty()).then_some(empty)
}

fn shape_of(ty: Type) -> Result<Ty> {
    Ty::parse(&ty.to_string()).ok_or_else(|| anyhow::anyhow!("internal error: a pad of {ty}"))
}

unsafe fn rewrite_pad(context: &Context, pad: MlirOperation) -> Result<()> {
    let (Some(low), Some(_)) = (static_padding(pad, c"static_low"), static_padding(pad, c"static_high")) else { return Ok(()) };
    let Some(constant) = padding_constant(pad) else { return Ok(()) };
    let source = mlirOperationGetOperand(pad, 0);
    let source_type = Type::from_raw(mlirValueGetType(source));
    let padded_type = Type::from_raw(mlirValueGetType(mlirOperationGetResult(pad, 0)));
    let (interior, padded) = (shape_of(source_type)?, shape_of(padded_type)?);
    let interior_slice = Slice { offsets: low.clone(), sizes: interior.shape.clone() };
    let at_pad = OperationRef::from_raw(pad);
    let b = InsertBefore::new(context, at_pad);

    // where the empty tensor was: the padded tensor and the slice the producer now writes
    let Some(empty) = producer_empty(source, pad) else { return Ok(()) };
    let at_empty = OperationRef::from_raw(empty);
    let before_empty = InsertBefore::new(context, at_empty);
    let whole = before_empty.uninitialized(padded_type)?;
    let inside = before_empty.extract_slice(whole, &interior_slice, source_type)?;
    mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(empty, 0), inside);
    mlirOperationRemoveFromParent(empty);
    mlirOperationDestroy(empty);

    // where the pad was: the source inserted (in place), then the border filled slice by slice
    let value = b.block.insert_operation_before(at_pad, melior::ir::Operation::from_raw(mlirOperationClone(constant))).result(0)?.to_raw();
    let mut result = b.insert_slice(source, whole, &interior_slice)?;
    for slice in border(&low, &interior.shape, &padded.shape) {
        let ty = Type::parse(context, &padded.with_shape(slice.sizes.clone()).to_string()).expect("a tensor type");
        let part = b.extract_slice(result, &slice, ty)?;
        let filled = b.fill(value, part)?;
        result = b.insert_slice(filled, result, &slice)?;
    }
    mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(pad, 0), result);
    mlirOperationRemoveFromParent(pad);
    mlirOperationDestroy(pad);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element of the padded tensor: in the interior, or in exactly one border slice.
    #[test]
    fn border_slices_cover_the_border_once() {
        let (low, interior, padded) = ([0, 1, 2], [2, 3, 4], [2, 5, 7]);
        let slices = border(&low, &interior, &padded);
        for i in 0..padded[0] {
            for j in 0..padded[1] {
                for k in 0..padded[2] {
                    let at = [i, j, k];
                    let inside = (0..3).all(|d| at[d] >= low[d] && at[d] < low[d] + interior[d]);
                    let covering = slices
                        .iter()
                        .filter(|s| (0..3).all(|d| at[d] >= s.offsets[d] && at[d] < s.offsets[d] + s.sizes[d]))
                        .count();
                    assert_eq!(covering, if inside { 0 } else { 1 }, "element {at:?}");
                }
            }
        }
        // dim 0 is not padded: two slices per padded dim
        assert_eq!(slices.len(), 4);
    }
}
