//! Vector reads and writes of short rows that lie back to back in memory,
//! made one 1-d transfer. A transposed read tiled into blocks (a row's
//! pairs, read as `vector<16x2xf32>` from a view [16, 2] with strides
//! [2, 1], then shuffled into two rows of 16) is one contiguous run of 32
//! elements, but the LLVM lowering (`convert-vector-to-scf` with full
//! unrolling) transfers an n-d vector one innermost row at a time: 16
//! loads of 2 elements and 16 inserts, most of the time of a max pool's or
//! a strided convolution's phase copies. Here such a transfer becomes one
//! of a collapsed view of the memref (`memref.collapse_shape`), the vector
//! shape-cast to and from 1-d, which LLVM makes whole-vector loads and
//! stores (a Winograd transform's tiles written as `vector<14x4xf32>`:
//! 4 stores, not 14). Transfers whose rows are a vector or more already
//! move whole vectors and are left alone.

use super::Target;
use anyhow::{anyhow, Result};
use melior::ir::operation::{OperationBuilder, OperationLike};
use crate::mlir::{constant_integer, InsertBefore};
use melior::ir::{Attribute, Identifier, Location, Module, Operation, OperationRef, Type, Value};
use melior::Context;
use mlir_sys::*;

/// A `vector.transfer_read` or `vector.transfer_write`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Read,
    Write,
}

impl Kind {
    /// The memref's operand: a read's first, a write's second (after the
    /// value); its indices follow it.
    fn memref_operand(self) -> usize {
        match self {
            Kind::Read => 0,
            Kind::Write => 1,
        }
    }

    /// The vector's type: a read's result, a written value's.
    unsafe fn vector_type(self, op: MlirOperation) -> MlirType {
        match self {
            Kind::Read => mlirValueGetType(mlirOperationGetResult(op, 0)),
            Kind::Write => mlirValueGetType(mlirOperationGetOperand(op, 0)),
        }
    }
}

/// A transfer between a vector and the last `k` dims of a memref (the
/// vector's) that are one contiguous run of memory.
struct FlatTransfer {
    op: MlirOperation,
    kind: Kind,
    /// The memref's shape and strides (its layout's).
    shape: Vec<i64>,
    strides: Vec<i64>,
    /// The layout's offset (`i64::MIN` when dynamic); `None` for the
    /// identity layout.
    offset: Option<i64>,
    /// The vector's shape.
    vector: Vec<i64>,
}

impl FlatTransfer {
    /// The transfer `op`, when it is unmasked, in bounds, moves the last
    /// dims of its memref in order (a minor identity), its rows are shorter
    /// than a vector register of `target`, every dim of the vector but the
    /// first is a whole dim of the memref from 0, and those dims are
    /// contiguous.
    fn of(op: MlirOperation, kind: Kind, target: &Target) -> Option<FlatTransfer> {
        unsafe {
            let m = kind.memref_operand();
            let memref = mlirValueGetType(mlirOperationGetOperand(op, m as isize));
            let vector_ty = kind.vector_type(op);
            if !mlirTypeIsAMemRef(memref) || !mlirShapedTypeHasStaticShape(memref) || !mlirTypeIsAVector(vector_ty) {
                return None;
            }
            let rank = mlirShapedTypeGetRank(memref) as usize;
            let k = mlirShapedTypeGetRank(vector_ty) as usize;
            // a read: memref, indices, padding; a write: value, memref, indices
            if k < 2 || k > rank || mlirOperationGetNumOperands(op) != (rank + 2) as isize {
                return None;
            }
            let transfer = OperationRef::from_raw(op);
            let in_bounds = transfer.attribute("in_bounds").ok()?.to_string();
            let map = transfer.attribute("permutation_map").ok()?.to_string();
            if in_bounds != format!("[{}]", vec!["true"; k].join(", ")) || map != minor_identity(rank, k) {
                return None;
            }
            let shape: Vec<i64> = (0..rank).map(|d| mlirShapedTypeGetDimSize(memref, d as isize)).collect();
            let vector: Vec<i64> = (0..k).map(|d| mlirShapedTypeGetDimSize(vector_ty, d as isize)).collect();
            // (0 for elements of no whole number of bytes: bools stay)
            let element_bits = 8 * crate::arena_copies::element_bytes(vector_ty) as i64;
            if element_bits == 0 || vector[k - 1] * element_bits >= target.vector_bits as i64 {
                return None;
            }
            let layout = mlirMemRefTypeGetLayout(memref);
            let identity = mlirAttributeIsAAffineMap(layout) && mlirAffineMapIsIdentity(mlirAffineMapAttrGetValue(layout));
            let mut strides = vec![0i64; rank];
            let mut offset = 0i64;
            if mlirMemRefTypeGetStridesAndOffset(memref, strides.as_mut_ptr(), &mut offset).value == 0 {
                return None;
            }
            let first = rank - k;
            let whole_rows = (1..k).all(|d| vector[d] == shape[first + d] && constant_integer(mlirOperationGetOperand(op, (m + 1 + first + d) as isize)) == Some(0));
            let contiguous = strides[rank - 1] == 1 && (first..rank - 1).all(|d| strides[d] == strides[d + 1] * shape[d + 1]);
            (whole_rows && contiguous).then_some(FlatTransfer { op, kind, shape, strides, offset: (!identity).then_some(offset), vector })
        }
    }

