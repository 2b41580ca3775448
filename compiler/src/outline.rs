//! Kernel outlining and deduplication, after bufferization: every loop nest
//! at the top of the model's function (a matmul micro-kernel, a fused
//! elementwise loop, a row chain, a copy) becomes its own function, called
//! where it was, and kernels that are the same code on the same buffer
//! types become one function. GPT-2's twelve blocks compile once instead
//! of twelve times, and LLVM optimizes many small functions instead of one
//! huge one (its passes are superlinear in function size), which also lets
//! code generation be split across threads (see `codegen`).
//!
//! A kernel's operands are the buffers and values it uses from outside;
//! constants (scalars, vectors, `memref.get_global`) are copied into it
//! instead, so two kernels that differ only in which buffers they touch
//! print the same and are merged; a window of a buffer is passed with its
//! offset unknown for the same reason, unless the kernel reads several
//! windows of one buffer (see `VIEWS`). Kernels are `noinline`: inlining
//! one back would undo both gains.

use crate::mlir::op_name;
use anyhow::{anyhow, Result};
use melior::ir::operation::{OperationLike, OperationPrintingFlags, OperationRef, WalkOrder, WalkResult};
use melior::ir::{Attribute, Identifier, Location, Module, ValueLike};
use melior::Context;
use mlir_sys::*;
use std::collections::HashMap;

/// Ops that are copied into a kernel rather than passed to it.
const REMATERIALIZED: &[&str] = &["arith.constant", "ub.poison", "memref.get_global"];

/// How many kernels were outlined and how many distinct functions remain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outlined {
    pub kernels: usize,
    pub functions: usize,
}

/// Outlines the kernels of the module's entry function (see the module
/// docs). Kernel functions are named `<entry>_k<N>`.
pub fn outline_kernels(context: &Context, module: &Module) -> Result<Outlined> {
    let entry = crate::mlir::entry_function(module)?;
    let entry_raw = entry.to_raw();
    let entry_name = symbol_name(entry_raw).ok_or_else(|| anyhow!("the entry function has no name"))?;
    let block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(entry_raw, 0)) };
    let mut candidates = Vec::new();
    unsafe {
        let mut op = mlirBlockGetFirstOperation(block);
        while !op.ptr.is_null() {
            if is_kernel(op) {
                candidates.push(op);
            }
            op = mlirOperationGetNextInBlock(op);
        }
    }
    forget_strategy_tags(entry_raw);
    let mut by_text: HashMap<String, String> = HashMap::new();
    let mut stats = Outlined::default();
    for op in candidates {
        let (captured, rematerialized) = captured_values(op);
        let types: Vec<String> = captured.iter().map(|&v| parameter_type(v, op)).collect();
        let callee = new_function(context, module, &types)?;
        let next = unsafe { mlirOperationGetNextInBlock(op) };
        move_into(op, callee, &captured, &rematerialized);
        // printed in its own scope: the default numbers the whole module
        // first, once per kernel (resnet18: 0.6 s of 0.7)
        let text = unsafe { OperationRef::from_raw(callee) }
            .to_string_with_flags(OperationPrintingFlags::new().use_local_scope())
            .map_err(|e| anyhow!("cannot print a kernel: {e}"))?;
        let name = match by_text.get(&text) {
            Some(existing) => {
                unsafe {
                    mlirOperationRemoveFromParent(callee);
                    mlirOperationDestroy(callee);
                }
                existing.clone()
            }
            None => {
                let name = format!("{entry_name}_k{}", by_text.len());
                set_symbol_name(context, callee, &name);
                by_text.insert(text, name.clone());
                name
            }
        };
        let arguments: Vec<MlirValue> = captured
            .iter()
            .zip(&types)
            .map(|(&v, ty)| {
                if value_type_text(v) == *ty {
                    return v;
                }
                let cast = cast_op(context, v, ty);
                unsafe {
                    mlirBlockInsertOwnedOperationBefore(block, next, cast);
                    mlirOperationGetResult(cast, 0)
                }
            })
            .collect();
        let call = call_op(context, &name, &arguments);
        unsafe { mlirBlockInsertOwnedOperationBefore(block, next, call) };
        stats.kernels += 1;
    }
    stats.functions = by_text.len();
    Ok(stats)
}

