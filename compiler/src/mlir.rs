//! MLIR utilities shared by the pipeline stages: parsing with diagnostics,
//! running pass pipelines and transform-dialect scripts, finding the entry
//! function, the small use-def queries the rewrites share, and the
//! inserter they build ops with.

use anyhow::{anyhow, bail, Result};
use melior::{
    ir::{block::BlockLike, operation::OperationLike, operation::OperationMutLike, Attribute, BlockRef, Location, Module, Operation, OperationRef, ValueLike},
    pass::PassManager,
    utility::parse_pass_pipeline,
    Context,
};

/// A dense array attribute `array<element: a, b, ...>` (`element`: i64 or
/// i32), as static offsets, sizes and operand segment sizes are written.
pub fn dense_array<'c>(context: &'c Context, element: &str, values: &[i64]) -> Attribute<'c> {
    let list = values.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    Attribute::parse(context, &format!("array<{element}: {list}>")).expect("a dense array attribute")
}

/// The attributes of a `tensor.extract_slice` or `tensor.insert_slice` with
/// static offsets and sizes and unit strides; `operand_segments` counts its
/// operands by group (extract: `[1, 0, 0, 0]`, insert: `[1, 1, 0, 0, 0]`).
pub fn static_slice_attributes<'c>(
    context: &'c Context,
    offsets: &[i64],
    sizes: &[i64],
    operand_segments: &[i64],
) -> Vec<(melior::ir::Identifier<'c>, Attribute<'c>)> {
    let name = |n: &str| melior::ir::Identifier::new(context, n);
    vec![
        (name("static_offsets"), dense_array(context, "i64", offsets)),
        (name("static_sizes"), dense_array(context, "i64", sizes)),
        (name("static_strides"), dense_array(context, "i64", &vec![1; sizes.len()])),
        (name("operandSegmentSizes"), dense_array(context, "i32", operand_segments)),
    ]
}

/// The name of an op (`linalg.generic`).
pub fn op_name(op: mlir_sys::MlirOperation) -> String {
    unsafe { melior::ir::OperationRef::from_raw(op) }.name().as_string_ref().as_str().unwrap_or("").to_string()
}

/// An op's name without copying it (for walks that ask for many): names
/// are interned in the context, which outlives the ops.
pub fn name_of<'a>(op: mlir_sys::MlirOperation) -> &'a str {
    let name = unsafe { mlir_sys::mlirIdentifierStr(mlir_sys::mlirOperationGetName(op)) };
    std::str::from_utf8(unsafe { std::slice::from_raw_parts(name.data as *const u8, name.length) }).unwrap_or("")
}

/// A loop's induction variable (the first argument of its body).
pub fn induction_variable(loop_op: mlir_sys::MlirOperation) -> mlir_sys::MlirValue {
    unsafe { mlir_sys::mlirBlockGetArgument(mlir_sys::mlirRegionGetFirstBlock(mlir_sys::mlirOperationGetRegion(loop_op, 0)), 0) }
}

/// The op that uses `value`, when exactly one use exists.
pub fn single_user(value: mlir_sys::MlirValue) -> Option<mlir_sys::MlirOperation> {
    unsafe {
        let first = mlir_sys::mlirValueGetFirstUse(value);
        if first.ptr.is_null() || !mlir_sys::mlirOpOperandGetNextUse(first).ptr.is_null() {
            return None;
        }
        Some(mlir_sys::mlirOpOperandGetOwner(first))
    }
}

/// The value of `value` when an `arith.constant` of integer or index type
/// defines it.
pub fn constant_integer(value: mlir_sys::MlirValue) -> Option<i64> {
    use mlir_sys::*;
    unsafe {
        if !mlirValueIsAOpResult(value) {
            return None;
        }
        let op = mlirOpResultGetOwner(value);
        if op_name(op) != "arith.constant" {
            return None;
        }
        let attr = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(c"value".as_ptr()));
        mlirAttributeIsAInteger(attr).then(|| mlirIntegerAttrGetValueInt(attr))
    }
}

