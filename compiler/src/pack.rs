//! Constant weight packing: a weight that the program only ever reads
//! through transposes and reshapes (linear layers read W as W^T; products
//! read B as packed panels `[N/16, K, 16]`) is stored in the layout the
//! last transpose makes at compile time instead, and the chain disappears
//! from the program. A matrix whose rows are a multiple of 1 KiB
//! apart is also stored with one cache line of padding per row (the
//! program reads a slice without it): the matmul kernel walks a column
//! block down the rows, and at such strides every row falls into the same
//! few cache sets, so the block never stays in L1 (N = 4096: 64 instead of
//! 95 GFLOP/s). A 3x3 convolution's Winograd filter transform (`[F, C, 3,
//! 3]` into `[n^2, F, C]`, maybe then row panels) is taken out of the
//! program too, but the library stores the weight as it was: the runtime
//! transforms it when the model's first handle is created. Runs on
//! linalg-on-tensors, before optimization.

use aotc_dialects::lower::winograd::Tiles;
use crate::mlir::{op_name, single_user};
use crate::program::{ExportedProgram, InputKind};
use anyhow::{anyhow, Result};
use melior::ir::{
    r#type::TypeLike,
    block::BlockLike, operation::OperationLike, operation::OperationMutLike, Attribute, BlockRef, Module, OperationRef,
    RegionLike, Type, ValueLike,
};
use melior::Context;
use mlir_sys::*;

/// One change of a weight's stored layout; a weight's steps apply in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `new[i] = old[perm[i]]`: a folded `linalg.transpose`.
    Permute(Vec<usize>),
    /// The same elements seen with another shape: a folded
    /// `tensor.expand_shape` (on the way to a transpose after it).
    Reshape(Vec<i64>),
    /// Zero elements appended to each row of the (2-D) weight.
    PadRows(i64),
    /// Zeros appended at the end of each dim (a folded `tensor.pad`: a
    /// linear layer's weight padded to whole panels).
    PadEnd(Vec<i64>),
    /// The Winograd filter transform of an f32 `[F, C, 3, 3]` weight into
    /// `[n^2, F, C]` for the tiling (a folded generic tagged
    /// `aotc_dialects::lower::winograd::FILTER_TRANSFORM`).
    WinogradFilter(Tiles),
}

/// A weight argument whose stored layout was changed at compile time.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub argument: usize,
    pub steps: Vec<Step>,
}

/// Bytes of padding per row: one cache line.
const ROW_PADDING_BYTES: i64 = 64;

/// The padding (in elements) for a `[rows, cols]` matrix of `elem`-byte
/// elements whose row stride would map rows onto few cache sets.
fn row_padding(shape: &[i64], elem: i64) -> i64 {
    match shape {
        [rows, cols] if *rows > 1 && (cols * elem) % 1024 == 0 && elem > 0 => ROW_PADDING_BYTES / elem,
        _ => 0,
    }
}

/// The type of the matrix `tensor` and the padding its rows need, when
/// they need some.
fn padded_matrix(tensor: MlirValue) -> Option<(aotc_dialects::types::Ty, i64)> {
    let ty = aotc_dialects::types::Ty::parse(&unsafe { melior::ir::Type::from_raw(mlirValueGetType(tensor)) }.to_string())?;
    let padding = row_padding(&ty.shape, aotc_dialects::types::bit_width(&ty.elem) as i64 / 8);
    (padding > 0).then_some((ty, padding))
}