/// Drops the `aotc.kernel` tags the strategies matched their ops by (all
/// used by now): two kernels that do the same thing but were planned
/// under different tags (one row chain per layer) should print the same.
fn forget_strategy_tags(function: MlirOperation) {
    use melior::ir::operation::OperationMutLike;
    let mut tagged = Vec::new();
    unsafe { OperationRef::from_raw(function) }.walk(WalkOrder::PreOrder, |op| {
        if op.has_attribute("aotc.kernel") {
            tagged.push(op.to_raw());
        }
        WalkResult::Advance
    });
    for op in tagged {
        let _ = unsafe { melior::ir::operation::OperationRefMut::from_raw(op) }.remove_attribute("aotc.kernel");
    }
}

/// A loop nest or structured op with no results (after bufferization
/// every kernel writes buffers): anything with a region but the return.
fn is_kernel(op: MlirOperation) -> bool {
    unsafe { mlirOperationGetNumRegions(op) > 0 && mlirOperationGetNumResults(op) == 0 }
}

fn same_value(a: MlirValue, b: MlirValue) -> bool {
    a.ptr == b.ptr
}

/// The op that defines `v`, or whose block has `v` as an argument.
pub(crate) fn defining_scope(v: MlirValue) -> MlirOperation {
    unsafe {
        if mlirValueIsAOpResult(v) {
            mlirOpResultGetOwner(v)
        } else {
            mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v))
        }
    }
}

/// Whether `op` is `root` or nested in it.
pub(crate) fn is_inside(mut op: MlirOperation, root: MlirOperation) -> bool {
    while !op.ptr.is_null() {
        if op.ptr == root.ptr {
            return true;
        }
        op = unsafe { mlirOperationGetParentOperation(op) };
    }
    false
}

/// Ops that only describe a buffer (a window of another, a reshape): a
/// kernel that reads several windows of one buffer gets that buffer and
/// rebuilds the windows itself, so they stay constant offsets from one
/// pointer (a depthwise 7x7 stencil reads 49 windows of its input: passed
/// one by one, their 49 pointers spilled to the stack, 0.40 -> 0.49 ms).
/// An arena slot (`memref.view` of the arena) is a buffer of its own: the
/// kernel gets the slot, not the arena, or no two layers' kernels would
/// be the same code.
const VIEWS: &[&str] = &["memref.subview", "memref.expand_shape", "memref.collapse_shape", "memref.cast"];

/// Whether `v` is defined by an op that is copied into kernels.
fn is_constant(v: MlirValue) -> bool {
    let result = unsafe { mlirValueIsAOpResult(v) };
    result && REMATERIALIZED.contains(&op_name(defining_scope(v)).as_str())
}

/// The buffer `v` is a view of, when `v` is a view whose other operands
/// (offsets, sizes) are all constants.
fn view_source(v: MlirValue) -> Option<MlirValue> {
    if !unsafe { mlirValueIsAOpResult(v) } {
        return None;
    }
    let op = unsafe { mlirOpResultGetOwner(v) };
    if !VIEWS.contains(&op_name(op).as_str()) || unsafe { mlirOperationGetNumOperands(op) } == 0 {
        return None;
    }
    let constant = |i| is_constant(unsafe { mlirOperationGetOperand(op, i) });
    (1..unsafe { mlirOperationGetNumOperands(op) }).all(constant).then(|| unsafe { mlirOperationGetOperand(op, 0) })
}

/// The buffer at the bottom of `v`'s chain of views.
fn view_root(mut v: MlirValue) -> MlirValue {
    while let Some(source) = view_source(v) {
        v = source;
    }
    v
}

