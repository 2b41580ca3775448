//! Software prefetch of the next row in row chains (softmax, log_softmax,
//! layer and RMS norm: see `rows`).
//!
//! A row chain makes several passes over each row: softmax reads the row
//! for its maximum, computes the exponentials, sums them, scales them. Only
//! the first pass reads from memory; the others work in L1 and keep the
//! FP units busy while memory idles, so each row starts with a stall the
//! hardware prefetcher does not hide (it follows the loads, and the loads
//! of the next row only start after the current row is done). Here the
//! heaviest pass over row i also prefetches row i + 1 of every input the
//! chain reads, one cache line per line of the pass's step:
//!
//! ```text
//! scf.for %i = 0 to R {                          // tagged `aotc.rows`
//!   %row = memref.subview %x[%i, 0] [1, N]
//!   scf.for %j = 0 to N step S { ... }           // max
//!   scf.for %j = 0 to N step S {                 // exp: the heaviest pass
//!     memref.prefetch %x[min(%i + 1, R - 1), %j + 16 k], read, locality<3>, data   (k = 0 .. S/16)
//!     ...
//! ```
//!
//! softmax over 1200 x 1024: 0.372 -> 0.342 ms. It runs after
//! bufferization, on memrefs: the row loop comes from the `rows` strategy,
//! which tags it.

use crate::mlir::{op_name, InsertBefore};
use melior::ir::attribute::{BoolAttribute, IntegerAttribute};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::r#type::IntegerType;
use melior::ir::{BlockRef, Identifier, Module, OperationRef, Value, ValueLike};
use melior::Context;
use mlir_sys::*;

/// The discardable attribute on the loop over rows of a row chain.
pub const ROW_LOOP: &str = "aotc.rows";

/// Bytes in a cache line (x86 and most ARM cores).
const CACHE_LINE: i64 = 64;

/// Adds the next-row prefetches to every tagged row loop.
pub fn prefetch_next_rows(context: &Context, module: &Module) -> anyhow::Result<()> {
    for row_loop in super::ops_named(module, "scf.for") {
        if unsafe { has_attribute(row_loop, ROW_LOOP) } {
            unsafe { prefetch_in(context, row_loop)? };
        }
    }
    Ok(())
}

unsafe fn has_attribute(op: MlirOperation, name: &str) -> bool {
    let name = std::ffi::CString::new(name).expect("no NUL");
    !mlirOperationGetDiscardableAttributeByName(op, mlirStringRefCreateFromCString(name.as_ptr())).ptr.is_null()
}

fn static_array(op: MlirOperation, name: &std::ffi::CStr) -> Option<Vec<i64>> {
    unsafe {
        let attr = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name.as_ptr()));
        if attr.ptr.is_null() || !mlirAttributeIsADenseI64Array(attr) {
            return None;
        }
        Some((0..mlirDenseArrayGetNumElements(attr)).map(|i| mlirDenseI64ArrayGetElement(attr, i)).collect())
    }
}

/// One row of an input: `memref.subview %source[.., %i, .., 0] [1, .., 1, N] [1, ..]`
/// with the row loop's index at `dim`.
struct InputRow {
    source: MlirValue,
    rank: usize,
    dim: usize,
    length: i64,
    element_bytes: i64,
}

/// The row of an input that `subview` takes, if it is one: a unit-stride
/// row of a static memref defined outside the loop, indexed by the loop's
/// index alone, and only read.
unsafe fn input_row(subview: MlirOperation, body: MlirBlock, index: MlirValue) -> Option<InputRow> {
    if op_name(subview) != "memref.subview" || mlirOperationGetNumOperands(subview) != 2 {
        return None;
    }
    let source = mlirOperationGetOperand(subview, 0);
    let defined_in_body = if mlirValueIsAOpResult(source) {
        mlirBlockEqual(mlirOperationGetBlock(mlirOpResultGetOwner(source)), body)
    } else {
        mlirBlockEqual(mlirBlockArgumentGetOwner(source), body)
    };
    if defined_in_body || !mlirValueEqual(mlirOperationGetOperand(subview, 1), index) {
        return None;
    }
    let (offsets, sizes, strides) =
        (static_array(subview, c"static_offsets")?, static_array(subview, c"static_sizes")?, static_array(subview, c"static_strides")?);
    let rank = offsets.len();
    let dim = offsets.iter().position(|&o| o == i64::MIN)?;
    let unit_rows = sizes[..rank - 1].iter().all(|&s| s == 1);
    let starts_at_zero = offsets.iter().enumerate().all(|(d, &o)| d == dim || o == 0);
    if rank < 2 || dim + 1 >= rank || !unit_rows || !starts_at_zero || strides.iter().any(|&s| s != 1) {
        return None;
    }
    let source_type = mlirValueGetType(source);
    if !mlirTypeIsAMemRef(source_type) || !mlirShapedTypeHasStaticShape(source_type) {
        return None;
    }
    let element = mlirShapedTypeGetElementType(source_type);
    let bits = if mlirTypeIsAFloat(element) { mlirFloatTypeGetWidth(element) as i64 } else { return None };
    only_read(mlirOperationGetResult(subview, 0)).then_some(InputRow {
        source,
        rank,
        dim,
        length: sizes[rank - 1],
        element_bytes: bits / 8,
    })
}