/// Folds transposes of weight arguments (`weights[i]`: argument i is a
/// read-only weight) into the stored layout and returns what it changed.
/// A weight the program only reads through a chain of transposes and
/// reshapes (a linear layer's `W^T`, the packed panels of a product's B,
/// see `aotc_dialects::lower::linear`) is stored as the chain's last
/// transpose produces it.
pub fn fold_weight_transposes(context: &Context, module: &mut Module, weights: &[bool]) -> Result<Vec<Packed>> {
    let function = crate::mlir::entry_function(module)?;
    let block: BlockRef = function.region(0)?.first_block().ok_or_else(|| anyhow!("function has no body"))?;
    let mut packed = Vec::new();
    for i in 0..block.argument_count().min(weights.len()) {
        if !weights[i] {
            continue;
        }
        let arg = block.argument(i)?;
        let Some(to_tensor) = single_user(arg.to_raw()).filter(|&o| op_name(o) == "bufferization.to_tensor") else {
            continue;
        };
        let tensor = unsafe { mlirOperationGetResult(to_tensor, 0) };
        let gathers = element_reads(tensor);
        let original_shape = value_ty(tensor).map(|t| t.shape).unwrap_or_default();
        let chain = if gathers.is_empty() { layout_chain(tensor) } else { gathered_layout_chain(tensor, &gathers) };
        let Some(&(last, _)) = chain.last() else {
            // a matrix the program multiplies by as it is stored (x @ W)
            if let Some((t, padding)) = padded_matrix(tensor).filter(|_| only_matmul_rhs(tensor)) {
                pad_rows(context, &block, to_tensor, tensor, &t, padding)?;
                packed.push(Packed { argument: i, steps: vec![Step::PadRows(padding)] });
            }
            continue;
        };
        let folded = unsafe { mlirOperationGetResult(last, 0) };
        let folded_ty = unsafe { melior::ir::Type::from_raw(mlirValueGetType(folded)) }.to_string();
        let ty = aotc_dialects::types::Ty::parse(&folded_ty).ok_or_else(|| anyhow!("bad type {folded_ty}"))?;
        let dims: String = ty.shape.iter().map(|d| format!("{d}x")).collect();
        let new_memref = format!("memref<{dims}{}>", aotc_dialects::types::mlir_elem(&ty.elem));
        let new_memref = Type::parse(context, &new_memref).ok_or_else(|| anyhow!("bad type {new_memref}"))?;
        let new_tensor = Type::parse(context, &folded_ty).ok_or_else(|| anyhow!("bad type {folded_ty}"))?;
        unsafe {
            mlirValueSetType(arg.to_raw(), new_memref.to_raw());
            mlirValueSetType(tensor, new_tensor.to_raw());
            mlirValueReplaceAllUsesOfWith(folded, tensor);
            for &(op, _) in chain.iter().rev() {
                mlirOperationRemoveFromParent(op);
                mlirOperationDestroy(op);
            }
        }
        let mut steps: Vec<Step> = chain.into_iter().map(|(_, step)| step).collect();
        for &gather in &gathers {
            read_through_layout(context, gather, tensor, &original_shape, &steps)?;
        }
        if let Some((t, padding)) = padded_matrix(tensor) {
            pad_rows(context, &block, to_tensor, tensor, &t, padding)?;
            steps.push(Step::PadRows(padding));
        }
        packed.push(Packed { argument: i, steps });
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

/// Every use of `value`: the op and the operand's position.
fn uses(value: MlirValue) -> Vec<(MlirOperation, u32)> {
    let mut found = Vec::new();
    unsafe {
        let mut use_ = mlirValueGetFirstUse(value);
        while !use_.ptr.is_null() {
            found.push((mlirOpOperandGetOwner(use_), mlirOpOperandGetOperandNumber(use_)));
            use_ = mlirOpOperandGetNextUse(use_);
        }
    }
    found
}

/// The `tensor.extract` ops that read single elements of `value` (a
/// gather's body: an embedding's rows).
fn element_reads(value: MlirValue) -> Vec<MlirOperation> {
    uses(value).into_iter().filter(|&(op, operand)| operand == 0 && op_name(op) == "tensor.extract").map(|(op, _)| op).collect()
}

/// The layout chain of a weight that `gathers` also read element by
/// element (GPT-2's token embedding, which its LM head multiplies by as
/// packed panels): the chain of its one other user, when every step is one
/// whose element positions [`read_through_layout`] can follow. The weight is
/// then stored once, in the chain's layout, and the gathers read it there
/// (a row of the embedding from 768 elements 16 apart), instead of the
/// program packing 154 MB every run.
fn gathered_layout_chain(value: MlirValue, gathers: &[MlirOperation]) -> Vec<(MlirOperation, Step)> {
    let others: Vec<MlirOperation> = uses(value).into_iter().map(|(op, _)| op).filter(|op| !gathers.iter().any(|g| g.ptr == op.ptr)).collect();
    let [first] = others[..] else { return Vec::new() };
    let chain = layout_chain_from(value, Some(first));
    let followed = chain.iter().all(|(_, step)| matches!(step, Step::Permute(_) | Step::Reshape(_) | Step::PadEnd(_)));
    if followed { chain } else { Vec::new() }
}

/// Rewrites `extract`, a read of one element of the weight `source` whose
/// stored layout `steps` made from `shape`, into a read of that element
/// where the layout put it: padding keeps positions, a reshape
/// re-splits the linear position, a transpose permutes the indices.
fn read_through_layout(context: &Context, extract: MlirOperation, source: MlirValue, shape: &[i64], steps: &[Step]) -> Result<()> {
    use melior::ir::operation::OperationBuilder;
    let op = unsafe { OperationRef::from_raw(extract) };
    let block = op.block().ok_or_else(|| anyhow!("an element read outside a block"))?;
    let location = op.location();
    let index = Type::index(context);
    // an op of one index result, `name(operands) {attributes}`, before the read
    let emit = |name: &str, operands: &[MlirValue], attributes: &[(&str, String)]| -> Result<MlirValue> {
        let operands: Vec<melior::ir::Value> = operands.iter().map(|&v| unsafe { melior::ir::Value::from_raw(v) }).collect();
        let mut builder = OperationBuilder::new(name, location).add_operands(&operands).add_results(&[index]);
        for (key, text) in attributes {
            let value = Attribute::parse(context, text).ok_or_else(|| anyhow!("bad attribute {text}"))?;
            builder = builder.add_attributes(&[(melior::ir::Identifier::new(context, key), value)]);
        }
        Ok(block.insert_operation_before(op, builder.build()?).result(0)?.to_raw())
    };
    let constant = |v: i64| emit("arith.constant", &[], &[("value", format!("{v} : index"))]);
    let mut indices: Vec<MlirValue> = (1..op.operand_count()).map(|i| op.operand(i).map(|v| v.to_raw())).collect::<Result<_, _>>()?;
    let mut shape = shape.to_vec();
    for step in steps {
        match step {
            Step::PadEnd(high) => shape = shape.iter().zip(high).map(|(d, h)| d + h).collect(),
            Step::Permute(perm) => {
                indices = perm.iter().map(|&d| indices[d]).collect();
                shape = perm.iter().map(|&d| shape[d]).collect();
            }
            Step::Reshape(to) => {
                let mut linear: Option<MlirValue> = None;
                for (&i, stride) in indices.iter().zip(crate::pt2::contiguous_strides(&shape)) {
                    let term = if stride == 1 { i } else { emit("arith.muli", &[i, constant(stride)?], &[])? };
                    linear = Some(match linear {
                        None => term,
                        Some(sum) => emit("arith.addi", &[sum, term], &[])?,
                    });
                }
                let linear = match linear {
                    Some(l) => l,
                    None => constant(0)?,
                };
                indices = Vec::new();
                for (d, stride) in crate::pt2::contiguous_strides(to).into_iter().enumerate() {
                    let quotient = if stride == 1 { linear } else { emit("arith.divui", &[linear, constant(stride)?], &[])? };
                    indices.push(if d == 0 { quotient } else { emit("arith.remui", &[quotient, constant(to[d])?], &[])? });
                }
                shape = to.clone();
            }
            other => return Err(anyhow!("cannot read an element through the layout step {other:?}")),
        }
    }
    let operands: Vec<melior::ir::Value> =
        std::iter::once(source).chain(indices).map(|v| unsafe { melior::ir::Value::from_raw(v) }).collect();
    let element = op.result(0)?.r#type();
    let read = OperationBuilder::new("tensor.extract", location).add_operands(&operands).add_results(&[element]).build()?;
    let read = block.insert_operation_before(op, read);
    unsafe {
        mlirValueReplaceAllUsesOfWith(op.result(0)?.to_raw(), read.result(0)?.to_raw());
        mlirOperationDestroy(extract);
    }
    Ok(())
}

/// The transposes and static reshapes that `value` alone flows through, in
/// order, up to the last transpose (a reshape after it is a view anyway):
/// each op with the layout step it is.
fn layout_chain(value: MlirValue) -> Vec<(MlirOperation, Step)> {
    layout_chain_from(value, single_user(value))
}

/// [`layout_chain`] from `first`, a user of `value` (its only one when the
/// chain goes on past it).
fn layout_chain_from(value: MlirValue, first: Option<MlirOperation>) -> Vec<(MlirOperation, Step)> {
    let mut chain = Vec::new();
    let mut value = value;
    let mut next = first;
    while let Some(user) = next.take() {
        let result = unsafe { mlirOperationGetResult(user, 0) };
        let step = match op_name(user).as_str() {
            "linalg.transpose" => {
                let text = unsafe { OperationRef::from_raw(user) }.attribute("permutation").map(|a| a.to_string());
                match text.ok().as_deref().and_then(aotc_dialects::lower::parse_attr) {
                    Some(aotc_dialects::lower::Attr::Ints(perm)) => Step::Permute(perm.iter().map(|&p| p as usize).collect()),
                    _ => break,
                }
            }
            "linalg.generic" if is_winograd_filter(user, value) => {
                // the tiling is the transformed filter's first dim
                match value_ty(result).and_then(|t| t.shape.first().copied()).and_then(Tiles::with_elements) {
                    Some(tiles) => Step::WinogradFilter(tiles),
                    None => break,
                }
            }
            "tensor.pad" => match zeros_at_end(user) {
                Some(high) => Step::PadEnd(high),
                None => break,
            },
            "tensor.expand_shape" | "tensor.collapse_shape" => match value_ty(result) {
                Some(t) if t.shape.iter().all(|&d| d >= 0) => Step::Reshape(t.shape),
                _ => break,
            },
            _ => break,
        };
        chain.push((user, step));
        value = result;
        next = single_user(value);
    }
    while chain.last().is_some_and(|(_, step)| matches!(step, Step::Reshape(_))) {
        chain.pop();
    }
    chain
}

/// The padding at the end of each dim of a `tensor.pad` that appends
/// zeros only (none at the start, static sizes), else None.
fn zeros_at_end(pad: MlirOperation) -> Option<Vec<i64>> {
    let op = unsafe { OperationRef::from_raw(pad) };
    let ints = |name: &str| match aotc_dialects::lower::parse_attr(&op.attribute(name).ok()?.to_string()) {
        Some(aotc_dialects::lower::Attr::Ints(v)) => Some(v),
        _ => None,
    };
    let (low, high) = (ints("static_low")?, ints("static_high")?);
    if op.operand_count() != 1 || low.iter().any(|&l| l != 0) || high.iter().any(|&h| h < 0) {
        return None;
    }
    let block = op.region(0).ok()?.first_block()?;
    let value = block.terminator()?.operand(0).ok()?;
    let constant = unsafe { mlirValueIsAOpResult(value.to_raw()) }.then(|| unsafe { mlirOpResultGetOwner(value.to_raw()) })?;
    let text = unsafe { OperationRef::from_raw(constant) }.attribute("value").ok()?.to_string();
    let literal = text.split(':').next()?.trim();
    (op_name(constant) == "arith.constant" && literal.parse::<f64>().is_ok_and(|v| v == 0.0 && !literal.starts_with('-'))).then_some(high)
}

/// The type of `value`, if aotc's `Ty` can say it.
fn value_ty(value: MlirValue) -> Option<aotc_dialects::types::Ty> {
    let text = unsafe { melior::ir::Type::from_raw(mlirValueGetType(value)) }.to_string();
    aotc_dialects::types::Ty::parse(&text)
}

/// Whether `op` is the Winograd filter transform of `weight` (its second
/// operand; the first is the constant coefficient table).
fn is_winograd_filter(op: MlirOperation, weight: MlirValue) -> bool {
    let op_ref = unsafe { OperationRef::from_raw(op) };
    op_ref.attribute(aotc_dialects::lower::winograd::FILTER_TRANSFORM).is_ok()
        && op_ref.operand(1).is_ok_and(|v| v.to_raw().ptr == weight.ptr)
}

/// Whether every use of `value` is as the right-hand matrix of a
/// `linalg.matmul`.
fn only_matmul_rhs(value: MlirValue) -> bool {
    let all = uses(value);
    !all.is_empty() && all.iter().all(|&(op, operand)| operand == 1 && op_name(op) == "linalg.matmul")
}

/// Widens the weight argument behind `to_tensor` (whose result `tensor` is
/// `ty`, `[rows, cols]`) by `padding` columns and gives every user the
/// unpadded `[rows, cols]` slice instead.
fn pad_rows(context: &Context, block: &BlockRef, to_tensor: MlirOperation, tensor: MlirValue, ty: &aotc_dialects::types::Ty, padding: i64) -> Result<()> {
    let (rows, cols) = (ty.shape[0], ty.shape[1]);
    let elem = aotc_dialects::types::mlir_elem(&ty.elem);
    let to_tensor_ref = unsafe { OperationRef::from_raw(to_tensor) };
    let arg = to_tensor_ref.operand(0)?;
    let parse_type = |text: String| Type::parse(context, &text).ok_or_else(|| anyhow!("bad type {text}"));
    let wide_memref = parse_type(format!("memref<{rows}x{}x{elem}>", cols + padding))?;
    let wide_tensor = parse_type(format!("tensor<{rows}x{}x{elem}>", cols + padding))?;
    let slice_ty = parse_type(format!("tensor<{rows}x{cols}x{elem}>"))?;
    let slice = melior::ir::operation::OperationBuilder::new("tensor.extract_slice", melior::ir::Location::unknown(context))
        .add_operands(&[unsafe { melior::ir::Value::from_raw(tensor) }])
        .add_results(&[slice_ty])
        .add_attributes(&crate::mlir::static_slice_attributes(context, &[0, 0], &[rows, cols], &[1, 0, 0, 0]))
        .build()?;
    let slice = block.insert_operation_after(to_tensor_ref, slice);
    unsafe {
        mlirValueSetType(arg.to_raw(), wide_memref.to_raw());
        mlirValueSetType(tensor, wide_tensor.to_raw());
        let mut except = [slice.to_raw()];
        mlirValueReplaceAllUsesExcept(tensor, mlirOperationGetResult(slice.to_raw(), 0), 1, except.as_mut_ptr());
    }
    Ok(())
}

/// The weight arguments (`weights[i]`) that nothing in the entry function
/// reads: no use, or only a `bufferization.to_tensor` whose tensor has none.
pub fn unread_arguments(module: &Module, weights: &[bool]) -> Result<std::collections::BTreeSet<usize>> {
    let function = crate::mlir::entry_function(module)?;
    let block: BlockRef = function.region(0)?.first_block().ok_or_else(|| anyhow!("function has no body"))?;
    let unused = |value: MlirValue| uses(value).is_empty();
    let mut unread = std::collections::BTreeSet::new();
    for (i, _) in weights.iter().enumerate().take(block.argument_count()).filter(|&(_, &weight)| weight) {
        let arg = block.argument(i)?.to_raw();
        let read = match single_user(arg) {
            _ if unused(arg) => false,
            Some(op) if op_name(op) == "bufferization.to_tensor" => !unused(unsafe { mlirOperationGetResult(op, 0) }),
            _ => true,
        };
        if !read {
            unread.insert(i);
        }
    }
    Ok(unread)
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
/// A Winograd filter transform (and the row panels after it) is left to
/// the runtime when it can run it ([`at_model_creation`]): the weight is
/// stored as it is before the transform, n^2/9 times smaller.
pub fn apply(program: &mut ExportedProgram, packed: &[Packed]) -> Result<()> {
    for p in packed {
        let input = &mut program.inputs[p.argument];
        let fqn = match &input.kind {
            InputKind::Parameter { fqn } | InputKind::Constant { fqn } => fqn.clone(),
            _ => continue,
        };
        let w = program.weights.get_mut(&fqn).ok_or_else(|| anyhow!("no data for '{fqn}'"))?;
        let transform = p.steps.iter().position(|s| matches!(s, Step::WinogradFilter(_)));
        let (now, later) = p.steps.split_at(transform.unwrap_or(p.steps.len()));
        for step in now {
            apply_step(&fqn, w, step)?;
        }
        match at_model_creation(later, w) {
            Some((code, shape)) => {
                input.ty = crate::program::TensorType { dtype: w.ty.dtype, shape };
                program.derived_weights.insert(p.argument, code);
            }
            None => {
                for step in later {
                    apply_step(&fqn, w, step)?;
                }
                input.ty = w.ty.clone();
            }
        }
    }
    Ok(())
}

/// Applies one step to the stored weight `w` (named `fqn`).
fn apply_step(fqn: &str, w: &mut crate::program::HostTensor, step: &Step) -> Result<()> {
    let elem = w.ty.dtype.size_bytes();
    match step {
        Step::Permute(perm) => {
            w.data = permute_bytes(&w.data, &w.ty.shape, elem, perm);
            w.ty.shape = perm.iter().map(|&d| w.ty.shape[d]).collect();
        }
        Step::Reshape(shape) => {
            if shape.iter().product::<i64>() != w.ty.shape.iter().product::<i64>() {
                return Err(anyhow!("'{fqn}': cannot view {:?} as {shape:?}", w.ty.shape));
            }
            w.ty.shape = shape.clone();
        }
        Step::PadRows(padding) => {
            w.data = pad_end_bytes(&w.data, &w.ty.shape, elem, &[0, *padding]);
            w.ty.shape[1] += padding;
        }
        Step::PadEnd(high) => {
            if high.len() != w.ty.shape.len() || w.ty.shape.is_empty() {
                return Err(anyhow!("'{fqn}': cannot pad {:?} by {high:?}", w.ty.shape));
            }
            w.data = pad_end_bytes(&w.data, &w.ty.shape, elem, high);
            w.ty.shape = w.ty.shape.iter().zip(high).map(|(d, h)| d + h).collect();
        }
        Step::WinogradFilter(tiles) => {
            let (&[f, c, 3, 3], 4) = (&w.ty.shape[..], elem) else {
                return Err(anyhow!("'{fqn}': a Winograd filter transform needs f32 [F, C, 3, 3], not {:?}", w.ty));
            };
            let g: Vec<f32> = w.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            let u = aotc_dialects::lower::winograd::filter_transform(&g, f as usize, c as usize, *tiles);
            w.data = u.iter().flat_map(|v| v.to_le_bytes()).collect();
            w.ty.shape = vec![tiles.elements(), f, c];
        }
    }
    Ok(())
}

/// When `steps`, applied to the f32 weight `w`, are what the runtime does
/// when a model is created (`aotc_runtime::winograd`): a Winograd filter
/// transform into `[n^2, F, C]`, perhaps read as row panels `[n^2, F / R,
/// C, R]` (a reshape to `[n^2, F / R, R, C]` and a transpose of the last
/// two dims); then the ABI's transform code and the argument's shape.
fn at_model_creation(steps: &[Step], w: &crate::program::HostTensor) -> Option<(u32, Vec<i64>)> {
    use aotc_runtime::abi::{TRANSFORM_WINOGRAD_F2, TRANSFORM_WINOGRAD_F4};
    let (&[f, c, 3, 3], crate::program::DType::F32) = (&w.ty.shape[..], w.ty.dtype) else {
        return None;
    };
    let (tiles, panels) = match steps {
        [Step::WinogradFilter(tiles)] => (*tiles, None),
        [Step::WinogradFilter(tiles), Step::Reshape(shape), Step::Permute(perm)] if perm[..] == [0, 1, 3, 2] => (*tiles, Some(shape)),
        _ => return None,
    };
    let code = match tiles {
        Tiles::F2 => TRANSFORM_WINOGRAD_F2,
        Tiles::F4 => TRANSFORM_WINOGRAD_F4,
    };
    let x = tiles.elements();
    match panels.map(|shape| &shape[..]) {
        None => Some((code, vec![x, f, c])),
        Some(&[e, panels, r, cc]) if e == x && panels * r == f && cc == c => Some((code, vec![x, panels, c, r])),
        Some(_) => None,
    }
}

/// The row-major `data` of `shape` with `high[d]` zeros appended to each
/// dim d.
fn pad_end_bytes(data: &[u8], shape: &[i64], elem: usize, high: &[i64]) -> Vec<u8> {
    let padded: Vec<i64> = shape.iter().zip(high).map(|(d, h)| d + h).collect();
    let mut out = vec![0u8; padded.iter().product::<i64>() as usize * elem];
    let rank = shape.len();
    let row = shape[rank - 1] as usize * elem;
    if row == 0 {
        return out;
    }
    let strides = crate::pt2::contiguous_strides(&padded);
    for (r, chunk) in data.chunks_exact(row).enumerate() {
        // the row's index in the outer dims, and where it starts padded
        let (mut rest, mut at) = (r, 0usize);
        for d in (0..rank - 1).rev() {
            at += rest % shape[d] as usize * strides[d] as usize;
            rest /= shape[d] as usize;
        }
        out[at * elem..at * elem + row].copy_from_slice(chunk);
    }
    out
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
    fn pads_rows_at_cache_set_strides() {
        assert_eq!(row_padding(&[1024, 4096], 4), 16);
        assert_eq!(row_padding(&[768, 768], 4), 16);
        assert_eq!(row_padding(&[1176, 10], 4), 0);
        assert_eq!(row_padding(&[4096], 4), 0);
        // the padding of each row: [2, 2] -> [2, 3]
        assert_eq!(pad_end_bytes(&[1, 2, 3, 4], &[2, 2], 1, &[0, 1]), vec![1, 2, 0, 3, 4, 0]);
    }

    #[test]
    fn the_runtime_makes_winograd_filters_and_their_row_panels() {
        use crate::program::{DType, HostTensor, TensorType};
        let weight = |dtype, shape: &[i64]| HostTensor { ty: TensorType { dtype, shape: shape.to_vec() }, data: vec![] };
        let w = weight(DType::F32, &[64, 32, 3, 3]);
        let f4 = Step::WinogradFilter(Tiles::F4);
        let panels = [f4.clone(), Step::Reshape(vec![36, 4, 16, 32]), Step::Permute(vec![0, 1, 3, 2])];
        let code = aotc_runtime::abi::TRANSFORM_WINOGRAD_F4;
        assert_eq!(at_model_creation(&panels, &w), Some((code, vec![36, 4, 32, 16])));
        assert_eq!(at_model_creation(&[f4.clone()], &w), Some((code, vec![36, 64, 32])));
        let f2 = [Step::WinogradFilter(Tiles::F2)];
        assert_eq!(at_model_creation(&f2, &w), Some((aotc_runtime::abi::TRANSFORM_WINOGRAD_F2, vec![16, 64, 32])));
        // anything else stays a compile-time step
        assert_eq!(at_model_creation(&panels[..2], &w), None);
        assert_eq!(at_model_creation(&[f4.clone(), Step::PadRows(16)], &w), None);
        assert_eq!(at_model_creation(&[f4, Step::Reshape(vec![36, 4, 16, 32]), Step::Permute(vec![1, 0, 2, 3])], &w), None);
        assert_eq!(at_model_creation(&f2, &weight(DType::I32, &[64, 32, 3, 3])), None);
        assert_eq!(at_model_creation(&[], &w), None);
    }

    /// A weight read, one whose tensor nothing reads, one never touched,
    /// and a user input (not a weight) never read.
    #[test]
    fn finds_the_weights_nothing_reads() {
        let context = aotc_dialects::new_context();
        let module = crate::mlir::parse(
            &context,
            "func.func @f(%w: memref<2xf32>, %v: memref<2xf32>, %u: memref<2xf32>, %x: memref<2xf32>) -> tensor<2xf32> {
               %a = bufferization.to_tensor %w restrict : memref<2xf32> to tensor<2xf32>
               %b = bufferization.to_tensor %v restrict : memref<2xf32> to tensor<2xf32>
               return %a : tensor<2xf32>
             }",
            "test module",
        )
        .unwrap();
        let unread = unread_arguments(&module, &[true, true, true, false]).unwrap();
        assert_eq!(unread.into_iter().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn pads_the_end_of_each_dim_with_zeros() {
        // [[1 2] [3 4]] -> [[1 2 0] [3 4 0] [0 0 0]], 1-byte elements
        assert_eq!(pad_end_bytes(&[1, 2, 3, 4], &[2, 2], 1, &[1, 1]), vec![1, 2, 0, 3, 4, 0, 0, 0, 0]);
        // 2-byte elements, rows only: [3, 1] -> [5, 1]
        assert_eq!(pad_end_bytes(&[1, 1, 2, 2, 3, 3], &[3, 1], 2, &[2, 0]), vec![1, 1, 2, 2, 3, 3, 0, 0, 0, 0]);
        // nothing to copy from an empty dim
        assert_eq!(pad_end_bytes(&[], &[2, 0], 4, &[0, 1]), vec![0; 8]);
    }

    #[test]
    fn transposes_bytes() {
        // [[0 1 2] [3 4 5]] -> [[0 3] [1 4] [2 5]]
        let data: Vec<u8> = (0..6).collect();
        assert_eq!(permute_bytes(&data, &[2, 3], 1, &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }
}