/// The values `root` uses from outside, in first-use order: those passed
/// as arguments, and those whose defining op is copied in (constants, and
/// the views of a buffer the kernel reads several windows of), each after
/// the values its op uses.
fn captured_values(root: MlirOperation) -> (Vec<MlirValue>, Vec<MlirValue>) {
    let mut outside: Vec<MlirValue> = Vec::new();
    for (_, _, v) in nested_operands(root) {
        if !is_inside(defining_scope(v), root) && !outside.iter().any(|&c| same_value(c, v)) {
            outside.push(v);
        }
    }
    let windows_of = |buffer: MlirValue| outside.iter().filter(|&&v| view_source(v).is_some() && same_value(view_root(v), buffer)).count();
    let (mut passed, mut copied): (Vec<MlirValue>, Vec<MlirValue>) = (Vec::new(), Vec::new());
    for &v in &outside {
        capture(v, &windows_of, &mut passed, &mut copied);
    }
    (passed, copied)
}

fn capture(v: MlirValue, windows_of: &dyn Fn(MlirValue) -> usize, passed: &mut Vec<MlirValue>, copied: &mut Vec<MlirValue>) {
    if passed.iter().chain(copied.iter()).any(|&c| same_value(c, v)) {
        return;
    }
    if is_constant(v) {
        copied.push(v);
    } else if view_source(v).is_some() && windows_of(view_root(v)) >= 2 {
        let op = unsafe { mlirOpResultGetOwner(v) };
        for i in 0..unsafe { mlirOperationGetNumOperands(op) } {
            capture(unsafe { mlirOperationGetOperand(op, i) }, windows_of, passed, copied);
        }
        copied.push(v);
    } else {
        passed.push(v);
    }
}

fn value_type_text(v: MlirValue) -> String {
    unsafe { melior::ir::Value::from_raw(v) }.r#type().to_string()
}

/// The type a kernel takes `v` as: a buffer at a fixed offset into a
/// larger one (a window, a slice of the arena) is taken with its offset
/// unknown, so kernels that differ only in where their buffers lie (one
/// per convolution tap, one per layer) are one function. Only when every
/// use inside `root` accepts any offset (reads, writes, structured ops,
/// subviews whose own offsets are unknown): a subview with a static offset
/// has a result type that depends on it.
fn parameter_type(v: MlirValue, root: MlirOperation) -> String {
    let ty = value_type_text(v);
    let Some(general) = with_unknown_offset(&ty) else { return ty };
    let mut use_ = unsafe { mlirValueGetFirstUse(v) };
    while !use_.ptr.is_null() {
        let user = unsafe { mlirOpOperandGetOwner(use_) };
        if is_inside(user, root) {
            let name = op_name(user);
            let accepts = match name.as_str() {
                "vector.transfer_read" | "vector.transfer_write" | "memref.load" | "memref.store" => true,
                "memref.subview" => value_type_text(unsafe { mlirOperationGetResult(user, 0) }).contains("offset: ?"),
                _ => name.starts_with("linalg."),
            };
            if !accepts {
                return ty;
            }
        }
        use_ = unsafe { mlirOpOperandGetNextUse(use_) };
    }
    general
}

/// `memref<..., strided<[...], offset: 66>>` with `offset: ?`.
fn with_unknown_offset(ty: &str) -> Option<String> {
    let at = ty.find("offset: ")? + "offset: ".len();
    let end = at + ty[at..].find('>')?;
    let offset = &ty[at..end];
    (ty.starts_with("memref<") && offset.parse::<i64>().is_ok()).then(|| format!("{}?{}", &ty[..at], &ty[end..]))
}

/// `memref.cast %v : <its type> to <ty>`.
fn cast_op(context: &Context, v: MlirValue, ty: &str) -> MlirOperation {
    let result = melior::ir::Type::parse(context, ty).expect("a memref type");
    melior::ir::operation::OperationBuilder::new("memref.cast", Location::unknown(context))
        .add_operands(&[unsafe { melior::ir::Value::from_raw(v) }])
        .add_results(&[result])
        .build()
        .expect("a valid cast")
        .into_raw()
}

/// An empty `noinline` function taking `types`, appended to the module
/// under a placeholder name.
fn new_function(context: &Context, module: &Module, types: &[String]) -> Result<MlirOperation> {
    let params: Vec<String> = types.iter().enumerate().map(|(i, ty)| format!("%a{i}: {ty}")).collect();
    let text = format!(
        "func.func private @aotc_kernel({}) attributes {{passthrough = [\"noinline\"]}} {{\n  return\n}}",
        params.join(", ")
    );
    let parsed = Module::parse(context, &text).ok_or_else(|| anyhow!("cannot build a kernel function for {}", params.join(", ")))?;
    let function = unsafe { mlirOperationClone(mlirBlockGetFirstOperation(mlirModuleGetBody(parsed.to_raw()))) };
    unsafe { mlirBlockAppendOwnedOperation(mlirModuleGetBody(module.to_raw()), function) };
    Ok(function)
}