    /// Replaces the transfer with a 1-d one of the collapsed memref, the
    /// vector shape-cast from (read) or to (write) 1-d.
    fn rewrite(&self, context: &Context) -> Result<()> {
        let (rank, k) = (self.shape.len(), self.vector.len());
        let first = rank - k;
        let m = self.kind.memref_operand();
        let attribute = |text: String| Attribute::parse(context, &text).ok_or_else(|| anyhow!("bad attribute {text}"));
        let parse_type = |text: String| Type::parse(context, &text).ok_or_else(|| anyhow!("bad type {text}"));
        unsafe {
            let at = InsertBefore::new(context, OperationRef::from_raw(self.op));
            let operand = |i: usize| mlirOperationGetOperand(self.op, i as isize);
            let vector = self.kind.vector_type(self.op);
            let (vector_ty, element) = (Type::from_raw(vector), Type::from_raw(mlirShapedTypeGetElementType(vector)));
            // the memref with its last k dims as one
            let run: i64 = self.shape[first..].iter().product();
            let sizes: Vec<String> = self.shape[..first].iter().copied().chain([run]).map(|s| s.to_string()).collect();
            let layout = match self.offset {
                None => String::new(),
                Some(offset) => {
                    let strides: Vec<String> = self.strides[..first].iter().copied().chain([1]).map(|s| s.to_string()).collect();
                    let offset = if offset == i64::MIN { "?".to_string() } else { offset.to_string() };
                    format!(", strided<[{}], offset: {offset}>", strides.join(", "))
                }
            };
            let collapsed_ty = parse_type(format!("memref<{}x{element}{layout}>", sizes.join("x")))?;
            let groups: Vec<String> =
                (0..first).map(|d| format!("[{d}]")).chain([format!("[{}]", (first..rank).map(|d| d.to_string()).collect::<Vec<_>>().join(", "))]).collect();
            let collapse = OperationBuilder::new("memref.collapse_shape", at.location)
                .add_operands(&[Value::from_raw(operand(m))])
                .add_attributes(&[(Identifier::new(context, "reassociation"), attribute(format!("[{}]", groups.join(", ")))?)])
                .add_results(&[collapsed_ty])
                .build()?;
            let collapsed = at.insert(collapse)?;
            // the run's first element: row i of the first vector dim
            let row = operand(m + 1 + first);
            let start = if constant_integer(row) == Some(0) {
                row
            } else {
                let row_elements = at.index(self.shape[first + 1..].iter().product())?;
                at.index_op("arith.muli", row, row_elements)?
            };
            let indices = (0..first).map(|d| operand(m + 1 + d)).chain([start]);
            let flat_ty = parse_type(format!("vector<{}x{element}>", self.vector.iter().product::<i64>()))?;
            let flat_attributes = |segments: String| -> Result<Vec<(Identifier, Attribute)>> {
                Ok(vec![
                    (Identifier::new(context, "in_bounds"), attribute("[true]".to_string())?),
                    (Identifier::new(context, "permutation_map"), attribute(minor_identity(first + 1, 1))?),
                    (Identifier::new(context, "operandSegmentSizes"), attribute(format!("array<i32: {segments}>"))?),
                ])
            };
            match self.kind {
                Kind::Read => {
                    let padding = operand(m + 1 + rank);
                    let operands: Vec<Value> = [collapsed].into_iter().chain(indices).chain([padding]).map(|v| Value::from_raw(v)).collect();
                    let read = OperationBuilder::new("vector.transfer_read", at.location)
                        .add_operands(&operands)
                        .add_attributes(&flat_attributes(format!("1, {}, 1, 0", first + 1))?)
                        .add_results(&[flat_ty])
                        .build()?;
                    let read = at.insert(read)?;
                    let cast = at.insert(shape_cast(at.location, Value::from_raw(read), vector_ty)?)?;
                    mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(self.op, 0), cast);
                }
                Kind::Write => {
                    let cast = at.insert(shape_cast(at.location, Value::from_raw(operand(0)), flat_ty)?)?;
                    let operands: Vec<Value> = [cast, collapsed].into_iter().chain(indices).map(|v| Value::from_raw(v)).collect();
                    let write = OperationBuilder::new("vector.transfer_write", at.location)
                        .add_operands(&operands)
                        .add_attributes(&flat_attributes(format!("1, 1, {}, 0", first + 1))?)
                        .build()?;
                    at.insert_without_result(write);
                }
            }
            mlirOperationRemoveFromParent(self.op);
            mlirOperationDestroy(self.op);
        }
        Ok(())
    }
}

/// `vector.shape_cast` of `value` to `to`.
fn shape_cast<'c>(location: Location<'c>, value: Value<'c, '_>, to: Type<'c>) -> Result<Operation<'c>> {
    Ok(OperationBuilder::new("vector.shape_cast", location).add_operands(&[value]).add_results(&[to]).build()?)
}

