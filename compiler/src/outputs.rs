//! Results computed straight into the caller's output buffers.
//!
//! Each result of the program is written into its output memref by a
//! `bufferization.materialize_in_destination`. When the value is computed
//! into a `tensor.empty` of its own (through the loops, slices, vector
//! writes and reshapes that the kernels made of it), that empty tensor is
//! replaced by the output buffer itself (`bufferization.to_tensor ...
//! restrict writable`, reshaped as the chain requires): the kernel then
//! writes the caller's buffer and the copy out of the arena disappears.
//! MLIR's own `eliminate-empty-tensors` stops at reshapes, which the
//! elementwise kernels introduce when they flatten.
//!
//! Bufferization still decides: if an in-place write would clobber
//! something still needed, it copies. An empty tensor used by anything
//! else is left alone (two results must never share one).

use crate::mlir::{op_name, single_user};
use anyhow::Result;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::{Attribute, Identifier, Module, Type, ValueLike};
use melior::Context;
use mlir_sys::*;

/// A reshape on the way from the result back to its empty tensor.
pub(crate) struct Reshape {
    expand: bool,
    reassociation: MlirAttribute,
    /// The type of the reshape's operand (the side of the empty tensor).
    operand_type: MlirType,
}

/// Whether `consumer` is the only user of `v`, but for the slice of `v`
/// that `consumer`, a `tensor.insert_slice`, writes back: a kernel split
/// in parts computes each part in its slice of the result (extracted,
/// computed, inserted back in place).
unsafe fn only_user_but_its_slice(v: MlirValue, consumer: MlirOperation) -> bool {
    let slice_attribute = |op: MlirOperation, name: &std::ffi::CStr| mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name.as_ptr()));
    let same_static_slice = |extract: MlirOperation| {
        mlirOperationGetNumOperands(extract) == 1
            && mlirOperationGetNumOperands(consumer) == 2
            && [c"static_offsets", c"static_sizes", c"static_strides"]
                .iter()
                .all(|n| mlirAttributeEqual(slice_attribute(extract, n), slice_attribute(consumer, n)))
    };
    let inserts = op_name(consumer) == "tensor.insert_slice";
    let mut operand = mlirValueGetFirstUse(v);
    while !operand.ptr.is_null() {
        let user = mlirOpOperandGetOwner(operand);
        let its_slice = inserts && op_name(user) == "tensor.extract_slice" && same_static_slice(user);
        if !mlirOperationEqual(user, consumer) && !its_slice {
            return false;
        }
        operand = mlirOpOperandGetNextUse(operand);
    }
    true
}

/// Follows a value back through the ops that compute it in place (into an
/// operand of theirs) to the `tensor.empty` it starts from, if any. Every
/// value on the way must have no other use (but the slice an insert
/// writes back, see [`only_user_but_its_slice`]): a shared init (two
/// results filled from one `linalg.fill`) would make both results one
/// buffer.
pub(crate) fn empty_origin(mut v: MlirValue, reshapes: &mut Vec<Reshape>) -> Option<MlirOperation> {
    unsafe {
        let mut consumer: Option<MlirOperation> = None;
        loop {
            let shared = match consumer {
                None => false,
                Some(c) => single_user(v).is_none() && !only_user_but_its_slice(v, c),
            };
            if !mlirValueIsAOpResult(v) || shared {
                return None;
            }
            let op = mlirOpResultGetOwner(v);
            consumer = Some(op);
            let index = mlirOpResultGetResultNumber(v) as isize;
            let operands = mlirOperationGetNumOperands(op);
            let results = mlirOperationGetNumResults(op);
            let name = op_name(op);
            v = match name.as_str() {
                "tensor.empty" => return Some(op),
                "tensor.expand_shape" | "tensor.collapse_shape" => {
                    let source = mlirOperationGetOperand(op, 0);
                    let reassociation = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(c"reassociation".as_ptr()));
                    reshapes.push(Reshape { expand: name == "tensor.expand_shape", reassociation, operand_type: mlirValueGetType(source) });
                    source
                }
                // loop results are their iteration arguments, updated in place
                "scf.for" => mlirOperationGetOperand(op, 3 + index),
                "tensor.insert_slice" => mlirOperationGetOperand(op, 1),
                "vector.transfer_write" => mlirOperationGetOperand(op, 1),
                // destination-passing ops: result k is written into init k
                n if n.starts_with("linalg.") && operands >= results => mlirOperationGetOperand(op, operands - results + index),
                _ => return None,
            };
        }
    }
}

/// Replaces, for every result it can, the empty tensor the result is
/// computed into with the result's output buffer.
pub fn compute_in_place(context: &Context, module: &Module) -> Result<()> {
    let materializes = crate::kernels::ops_named(module, "bufferization.materialize_in_destination");
    let unit = Attribute::parse(context, "unit").expect("unit attribute");
    for op in materializes {
        unsafe {
            let source = mlirOperationGetOperand(op, 0);
            let dest = mlirOperationGetOperand(op, 1);
            if !mlirTypeIsAMemRef(mlirValueGetType(dest)) {
                continue;
            }
            let mut reshapes = Vec::new();
            let Some(empty) = empty_origin(source, &mut reshapes) else { continue };
            let location = melior::ir::OperationRef::from_raw(empty).location();
            let block = melior::ir::BlockRef::from_raw(mlirOperationGetBlock(empty));
            let anchor = melior::ir::OperationRef::from_raw(empty);
            use melior::ir::block::BlockLike;
            let to_tensor = OperationBuilder::new("bufferization.to_tensor", location)
                .add_operands(&[melior::ir::Value::from_raw(dest)])
                .add_attributes(&[(Identifier::new(context, "restrict"), unit), (Identifier::new(context, "writable"), unit)])
                .add_results(&[Type::from_raw(mlirValueGetType(source))])
                .build()?;
            let mut value = block.insert_operation_before(anchor, to_tensor).result(0)?.to_raw();
            // undo the reshapes, from the result's side to the empty tensor's
            for r in &reshapes {
                let target = Type::from_raw(r.operand_type);
                let mut builder = OperationBuilder::new(if r.expand { "tensor.collapse_shape" } else { "tensor.expand_shape" }, location)
                    .add_operands(&[melior::ir::Value::from_raw(value)])
                    .add_attributes(&[(Identifier::new(context, "reassociation"), Attribute::from_raw(r.reassociation))])
                    .add_results(&[target]);
                if !r.expand {
                    let shape = aotc_dialects::types::Ty::parse(&target.to_string())
                        .ok_or_else(|| anyhow::anyhow!("internal error: a reshape to {target}"))?
                        .shape;
                    let static_shape = crate::mlir::dense_array(context, "i64", &shape);
                    builder = builder.add_attributes(&[(Identifier::new(context, "static_output_shape"), static_shape)]);
                }
                let reshaped = block.insert_operation_before(anchor, builder.build()?);
                value = reshaped.result(0)?.to_raw();
            }
            mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(empty, 0), value);
            mlirOperationRemoveFromParent(empty);
            mlirOperationDestroy(empty);
        }
    }
    Ok(())
}