/// Moves `op` into `function` (before its return), copies the
/// rematerialized values' ops in, and rewires every use inside `op` of a
/// captured value to the function's argument or copy.
fn move_into(op: MlirOperation, function: MlirOperation, passed: &[MlirValue], copied: &[MlirValue]) {
    unsafe {
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(function, 0));
        let ret = mlirBlockGetFirstOperation(block);
        let mut replacement: Vec<(MlirValue, MlirValue)> =
            passed.iter().enumerate().map(|(i, &v)| (v, mlirBlockGetArgument(block, i as isize))).collect();
        for &v in copied {
            let clone = mlirOperationClone(mlirOpResultGetOwner(v));
            rewire(clone, &replacement);
            mlirBlockInsertOwnedOperationBefore(block, ret, clone);
            replacement.push((v, mlirOperationGetResult(clone, mlirOpResultGetResultNumber(v))));
        }
        mlirOperationMoveBefore(op, ret);
        rewire(op, &replacement);
    }
}

/// Replaces every operand of `op` and the ops inside it that is an old
/// value of `replacement` with its new value.
fn rewire(op: MlirOperation, replacement: &[(MlirValue, MlirValue)]) {
    for (user, i, v) in nested_operands(op) {
        if let Some(&(_, new)) = replacement.iter().find(|(old, _)| same_value(*old, v)) {
            unsafe { mlirOperationSetOperand(user, i, new) };
        }
    }
}

/// Every operand of `op` and of the ops inside it: (user, index, value),
/// in pre-order.
pub(crate) fn nested_operands(op: MlirOperation) -> Vec<(MlirOperation, isize, MlirValue)> {
    let mut operands = Vec::new();
    unsafe { OperationRef::from_raw(op) }.walk(WalkOrder::PreOrder, |inner| {
        let raw = inner.to_raw();
        for i in 0..unsafe { mlirOperationGetNumOperands(raw) } {
            operands.push((raw, i, unsafe { mlirOperationGetOperand(raw, i) }));
        }
        WalkResult::Advance
    });
    operands
}

pub(crate) fn symbol_name(op: MlirOperation) -> Option<String> {
    let attr = unsafe { OperationRef::from_raw(op) }.attribute("sym_name").ok()?;
    let text = attr.to_string();
    Some(text.trim_matches('"').to_string())
}

pub(crate) fn set_symbol_name(context: &Context, op: MlirOperation, name: &str) {
    use melior::ir::operation::OperationMutLike;
    let attr = Attribute::parse(context, &format!("\"{name}\"")).expect("a string attribute");
    unsafe { melior::ir::operation::OperationRefMut::from_raw(op) }.set_attribute("sym_name", attr);
}

/// `func.call @name(values)`.
fn call_op(context: &Context, name: &str, arguments: &[MlirValue]) -> MlirOperation {
    let operands: Vec<melior::ir::Value> = arguments.iter().map(|&v| unsafe { melior::ir::Value::from_raw(v) }).collect();
    let callee = Attribute::parse(context, &format!("@{name}")).expect("a symbol reference");
    melior::ir::operation::OperationBuilder::new("func.call", Location::unknown(context))
        .add_attributes(&[(Identifier::new(context, "callee"), callee)])
        .add_operands(&operands)
        .build()
        .expect("a valid call")
        .into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_unknown() {
        assert_eq!(
            with_unknown_offset("memref<4x16xf32, strided<[32, 1], offset: 66>>").as_deref(),
            Some("memref<4x16xf32, strided<[32, 1], offset: ?>>")
        );
        assert_eq!(with_unknown_offset("memref<4x16xf32, strided<[32, 1], offset: ?>>"), None);
        assert_eq!(with_unknown_offset("memref<4x16xf32>"), None);
    }
}
