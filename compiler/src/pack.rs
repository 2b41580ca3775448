//! Constant weight packing: a weight that the program only ever reads
//! through a `linalg.transpose` (linear layers read W as W^T) is stored
//! transposed at compile time instead, and the transpose disappears from
//! the program. Runs on linalg-on-tensors, before optimization.

use crate::program::{ExportedProgram, InputKind};
use anyhow::{anyhow, Result};
use melior::ir::{
    r#type::TypeLike,
    block::BlockLike, operation::OperationLike, operation::OperationMutLike, Attribute, BlockRef, Module, OperationRef,
    RegionLike, Type, ValueLike,
};
use melior::Context;
use mlir_sys::*;

/// A weight argument whose stored layout was permuted: `new[i] = old[perm[i]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub argument: usize,
    pub permutation: Vec<usize>,
}

/// The single user of a value, if it has exactly one.
fn single_user(value: MlirValue) -> Option<MlirOperation> {
    unsafe {
        let first = mlirValueGetFirstUse(value);
        if first.ptr.is_null() || !mlirOpOperandGetNextUse(first).ptr.is_null() {
            return None;
        }
        Some(mlirOpOperandGetOwner(first))
    }
}

fn name_of(op: MlirOperation) -> String {
    unsafe { OperationRef::from_raw(op) }.name().as_string_ref().as_str().unwrap_or("").to_string()
}

fn permuted_type(ty: &str, perm: &[usize]) -> Option<String> {
    let (kind, inner) = ty.split_once('<')?;
    let inner = inner.strip_suffix('>')?;
    let mut parts: Vec<&str> = inner.split('x').collect();
    let elem = parts.pop()?;
    if parts.len() != perm.len() {
        return None;
    }
    let dims: Vec<&str> = perm.iter().map(|&p| parts[p]).collect();
    Some(format!("{kind}<{}x{elem}>", dims.join("x")))
}

/// Folds transposes of weight arguments (`weights[i]`: argument i is a
/// read-only weight) into the stored layout and returns what it permuted.
pub fn fold_weight_transposes(context: &Context, module: &mut Module, weights: &[bool]) -> Result<Vec<Packed>> {
    let function = crate::mlir::entry_function(module)?;
    let block: BlockRef = function.region(0)?.first_block().ok_or_else(|| anyhow!("function has no body"))?;
    let mut packed = Vec::new();
    for i in 0..block.argument_count().min(weights.len()) {
        if !weights[i] {
            continue;
        }
        let arg = block.argument(i)?;
        let Some(to_tensor) = single_user(arg.to_raw()).filter(|&o| name_of(o) == "bufferization.to_tensor") else {
            continue;
        };
        let tensor = unsafe { mlirOperationGetResult(to_tensor, 0) };
        let Some(transpose) = single_user(tensor).filter(|&o| name_of(o) == "linalg.transpose") else { continue };
        let transpose_ref = unsafe { OperationRef::from_raw(transpose) };
        let perm_text = transpose_ref.attribute("permutation")?.to_string();
        let Some(aotc_dialects::lower::Attr::Ints(perm)) = aotc_dialects::lower::parse_attr(&perm_text) else { continue };
        let perm: Vec<usize> = perm.iter().map(|&p| p as usize).collect();
        let memref_ty = arg.r#type().to_string();
        let tensor_ty = unsafe { melior::ir::Type::from_raw(mlirValueGetType(tensor)) }.to_string();
        let (Some(new_memref), Some(new_tensor)) =
            (permuted_type(&memref_ty, &perm), permuted_type(&tensor_ty, &perm))
        else {
            continue;
        };
        let new_memref = Type::parse(context, &new_memref).ok_or_else(|| anyhow!("bad type {new_memref}"))?;
        let new_tensor = Type::parse(context, &new_tensor).ok_or_else(|| anyhow!("bad type {new_tensor}"))?;
        unsafe {
            mlirValueSetType(arg.to_raw(), new_memref.to_raw());
            mlirValueSetType(tensor, new_tensor.to_raw());
            mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(transpose, 0), tensor);
            mlirOperationRemoveFromParent(transpose);
            mlirOperationDestroy(transpose);
        }
        packed.push(Packed { argument: i, permutation: perm });
    }
    if !packed.is_empty() {
        let types: Vec<String> = (0..block.argument_count())
            .map(|i| block.argument(i).map(|a| a.r#type().to_string()))
            .collect::<Result<_, _>>()?;
        let function_type = Attribute::parse(context, &format!("({}) -> ()", types.join(", ")))
            .ok_or_else(|| anyhow!("cannot build the packed function type"))?;
        let mut function = unsafe { melior::ir::operation::OperationRefMut::from_raw(function.to_raw()) };
        function.set_attribute("function_type", function_type);
    }
    Ok(packed)
}

/// Which entry-function arguments are read-only weights (parameters and
/// constants; buffers are copied per handle and keep torch's layout).
pub fn weight_arguments(program: &ExportedProgram) -> Vec<bool> {
    program
        .inputs
        .iter()
        .map(|i| matches!(i.kind, InputKind::Parameter { .. } | InputKind::Constant { .. }))
        .collect()
}

/// Applies the packing to the stored weights and the program's input types.
pub fn apply(program: &mut ExportedProgram, packed: &[Packed]) -> Result<()> {
    for p in packed {
        let input = &mut program.inputs[p.argument];
        let fqn = match &input.kind {
            InputKind::Parameter { fqn } | InputKind::Constant { fqn } => fqn.clone(),
            _ => continue,
        };
        let w = program.weights.get_mut(&fqn).ok_or_else(|| anyhow!("no data for '{fqn}'"))?;
        w.data = permute_bytes(&w.data, &w.ty.shape, w.ty.dtype.size_bytes(), &p.permutation);
        w.ty.shape = p.permutation.iter().map(|&d| w.ty.shape[d]).collect();
        input.ty = w.ty.clone();
    }
    Ok(())
}

/// Row-major `out[i0..] = in[...]` with `out dim d = in dim perm[d]`: a
/// strided view of the contiguous input.
pub fn permute_bytes(data: &[u8], shape: &[i64], elem: usize, perm: &[usize]) -> Vec<u8> {
    let in_strides = crate::pt2::contiguous_strides(shape);
    let out_shape: Vec<i64> = perm.iter().map(|&d| shape[d]).collect();
    let strides: Vec<i64> = perm.iter().map(|&d| in_strides[d]).collect();
    crate::pt2::gather_strided(data, &out_shape, &strides, 0, elem).expect("a permutation stays inside its tensor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_bytes() {
        // [[0 1 2] [3 4 5]] -> [[0 3] [1 4] [2 5]]
        let data: Vec<u8> = (0..6).collect();
        assert_eq!(permute_bytes(&data, &[2, 3], 1, &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }
}
