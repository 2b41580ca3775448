//! Epilogues: the elementwise op that reads a product's result (a linear
//! layer's GELU, a residual add) computed on the product's register tiles
//! before they are stored, so the result is written once, by the thread
//! that computed it, and never read back from memory.
//!
//! A product on packed panels computes `[M, N/16, 16]`; the op after it
//! sees `[M, N]` (or `[1, M, N]`) through reshapes, which stop tile-and-fuse.
//! [`panel_epilogue`] finds such an op and makes it compute in the
//! product's shape: each of its operands is reshaped to `[M, N/16, 16]`
//! (the same elements in the same order: every operand is read through the
//! identity map), and its result is reshaped back for its users. The matmul
//! strategy then tiles the epilogue as the root and fuses the product (and
//! the product's init) into its tiles: the product's accumulators, still
//! in registers after the K loop, are the epilogue's operand.

use super::analysis::{self, value_type};
use crate::mlir::{op_name, single_user};
use anyhow::{anyhow, Result};
use aotc_dialects::types::{mlir_elem, Ty};
use melior::ir::operation::{OperationBuilder, OperationLike, OperationRef};
use melior::ir::attribute::AttributeLike;
use melior::ir::r#type::TypeLike;
use melior::ir::{Attribute, BlockLike, BlockRef, Identifier, Location, Type, Value, ValueLike};
use melior::Context;
use mlir_sys::*;

/// The elementwise op that is the only reader of panel product `product`'s
/// result (through reshapes that only the chain uses), if it can become
/// the product's epilogue: an all-parallel `linalg.generic` in the same
/// block with one result, that reads the product as an input, every
/// operand through the identity map with the product's element count, and
/// a body that neither gathers, asks for its indices, calls scalar math
/// nor holds bools in memory.
pub fn panel_epilogue(product: MlirOperation) -> Option<MlirOperation> {
    let (result, elements) = unsafe {
        let result = mlirOperationGetResult(product, 0);
        (result, value_type(&Value::from_raw(result))?.numel())
    };
    let mut value = result;
    let consumer = loop {
        let user = single_user(value)?;
        match op_name(user).as_str() {
            "tensor.collapse_shape" | "tensor.expand_shape" => value = unsafe { mlirOperationGetResult(user, 0) },
            "linalg.generic" => break user,
            _ => return None,
        }
    };
    let g = analysis::generic(consumer)?;
    let same_block = unsafe { mlirBlockEqual(mlirOperationGetBlock(consumer), mlirOperationGetBlock(product)) };
    let as_input = (0..g.inputs).any(|i| unsafe { mlirValueEqual(mlirOperationGetOperand(consumer, i as isize), value) });
    let fits = same_block
        && as_input
        && g.all_parallel()
        && g.identity()
        && g.vectorizable()
        && g.operands.len() == g.inputs + 1
        && g.operands.iter().all(|(ty, _)| ty.numel() == elements)
        && !g.reads_indices;
    fits.then_some(consumer)
}

/// Makes `epilogue` (found by [`panel_epilogue`]) compute in the shape of
/// `product`'s result and read it directly (see the module docs).
pub fn reshape_to_panels(context: &Context, product: MlirOperation, epilogue: MlirOperation) -> Result<()> {
    let panels = unsafe { mlirOperationGetResult(product, 0) };
    let shape = value_type(&unsafe { Value::from_raw(panels) }).ok_or_else(|| anyhow!("a product of unknown shape"))?.shape;
    let op = unsafe { OperationRef::from_raw(epilogue) };
    let reshapes = Reshapes::new(context, op);
    for i in 0..op.operand_count() {
        let operand = op.operand(i)?;
        let from_product = operand_reaches(operand.to_raw(), panels);
        let new = if from_product { panels } else { reshapes.insert_before(operand.to_raw(), &shape)? };
        unsafe { mlirOperationSetOperand(epilogue, i as isize, new) };
        if from_product {
            erase_unused_reshapes(operand.to_raw());
        }
    }
    let rank = shape.len();
    let identity = format!("affine_map<({0}) -> ({0})>", (0..rank).map(|d| format!("d{d}")).collect::<Vec<_>>().join(", "));
    let maps = vec![identity; op.operand_count()].join(", ");
    let iterators = vec!["#linalg.iterator_type<parallel>"; rank].join(", ");
    set_attribute(context, epilogue, "indexing_maps", &format!("[{maps}]"))?;
    set_attribute(context, epilogue, "iterator_types", &format!("[{iterators}]"))?;
    let result = op.result(0)?.to_raw();
    let old = value_type(&op.result(0)?.into()).ok_or_else(|| anyhow!("an epilogue of unknown shape"))?;
    unsafe { mlirValueSetType(result, reshapes.tensor_type(&old.with_shape(shape))?.to_raw()) };
    reshapes.insert_after(result, &old)
}

/// Whether `value` is `target`, or a reshape of it (the chain
/// [`panel_epilogue`] walked).
fn operand_reaches(value: MlirValue, target: MlirValue) -> bool {
    let mut v = value;
    loop {
        if unsafe { mlirValueEqual(v, target) } {
            return true;
        }
        if !unsafe { mlirValueIsAOpResult(v) } {
            return false;
        }
        let owner = unsafe { mlirOpResultGetOwner(v) };
        if !matches!(op_name(owner).as_str(), "tensor.collapse_shape" | "tensor.expand_shape") {
            return false;
        }
        v = unsafe { mlirOperationGetOperand(owner, 0) };
    }
}