/// Whether every use of `view` (through subviews) reads it; with `within`,
/// every use inside that op (uses elsewhere have no say).
pub fn only_read(view: mlir_sys::MlirValue, within: Option<mlir_sys::MlirOperation>) -> bool {
    use mlir_sys::*;
    unsafe {
        let mut use_ = mlirValueGetFirstUse(view);
        while !mlirOpOperandIsNull(use_) {
            let user = mlirOpOperandGetOwner(use_);
            use_ = mlirOpOperandGetNextUse(use_);
            if within.is_some_and(|scope| !crate::outline::is_inside(user, scope)) {
                continue;
            }
            let reads = match op_name(user).as_str() {
                "memref.subview" => only_read(mlirOperationGetResult(user, 0), within),
                "vector.transfer_read" | "memref.load" | "vector.load" => true,
                _ => false,
            };
            if !reads {
                return false;
            }
        }
        true
    }
}

/// An `scf.for`'s lower bound, upper bound and step, when all are constants.
pub fn constant_loop_bounds(for_op: mlir_sys::MlirOperation) -> Option<(i64, i64, i64)> {
    let bound = |i| constant_integer(unsafe { mlir_sys::mlirOperationGetOperand(for_op, i) });
    Some((bound(0)?, bound(1)?, bound(2)?))
}

/// Parses MLIR text, with the verifier's diagnostics in the error.
pub fn parse<'c>(context: &'c Context, text: &str, what: &str) -> Result<Module<'c>> {
    let diagnostics = capture_diagnostics(context);
    let module = Module::parse(context, text);
    let messages = diagnostics.take();
    match module {
        Some(m) if m.as_operation().verify() => Ok(m),
        _ => {
            // A parse error points into the text: quote the line.
            let quoted: Vec<String> = messages
                .iter()
                .map(|m| match m.strip_prefix("loc(\"-\":").and_then(|r| r.split(':').next()).and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => format!("{m}\n  in: {}", text.lines().nth(n - 1).unwrap_or("").trim()),
                    None => m.clone(),
                })
                .collect();
            Err(crate::error::detailed(format!("{what} does not parse or verify"), quoted.join("\n")))
        }
    }
}

/// Collects diagnostics emitted on a context until dropped.
pub struct Diagnostics<'c> {
    context: &'c Context,
    id: melior::diagnostic::DiagnosticHandlerId,
    messages: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
}

impl Diagnostics<'_> {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.messages.borrow_mut())
    }
}

impl Drop for Diagnostics<'_> {
    fn drop(&mut self) {
        self.context.detach_diagnostic_handler(self.id);
    }
}

pub fn capture_diagnostics(context: &Context) -> Diagnostics<'_> {
    let messages = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = messages.clone();
    let id = context.attach_diagnostic_handler(move |d| {
        let mut text = format!("{}: {}", d.location(), d);
        for i in 0..d.note_count() {
            if let Ok(n) = d.note(i) {
                text += &format!("\n  note: {n}");
            }
        }
        sink.borrow_mut().push(text);
        true
    });
    Diagnostics { context, id, messages }
}

/// The model's function: the module's first `func.func` (constants
/// become `memref.global`s beside it).
pub fn entry_function<'c, 'a>(module: &'a Module<'c>) -> Result<melior::ir::OperationRef<'c, 'a>> {
    let mut op = module.body().first_operation();
    while let Some(o) = op {
        if o.name().as_string_ref().as_str() == Ok("func.func") {
            return Ok(o);
        }
        op = o.next_in_block();
    }
    bail!("the module has no function")
}

/// Runs a textual pass pipeline (`builtin.module(...)`) on a module.
pub fn run_pipeline(context: &Context, module: &mut Module, pipeline: &str, what: &str) -> Result<()> {
    let diagnostics = capture_diagnostics(context);
    let pm = PassManager::new(context);
    // The module is verified once after the whole pipeline. Verifying it
    // after every pass as well took ~0.2 s of resnet18's compile (its IR is
    // large); debug builds (the passes' own tests) still do.
    pm.enable_verifier(cfg!(debug_assertions));
    parse_pass_pipeline(pm.as_operation_pass_manager(), pipeline)
        .map_err(|e| anyhow!("{what}: bad pass pipeline: {e}"))?;
    if pm.run(module).is_err() || !module.as_operation().verify() {
        return Err(crate::error::detailed(format!("{what} failed"), diagnostics.take().join("\n")));
    }
    Ok(())
}