/// `affine_map<(d0, .., d{rank-1}) -> (d{rank-k}, .., d{rank-1})>`.
fn minor_identity(rank: usize, k: usize) -> String {
    let dims = |range: std::ops::Range<usize>| range.map(|d| format!("d{d}")).collect::<Vec<_>>().join(", ");
    format!("affine_map<({}) -> ({})>", dims(0..rank), dims(rank - k..rank))
}

/// Rewrites every such transfer of `module` ([`FlatTransfer`]).
pub fn flatten(context: &Context, module: &Module, target: &Target) -> Result<()> {
    for (name, kind) in [("vector.transfer_read", Kind::Read), ("vector.transfer_write", Kind::Write)] {
        for op in super::ops_named(module, name) {
            if let Some(transfer) = FlatTransfer::of(op, kind, target) {
                transfer.rewrite(context)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reads of `body` (in a function of `args`) after [`flatten`].
    fn flattened(args: &str, body: &str) -> String {
        let context = aotc_dialects::new_context();
        let text = format!("func.func @f({args}) -> vector<16x2xf32> {{\n  %c0 = arith.constant 0 : index\n  %c3 = arith.constant 3 : index\n  %pad = ub.poison : f32\n{body}\n}}");
        let module = crate::mlir::parse(&context, &text, "test module").unwrap();
        flatten(&context, &module, &Target { vector_bits: 512, vector_registers: 32 }).unwrap();
        assert!(module.as_operation().verify());
        module.as_operation().to_string()
    }

    #[test]
    fn pairs_of_a_row_are_read_as_one_vector() {
        // 16 pairs of row 3 (32 floats at 3 * 32 of a [.., 16, 2] view)
        let text = flattened(
            "%m: memref<4x16x2xf32, strided<[32, 2, 1], offset: ?>>",
            "  %v = vector.transfer_read %m[%c3, %c0, %c0], %pad {in_bounds = [true, true]} : memref<4x16x2xf32, strided<[32, 2, 1], offset: ?>>, vector<16x2xf32>\n  return %v : vector<16x2xf32>",
        );
        assert!(text.contains("memref.collapse_shape %arg0 [[0], [1, 2]] : memref<4x16x2xf32, strided<[32, 2, 1], offset: ?>> into memref<4x32xf32, strided<[32, 1], offset: ?>>"), "{text}");
        assert!(text.contains("vector.transfer_read") && text.contains("{in_bounds = [true]} : memref<4x32xf32, strided<[32, 1], offset: ?>>, vector<32xf32>"), "{text}");
        assert!(text.contains("vector.shape_cast") && text.contains("vector<32xf32> to vector<16x2xf32>"), "{text}");
    }

    #[test]
    fn rows_of_a_tile_are_written_as_one_vector() {
        // 14 rows of 4 (a Winograd tile row) into rows 4 floats apart
        let text = flattened(
            "%m: memref<2x14x4xf32, strided<[56, 4, 1], offset: ?>>, %t: vector<14x4xf32>",
            "  vector.transfer_write %t, %m[%c0, %c0, %c0] {in_bounds = [true, true]} : vector<14x4xf32>, memref<2x14x4xf32, strided<[56, 4, 1], offset: ?>>\n  %v = ub.poison : vector<16x2xf32>\n  return %v : vector<16x2xf32>",
        );
        assert!(text.contains("vector.shape_cast %arg1 : vector<14x4xf32> to vector<56xf32>"), "{text}");
        assert!(text.contains("vector.transfer_write") && text.contains("{in_bounds = [true]} : vector<56xf32>, memref<2x56xf32, strided<[56, 1], offset: ?>>"), "{text}");
    }

    #[test]
    fn rows_apart_or_already_vectors_stay() {
        // pairs 4 floats apart: not one run
        let gaps = flattened(
            "%m: memref<16x2xf32, strided<[4, 1]>>",
            "  %v = vector.transfer_read %m[%c0, %c0], %pad {in_bounds = [true, true]} : memref<16x2xf32, strided<[4, 1]>>, vector<16x2xf32>\n  return %v : vector<16x2xf32>",
        );
        assert!(!gaps.contains("collapse_shape"), "{gaps}");
        // part of each row: not one run either
        let part = flattened(
            "%m: memref<16x4xf32>",
            "  %v = vector.transfer_read %m[%c0, %c0], %pad {in_bounds = [true, true]} : memref<16x4xf32>, vector<16x2xf32>\n  return %v : vector<16x2xf32>",
        );
        assert!(!part.contains("collapse_shape"), "{part}");
        // rows of 16 floats: whole vectors already
        let vectors = flattened(
            "%m: memref<2x16xf32>, %t: vector<2x16xf32>",
            "  vector.transfer_write %t, %m[%c0, %c0] {in_bounds = [true, true]} : vector<2x16xf32>, memref<2x16xf32>\n  %v = ub.poison : vector<16x2xf32>\n  return %v : vector<16x2xf32>",
        );
        assert!(!vectors.contains("collapse_shape"), "{vectors}");
    }
}