/// Whether every use of `view` (through subviews) reads it.
unsafe fn only_read(view: MlirValue) -> bool {
    let mut use_ = mlirValueGetFirstUse(view);
    while !mlirOpOperandIsNull(use_) {
        let user = mlirOpOperandGetOwner(use_);
        let reads = match op_name(user).as_str() {
            "memref.subview" => only_read(mlirOperationGetResult(user, 0)),
            "vector.transfer_read" | "memref.load" | "vector.load" => true,
            _ => false,
        };
        if !reads {
            return false;
        }
        use_ = mlirOpOperandGetNextUse(use_);
    }
    true
}

/// How many ops `op` holds, itself included.
fn weight(op: MlirOperation) -> usize {
    let mut count = 0;
    unsafe { OperationRef::from_raw(op) }.walk(melior::ir::operation::WalkOrder::PreOrder, |_| {
        count += 1;
        melior::ir::operation::WalkResult::Advance
    });
    count
}

unsafe fn prefetch_in(context: &Context, row_loop: MlirOperation) -> anyhow::Result<()> {
    let Some((0, rows, 1)) = crate::mlir::constant_loop_bounds(row_loop) else { return Ok(()) };
    let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(row_loop, 0));
    let index = mlirBlockGetArgument(body, 0);
    let mut inputs = Vec::new();
    let mut passes = Vec::new();
    let mut op = mlirBlockGetFirstOperation(body);
    while !op.ptr.is_null() {
        if let Some(row) = input_row(op, body, index) {
            inputs.push(row);
        } else if op_name(op) == "scf.for" {
            passes.push(op);
        }
        op = mlirOperationGetNextInBlock(op);
    }
    // Prefetching pays when other passes follow the one that reads the row.
    if rows < 2 || passes.len() < 2 || inputs.is_empty() {
        return Ok(());
    }
    let Some(&heaviest) = passes.iter().max_by_key(|&&p| weight(p)) else { return Ok(()) };
    let Some((0, length, step)) = crate::mlir::constant_loop_bounds(heaviest) else { return Ok(()) };
    let inner_body = BlockRef::from_raw(mlirRegionGetFirstBlock(mlirOperationGetRegion(heaviest, 0)));
    let Some(first) = inner_body.first_operation() else { return Ok(()) };
    let b = InsertBefore::new(context, first);
    let column = inner_body.argument(0)?.to_raw();
    let next_row = b.index_op("arith.addi", index, b.index(1)?)?;
    let next_row = b.index_op("arith.minui", next_row, b.index(rows - 1)?)?;
    for row in inputs.iter().filter(|r| r.length == length) {
        let per_line = (CACHE_LINE / row.element_bytes).max(1);
        let zero = b.index(0)?;
        for line in 0..(step + per_line - 1) / per_line {
            let offset = b.index(line * per_line)?;
            let at = b.index_op("arith.addi", column, offset)?;
            let indices: Vec<MlirValue> = (0..row.rank)
                .map(|d| if d == row.dim { next_row } else if d + 1 == row.rank { at } else { zero })
                .collect();
            b.prefetch(row.source, &indices)?;
        }
    }
    Ok(())
}

/// The ops of the prefetches.
impl InsertBefore<'_, '_> {
    /// `memref.prefetch %source[indices], read, locality<3>, data`.
    fn prefetch(&self, source: MlirValue, indices: &[MlirValue]) -> anyhow::Result<()> {
        let operands: Vec<Value> = std::iter::once(source).chain(indices.iter().copied()).map(|v| unsafe { Value::from_raw(v) }).collect();
        let op = OperationBuilder::new("memref.prefetch", self.location)
            .add_operands(&operands)
            .add_attributes(&[
                (Identifier::new(self.context, "isWrite"), BoolAttribute::new(self.context, false).into()),
                (Identifier::new(self.context, "localityHint"), IntegerAttribute::new(IntegerType::new(self.context, 32).into(), 3).into()),
                (Identifier::new(self.context, "isDataCache"), BoolAttribute::new(self.context, true).into()),
            ])
            .build()?;
        self.insert_without_result(op);
        Ok(())
    }
}
