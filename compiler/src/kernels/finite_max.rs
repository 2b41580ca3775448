//! The row maximum that softmax and logsumexp subtract need not propagate
//! NaN (a NaN in the row makes every result of the row NaN through the exp
//! and the sum anyway), so the lowering marks it `arith.maximumf
//! fastmath<nnan>`, a combiner the vectorizer recognizes (its partial
//! results start at -inf). The LLVM lowering's `arith-expand` would turn it
//! into a NaN-checking compare and two selects (four instructions per
//! vector on x86, the cost of the whole pass); after vectorization it
//! becomes `select(a > b, a, b)` instead, which has defined NaN behavior
//! (a NaN element is skipped) and is one `max` instruction.

use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::{Attribute, BlockRef, Identifier, Module, OperationRef, Type, Value};
use melior::Context;
use mlir_sys::*;

/// Whether `op` is marked `nnan`.
fn is_finite_max(op: MlirOperation) -> bool {
    let op = unsafe { OperationRef::from_raw(op) };
    op.attribute("fastmath").is_ok_and(|a| a.to_string().contains("nnan"))
}

/// The `i1` type of the same shape as `ty` (a scalar or a vector).
fn bool_like(context: &Context, ty: MlirType) -> Type<'_> {
    unsafe {
        let i1 = mlirIntegerTypeGet(context.to_raw(), 1);
        if !mlirTypeIsAVector(ty) {
            return Type::from_raw(i1);
        }
        let shape: Vec<i64> = (0..mlirShapedTypeGetRank(ty)).map(|d| mlirShapedTypeGetDimSize(ty, d as isize)).collect();
        Type::from_raw(mlirVectorTypeGet(shape.len() as isize, shape.as_ptr(), i1))
    }
}

/// Rewrites every `arith.maximumf ... fastmath<nnan>` as a compare and a select.
pub fn lower(context: &Context, module: &Module) -> anyhow::Result<()> {
    let ogt = Attribute::parse(context, "2 : i64").expect("an integer attribute");
    for op in super::ops_named(module, "arith.maximumf") {
        if !is_finite_max(op) {
            continue;
        }
        unsafe {
            let anchor = OperationRef::from_raw(op);
            let location = anchor.location();
            let block = BlockRef::from_raw(mlirOperationGetBlock(op));
            let (a, b) = (Value::from_raw(mlirOperationGetOperand(op, 0)), Value::from_raw(mlirOperationGetOperand(op, 1)));
            let ty = mlirValueGetType(mlirOperationGetResult(op, 0));
            let compare = OperationBuilder::new("arith.cmpf", location)
                .add_operands(&[a, b])
                .add_attributes(&[(Identifier::new(context, "predicate"), ogt)])
                .add_results(&[bool_like(context, ty)])
                .build()?;
            let compare = block.insert_operation_before(anchor, compare);
            let select = OperationBuilder::new("arith.select", location)
                .add_operands(&[compare.result(0)?.into(), a, b])
                .add_results(&[Type::from_raw(ty)])
                .build()?;
            let select = block.insert_operation_before(anchor, select);
            mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(op, 0), melior::ir::ValueLike::to_raw(&select.result(0)?));
            mlirOperationRemoveFromParent(op);
            mlirOperationDestroy(op);
        }
    }
    Ok(())
}
