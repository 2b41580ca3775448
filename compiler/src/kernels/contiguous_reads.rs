//! Reads of short rows that lie back to back in memory, read as one
//! vector. A transposed read tiled into blocks (a row's pairs, read as
//! `vector<16x2xf32>` from a view [16, 2] with strides [2, 1], then
//! shuffled into two rows of 16) is one contiguous run of 32 elements, but
//! the LLVM lowering (`convert-vector-to-scf` with full unrolling) reads an
//! n-d transfer one innermost row at a time: 16 loads of 2 elements and 16
//! inserts, most of the time of a max pool's or a strided convolution's
//! phase copies. Here such a read becomes a 1-d read of a collapsed view of
//! the memref (`memref.collapse_shape`) and a `vector.shape_cast` back,
//! which LLVM makes whole-vector loads. Reads whose rows are a vector or
//! more already load whole vectors and are left alone.

use super::Target;
use anyhow::{anyhow, Result};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::{Attribute, BlockRef, Identifier, Module, OperationRef, Type, Value, ValueLike};
use melior::Context;
use mlir_sys::*;

/// A `vector.transfer_read` of a memref whose last `k` dims (the vector's)
/// are one contiguous run of memory.
struct FlatRead {
    op: MlirOperation,
    /// The memref's shape and strides (its layout's).
    shape: Vec<i64>,
    strides: Vec<i64>,
    /// The layout's offset (`i64::MIN` when dynamic); `None` for the
    /// identity layout.
    offset: Option<i64>,
    /// The vector's shape.
    vector: Vec<i64>,
}

impl FlatRead {
    /// The read `op`, when it is unmasked, in bounds, reads the last dims
    /// of its memref in order (a minor identity), its rows are shorter
    /// than a vector register of `target`, every dim of the vector but the
    /// first is a whole dim of the memref read from 0, and those dims are
    /// contiguous.
    fn of(op: MlirOperation, target: &Target) -> Option<FlatRead> {
        unsafe {
            let source = mlirOperationGetOperand(op, 0);
            let memref = mlirValueGetType(source);
            let result = mlirValueGetType(mlirOperationGetResult(op, 0));
            if !mlirTypeIsAMemRef(memref) || !mlirShapedTypeHasStaticShape(memref) || !mlirTypeIsAVector(result) {
                return None;
            }
            let rank = mlirShapedTypeGetRank(memref) as usize;
            let k = mlirShapedTypeGetRank(result) as usize;
            if k < 2 || k > rank || mlirOperationGetNumOperands(op) != (rank + 2) as isize {
                return None;
            }
            let read = OperationRef::from_raw(op);
            let in_bounds = read.attribute("in_bounds").ok()?.to_string();
            let map = read.attribute("permutation_map").ok()?.to_string();
            if in_bounds != format!("[{}]", vec!["true"; k].join(", ")) || map != minor_identity(rank, k) {
                return None;
            }
            let shape: Vec<i64> = (0..rank).map(|d| mlirShapedTypeGetDimSize(memref, d as isize)).collect();
            let vector: Vec<i64> = (0..k).map(|d| mlirShapedTypeGetDimSize(result, d as isize)).collect();
            let element = mlirShapedTypeGetElementType(result);
            let element_bits = if mlirTypeIsAFloat(element) { mlirFloatTypeGetWidth(element) } else if mlirTypeIsAInteger(element) { mlirIntegerTypeGetWidth(element) } else { return None } as i64;
            if vector[k - 1] * element_bits >= target.vector_bits as i64 {
                return None;
            }
            let identity = mlirAttributeIsAAffineMap(mlirMemRefTypeGetLayout(memref)) && mlirAffineMapIsIdentity(mlirAffineMapAttrGetValue(mlirMemRefTypeGetLayout(memref)));
            let mut strides = vec![0i64; rank];
            let mut offset = 0i64;
            if mlirMemRefTypeGetStridesAndOffset(memref, strides.as_mut_ptr(), &mut offset).value == 0 {
                return None;
            }
            let first = rank - k;
            let whole_rows = (1..k).all(|d| vector[d] == shape[first + d] && is_zero(mlirOperationGetOperand(op, (1 + first + d) as isize)));
            let contiguous = strides[rank - 1] == 1 && (first..rank - 1).all(|d| strides[d] == strides[d + 1] * shape[d + 1]);
            (whole_rows && contiguous).then_some(FlatRead { op, shape, strides, offset: (!identity).then_some(offset), vector })
        }
    }

