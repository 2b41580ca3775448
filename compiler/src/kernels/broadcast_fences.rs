//! Keeps elementwise fusion from copying costly math into a broadcast.
//!
//! `linalg-fuse-elementwise-ops` fuses any single-use elementwise producer
//! into its consumer, whatever map the consumer reads it through. When the
//! consumer reads it broadcast (a per-channel value over every pixel), the
//! fused op computes the producer's body once per element of the consumer
//! instead of once per element of the producer: efficientnet_b0's
//! squeeze-and-excite gates, `x * sigmoid(s)` with `s` per channel,
//! computed their sigmoid (an exp polynomial, ~30 ops) once per pixel
//! (3136 times per channel at 56x56); kept apart, the model takes 0.98 of
//! the time at 1 thread.
//!
//! Before fusion, such a producer's result goes through a fence, a
//! `bufferization.alloc_tensor` copy that fusion does not look through;
//! after fusion the fence is replaced by the value it copies. The producer
//! is then its own small op, and the consumer reads its result.

use super::analysis::{generic, users, Expr};
use crate::mlir::{name_of, InsertBefore};
use anyhow::Result;
use melior::ir::attribute::DenseI32ArrayAttribute;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::{Attribute, Identifier, Module, OperationRef, Value, ValueLike};
use melior::Context;
use mlir_sys::*;

/// The marker attribute of a fence.
const FENCE: &str = "aotc.fence";

/// The fewest ops in a producer's body worth keeping apart: an exp or tanh
/// polynomial (sigmoid, SiLU's gate, GELU) has 15-25; a scale, a shift or a
/// clamp a few, cheaper to recompute than to store and read back.
const COSTLY_BODY_OPS: usize = 12;

/// The least number of times the consumer reads each element of the
/// producer for the producer to be kept apart.
const MIN_BROADCAST: i64 = 16;

/// Puts a fence between every costly elementwise producer and the consumer
/// that reads it broadcast; returns how many.
pub fn fence_broadcast_producers(context: &Context, module: &Module) -> Result<usize> {
    let mut fenced = 0;
    for producer in super::ops_named(module, "linalg.generic") {
        let Some((consumer, operand)) = broadcast_consumer(producer) else { continue };
        unsafe {
            let value = Value::from_raw(mlirOperationGetResult(producer, 0));
            let insert = InsertBefore::new(context, OperationRef::from_raw(consumer));
            let fence = OperationBuilder::new("bufferization.alloc_tensor", insert.location)
                .add_operands(&[value])
                .add_results(&[value.r#type()])
                .add_attributes(&[
                    (Identifier::new(context, "operandSegmentSizes"), DenseI32ArrayAttribute::new(context, &[0, 1, 0]).into()),
                    (Identifier::new(context, FENCE), Attribute::unit(context)),
                ])
                .build()?;
            let copy = insert.insert(fence)?;
            mlirOperationSetOperand(consumer, operand, copy);
        }
        fenced += 1;
    }
    Ok(fenced)
}

/// Replaces every fence by the value it copies.
pub fn remove_fences(module: &Module) {
    for fence in super::ops_named(module, "bufferization.alloc_tensor") {
        if unsafe { OperationRef::from_raw(fence) }.attribute(FENCE).is_err() {
            continue;
        }
        unsafe {
            mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(fence, 0), mlirOperationGetOperand(fence, 0));
            mlirOperationDestroy(fence);
        }
    }
}

/// The consumer and operand position through which `producer`, if it is a
/// costly elementwise op with one result and one use, is read broadcast at
/// least [`MIN_BROADCAST`] times.
fn broadcast_consumer(producer: MlirOperation) -> Option<(MlirOperation, isize)> {
    let p = generic(producer)?;
    if !p.all_parallel() || p.operands.len() - p.inputs != 1 || body_ops(producer) < COSTLY_BODY_OPS {
        return None;
    }
    let [consumer] = users(producer)[..] else { return None };
    if name_of(consumer) != "linalg.generic" {
        return None;
    }
    let c = generic(consumer)?;
    let result = unsafe { mlirOperationGetResult(producer, 0) };
    let uses: Vec<usize> = (0..c.inputs).filter(|&i| unsafe { mlirValueEqual(mlirOperationGetOperand(consumer, i as isize), result) }).collect();
    let [operand] = uses[..] else { return None };
    let map = &c.operands[operand].1;
    let read_dims = map.iter().filter(|e| matches!(e, Expr::Dim(_))).count();
    let broadcast = read_dims < c.rank() && c.elements() >= MIN_BROADCAST * p.elements();
    broadcast.then_some((consumer, operand as isize))
}

/// The ops in the body of a linalg op, its terminator aside.
fn body_ops(op: MlirOperation) -> usize {
    unsafe {
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
        let mut count = 0usize;
        let mut o = mlirBlockGetFirstOperation(block);
        while !o.ptr.is_null() {
            count += 1;
            o = mlirOperationGetNextInBlock(o);
        }
        count.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producer of `ops` chained adds over [4] or [4, 64] (`shape`),
    /// read by a product over [4, 64] through `map`.
    fn program(ops: usize, shape: &str, map: &str) -> String {
        let chain: String = (0..ops).map(|i| format!("%v{} = arith.addf %v{i}, %v{i} : f32\n", i + 1)).collect();
        format!(
            "func.func @f(%s: tensor<{shape}xf32>, %x: tensor<4x64xf32>) -> tensor<4x64xf32> {{
               %e = tensor.empty() : tensor<{shape}xf32>
               %g = linalg.generic {{indexing_maps = [affine_map<(d0{p}) -> (d0{p})>, affine_map<(d0{p}) -> (d0{p})>], iterator_types = [\"parallel\"{pi}]}} ins(%s : tensor<{shape}xf32>) outs(%e : tensor<{shape}xf32>) {{
               ^bb0(%v0: f32, %o: f32):
                 {chain}
                 linalg.yield %v{ops} : f32
               }} -> tensor<{shape}xf32>
               %e2 = tensor.empty() : tensor<4x64xf32>
               %y = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> {map}>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = [\"parallel\", \"parallel\"]}} ins(%g, %x : tensor<{shape}xf32>, tensor<4x64xf32>) outs(%e2 : tensor<4x64xf32>) {{
               ^bb0(%a: f32, %b: f32, %o: f32):
                 %m = arith.mulf %a, %b : f32
                 linalg.yield %m : f32
               }} -> tensor<4x64xf32>
               return %y : tensor<4x64xf32>
             }}",
            p = if shape.contains('x') { ", d1" } else { "" },
            pi = if shape.contains('x') { ", \"parallel\"" } else { "" },
        )
    }

    fn fences(ops: usize, shape: &str, map: &str) -> usize {
        let context = aotc_dialects::new_context();
        let module = crate::mlir::parse(&context, &program(ops, shape, map), "test module").unwrap();
        let fenced = fence_broadcast_producers(&context, &module).unwrap();
        assert!(module.as_operation().verify());
        remove_fences(&module);
        assert!(module.as_operation().verify());
        assert!(!module.as_operation().to_string().contains(FENCE));
        fenced
    }

    #[test]
    fn only_costly_producers_read_broadcast_are_kept_apart() {
        // per row, read over 64 columns
        assert_eq!(fences(COSTLY_BODY_OPS, "4", "(d0)"), 1);
        assert_eq!(fences(COSTLY_BODY_OPS - 2, "4", "(d0)"), 0);
        // elementwise: each element read once
        assert_eq!(fences(COSTLY_BODY_OPS, "4x64", "(d0, d1)"), 0);
    }
}