/// Runs a transform-dialect script (a module holding `@__transform_main`)
/// on `module` with the transform interpreter; the script is appended to
/// the payload for the run and removed afterwards.
pub fn run_transform(context: &Context, module: &mut Module, script: &str, what: &str) -> Result<()> {
    let strategy = parse(context, script, what)?;
    let sequence = strategy.body().first_operation().ok_or_else(|| anyhow!("{what}: empty script"))?;
    let sequence = unsafe { melior::ir::Operation::from_raw(mlir_sys::mlirOperationClone(sequence.to_raw())) };
    module.body().append_operation(sequence);
    let unit = Attribute::parse(context, "unit").expect("unit attribute");
    module.as_operation_mut().set_attribute("transform.with_named_sequence", unit);
    let result = run_pipeline(context, module, "builtin.module(transform-interpreter, canonicalize, cse)", what);
    let mut op = module.body().first_operation();
    while let Some(o) = op {
        op = o.next_in_block();
        if o.name().as_string_ref().as_str() == Ok("transform.named_sequence") {
            unsafe {
                mlir_sys::mlirOperationRemoveFromParent(o.to_raw());
                mlir_sys::mlirOperationDestroy(o.to_raw());
            }
        }
    }
    let _ = module.as_operation_mut().remove_attribute("transform.with_named_sequence");
    result
}

/// Inserts ops built through the C API before one anchor op, at its
/// location: the rewrites that add ops between existing ones (`padding`,
/// `kernels::prefetch`) give it the constructors they need in their own
/// `impl` blocks.
pub struct InsertBefore<'c, 'a> {
    pub context: &'c Context,
    pub block: BlockRef<'c, 'a>,
    pub anchor: OperationRef<'c, 'a>,
    pub location: Location<'c>,
}

impl<'c, 'a> InsertBefore<'c, 'a> {
    /// Before `anchor`, in its block.
    pub fn new(context: &'c Context, anchor: OperationRef<'c, 'a>) -> InsertBefore<'c, 'a> {
        let block = unsafe { BlockRef::from_raw(mlir_sys::mlirOperationGetBlock(anchor.to_raw())) };
        InsertBefore { context, block, anchor, location: anchor.location() }
    }

    /// Inserts `op` and returns its first result.
    pub fn insert(&self, op: Operation<'c>) -> Result<mlir_sys::MlirValue> {
        Ok(self.block.insert_operation_before(self.anchor, op).result(0)?.to_raw())
    }

    /// Inserts `op`, which has no result.
    pub fn insert_without_result(&self, op: Operation<'c>) {
        self.block.insert_operation_before(self.anchor, op);
    }

    /// An `index` constant.
    pub fn index(&self, value: i64) -> Result<mlir_sys::MlirValue> {
        let index = melior::ir::Type::index(self.context);
        let op = melior::ir::operation::OperationBuilder::new("arith.constant", self.location)
            .add_attributes(&[(
                melior::ir::Identifier::new(self.context, "value"),
                melior::ir::attribute::IntegerAttribute::new(index, value).into(),
            )])
            .add_results(&[index])
            .build()?;
        self.insert(op)
    }

    /// `name(a, b) : index` (`arith.addi`, `arith.muli`, ...).
    pub fn index_op(&self, name: &str, a: mlir_sys::MlirValue, b: mlir_sys::MlirValue) -> Result<mlir_sys::MlirValue> {
        let op = unsafe {
            melior::ir::operation::OperationBuilder::new(name, self.location)
                .add_operands(&[melior::ir::Value::from_raw(a), melior::ir::Value::from_raw(b)])
                .add_results(&[melior::ir::Type::index(self.context)])
                .build()?
        };
        self.insert(op)
    }
}