    /// Replaces the read with a 1-d read of the collapsed memref and a
    /// shape cast to the vector's shape.
    fn rewrite(&self, context: &Context) -> Result<()> {
        let (rank, k) = (self.shape.len(), self.vector.len());
        let first = rank - k;
        let attribute = |text: String| Attribute::parse(context, &text).ok_or_else(|| anyhow!("bad attribute {text}"));
        let parse_type = |text: String| Type::parse(context, &text).ok_or_else(|| anyhow!("bad type {text}"));
        unsafe {
            let anchor = OperationRef::from_raw(self.op);
            let location = anchor.location();
            let block = BlockRef::from_raw(mlirOperationGetBlock(self.op));
            let operand = |i: usize| Value::from_raw(mlirOperationGetOperand(self.op, i as isize));
            let result_ty = Type::from_raw(mlirValueGetType(mlirOperationGetResult(self.op, 0)));
            let element = Type::from_raw(mlirShapedTypeGetElementType(mlirValueGetType(mlirOperationGetResult(self.op, 0))));
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
            let collapse = OperationBuilder::new("memref.collapse_shape", location)
                .add_operands(&[operand(0)])
                .add_attributes(&[(Identifier::new(context, "reassociation"), attribute(format!("[{}]", groups.join(", ")))?)])
                .add_results(&[collapsed_ty])
                .build()?;
            let collapse = block.insert_operation_before(anchor, collapse);
            // the run's first element: row i of the first vector dim
            let row = operand(1 + first);
            let start = if is_zero(row.to_raw()) {
                row
            } else {
                let row_elements: i64 = self.shape[first + 1..].iter().product();
                let index = Type::index(context);
                let size = OperationBuilder::new("arith.constant", location)
                    .add_attributes(&[(Identifier::new(context, "value"), attribute(format!("{row_elements} : index"))?)])
                    .add_results(&[index])
                    .build()?;
                let size = block.insert_operation_before(anchor, size);
                let start = OperationBuilder::new("arith.muli", location).add_operands(&[row, size.result(0)?.into()]).add_results(&[index]).build()?;
                block.insert_operation_before(anchor, start).result(0)?.into()
            };
            let indices: Vec<Value> = (0..first).map(|d| operand(1 + d)).chain([start]).collect();
            let padding = operand(1 + rank);
            let flat_ty = parse_type(format!("vector<{}x{element}>", self.vector.iter().product::<i64>()))?;
            let operands: Vec<Value> = std::iter::once(collapse.result(0)?.into()).chain(indices).chain([padding]).collect();
            let read = OperationBuilder::new("vector.transfer_read", location)
                .add_operands(&operands)
                .add_attributes(&[
                    (Identifier::new(context, "in_bounds"), attribute("[true]".to_string())?),
                    (Identifier::new(context, "permutation_map"), attribute(minor_identity(first + 1, 1))?),
                    (Identifier::new(context, "operandSegmentSizes"), attribute(format!("array<i32: 1, {}, 1, 0>", first + 1))?),
                ])
                .add_results(&[flat_ty])
                .build()?;
            let read = block.insert_operation_before(anchor, read);
            let cast = OperationBuilder::new("vector.shape_cast", location).add_operands(&[read.result(0)?.into()]).add_results(&[result_ty]).build()?;
            let cast = block.insert_operation_before(anchor, cast);
            mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(self.op, 0), cast.result(0)?.to_raw());
            mlirOperationRemoveFromParent(self.op);
            mlirOperationDestroy(self.op);
        }
        Ok(())
    }
}

/// `affine_map<(d0, .., d{rank-1}) -> (d{rank-k}, .., d{rank-1})>`.
fn minor_identity(rank: usize, k: usize) -> String {
    let dims = |range: std::ops::Range<usize>| range.map(|d| format!("d{d}")).collect::<Vec<_>>().join(", ");
    format!("affine_map<({}) -> ({})>", dims(0..rank), dims(rank - k..rank))
}

/// Whether `value` is the constant index 0.
fn is_zero(value: MlirValue) -> bool {
    unsafe {
        if !mlirValueIsAOpResult(value) {
            return false;
        }
        let producer = OperationRef::from_raw(mlirOpResultGetOwner(value));
        producer.name().as_string_ref().as_str() == Ok("arith.constant") && producer.attribute("value").is_ok_and(|v| v.to_string() == "0 : index")
    }
}

/// Rewrites every such read of `module` ([`FlatRead`]).
pub fn flatten(context: &Context, module: &Module, target: &Target) -> Result<()> {
    for op in super::ops_named(module, "vector.transfer_read") {
        if let Some(read) = FlatRead::of(op, target) {
            read.rewrite(context)?;
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
    }
}