/// Erases the reshapes that led to `value` now that nothing reads them:
/// they would keep the product alive beside its copy that tile-and-fuse
/// puts in the epilogue's tiles (and the script would tile both).
fn erase_unused_reshapes(value: MlirValue) {
    let mut v = value;
    unsafe {
        while mlirValueIsAOpResult(v) && mlirValueGetFirstUse(v).ptr.is_null() {
            let owner = mlirOpResultGetOwner(v);
            if !matches!(op_name(owner).as_str(), "tensor.collapse_shape" | "tensor.expand_shape") {
                return;
            }
            v = mlirOperationGetOperand(owner, 0);
            mlirOperationDestroy(owner);
        }
    }
}

fn set_attribute(context: &Context, op: MlirOperation, name: &str, text: &str) -> Result<()> {
    let attribute = Attribute::parse(context, text).ok_or_else(|| anyhow!("bad attribute {text}"))?;
    let name = melior::StringRef::new(name);
    unsafe { mlirOperationSetAttributeByName(op, name.to_raw(), attribute.to_raw()) };
    Ok(())
}

/// Builds the reshapes around one epilogue: through one dim, which keeps
/// the elements' order whatever the two shapes.
struct Reshapes<'c, 'a> {
    context: &'c Context,
    block: BlockRef<'c, 'a>,
    anchor: OperationRef<'c, 'a>,
    location: Location<'c>,
}

impl<'c, 'a> Reshapes<'c, 'a> {
    fn new(context: &'c Context, anchor: OperationRef<'c, 'a>) -> Self {
        let block = unsafe { BlockRef::from_raw(mlirOperationGetBlock(anchor.to_raw())) };
        Reshapes { context, block, anchor, location: anchor.location() }
    }

    fn tensor_type(&self, ty: &Ty) -> Result<Type<'c>> {
        let dims: String = ty.shape.iter().map(|d| format!("{d}x")).collect();
        let text = format!("tensor<{dims}{}>", mlir_elem(&ty.elem));
        Type::parse(self.context, &text).ok_or_else(|| anyhow!("bad type {text}"))
    }

    /// `value` reshaped to `shape`, inserted before the epilogue.
    fn insert_before(&self, value: MlirValue, shape: &[i64]) -> Result<MlirValue> {
        let ty = value_type(&unsafe { Value::from_raw(value) }).ok_or_else(|| anyhow!("an operand of unknown shape"))?;
        let mut ops = self.ops(value, &ty, &ty.with_shape(shape.to_vec()))?.into_iter();
        let Some(first) = ops.next() else { return Ok(value) };
        let mut last = self.block.insert_operation_before(self.anchor, first);
        for op in ops {
            last = self.block.insert_operation_after(last, op);
        }
        Ok(last.result(0)?.to_raw())
    }

    /// Gives every user of `value` (the epilogue's result, now in the
    /// product's shape) the value reshaped back to `old`.
    fn insert_after(&self, value: MlirValue, old: &Ty) -> Result<()> {
        let ty = value_type(&unsafe { Value::from_raw(value) }).ok_or_else(|| anyhow!("a result of unknown shape"))?;
        let mut last = self.anchor;
        let mut first = None;
        for op in self.ops(value, &ty, old)? {
            last = self.block.insert_operation_after(last, op);
            first.get_or_insert(last.to_raw());
        }
        let Some(first) = first else { return Ok(()) };
        let mut except = [first];
        unsafe { mlirValueReplaceAllUsesExcept(value, last.result(0)?.to_raw(), 1, except.as_mut_ptr()) };
        Ok(())
    }

    /// The collapse to one dim and the expansion to `to` that take `value`
    /// (of type `from`) to `to` (none where a side has one dim already).
    fn ops(&self, value: MlirValue, from: &Ty, to: &Ty) -> Result<Vec<melior::ir::Operation<'c>>> {
        let flat = from.with_shape(vec![from.numel()]);
        let all_dims = |rank: usize| format!("[[{}]]", (0..rank).map(|d| d.to_string()).collect::<Vec<_>>().join(", "));
        let attribute = |text: String| Attribute::parse(self.context, &text).ok_or_else(|| anyhow!("bad attribute {text}"));
        let mut ops = Vec::new();
        let mut current = unsafe { Value::from_raw(value) };
        if from.rank() > 1 {
            let op = OperationBuilder::new("tensor.collapse_shape", self.location)
                .add_operands(&[current])
                .add_attributes(&[(Identifier::new(self.context, "reassociation"), attribute(all_dims(from.rank()))?)])
                .add_results(&[self.tensor_type(&flat)?])
                .build()?;
            current = unsafe { Value::from_raw(op.result(0)?.to_raw()) };
            ops.push(op);
        }
        if to.rank() > 1 {
            let sizes = to.shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            let op = OperationBuilder::new("tensor.expand_shape", self.location)
                .add_operands(&[current])
                .add_attributes(&[
                    (Identifier::new(self.context, "reassociation"), attribute(all_dims(to.rank()))?),
                    (Identifier::new(self.context, "static_output_shape"), attribute(format!("array<i64: {sizes}>"))?),
                ])
                .add_results(&[self.tensor_type(to)?])
                .build()?;
            ops.push(op);
        }
        Ok(ops)
    }
}
