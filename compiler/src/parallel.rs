//! Parallel kernels, after outlining: a kernel that is one loop nest whose
//! outermost loop is marked [`PARALLEL`] (its iterations write disjoint
//! parts of the result and accumulate nothing across each other; the
//! strategies mark such loops) and that does enough work takes the range of
//! that loop's iterations it runs as two more parameters, `(begin, end)`,
//! after a `memref<?xi8>` scratch that its temporaries become views of. It
//! is renamed `<kernel>_parallel`, and every call passes the whole range;
//! in LLVM IR, [`dispatch_calls`] turns those calls into calls of the
//! runtime's `aotc_rt_parallel_for`, which shares the iterations among the
//! worker pool's threads (one home range each, pieces of it taken over by
//! threads done early) or runs them all on the calling thread, each thread
//! with its own scratch. An outer loop of few iterations shares its range
//! with the parallel loop that its body runs ([`COLLAPSE_BELOW`]).
//!
//! Each iteration computes the same values whichever thread runs it and
//! however the range is chunked, so results are bitwise identical for every
//! thread count. Kernels that do little work stay on the calling thread:
//! waking a worker costs about a microsecond.

use crate::border_fills::BORDER_FILL;
use crate::kernels::PARALLEL;
use crate::mlir::{constant_loop_bounds, op_name, InsertBefore};
use crate::outline::{set_symbol_name, symbol_name};
use anyhow::{anyhow, bail, Result};
use inkwell::context::Context as LlvmContext;
use inkwell::module::Module as LlvmModule;
use inkwell::types::{BasicTypeEnum, StructType};
use inkwell::values::{BasicMetadataValueEnum, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue};
use melior::ir::operation::{OperationLike, OperationRef, WalkOrder, WalkResult};
use melior::ir::{Attribute, AttributeLike, Location, Module, Type, TypeLike};
use melior::Context;
use mlir_sys::*;

/// The suffix of a kernel that takes its iteration range.
pub const PARALLEL_SUFFIX: &str = "_parallel";

/// Kernels that execute fewer operations than this (counted over the loop
/// nest, a vector op as one) and touch fewer bytes than [`MIN_BYTES`] stay
/// serial: waking a worker costs about as much as either.
pub const MIN_WORK: i64 = 20_000;

/// A model whose kernels execute fewer operations than this in all and
/// touch fewer than [`MIN_MODEL_BYTES`] (a few tens of microseconds) runs
/// on the calling thread alone: a second thread would save microseconds,
/// and each handoff can wait for a worker the system has not scheduled
/// (SimpleNet: 17 us on one thread, 24 us median on two beside ONNX
/// Runtime's and torch's threads).
pub const MIN_MODEL_WORK: i64 = 1_000_000;

/// See [`MIN_MODEL_WORK`]: the bytes all kernel calls touch (SimpleNet:
/// 0.4 MB; an elementwise op over a million floats: 8 MB).
pub const MIN_MODEL_BYTES: i64 = 2 * 1024 * 1024;

/// See [`MIN_WORK`]: the bytes of the kernel's buffers (a copy or a gather
/// does few operations on many bytes).
pub const MIN_BYTES: i64 = 64 * 1024;

/// One kernel made parallel: its new name and its outer loop's trip count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParallelKernel {
    pub name: String,
    pub trips: i64,
    pub work: i64,
    /// Bytes of scratch each thread needs (its temporaries).
    pub scratch_bytes: i64,
}

/// A kernel that stays on the calling thread, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialKernel {
    pub name: String,
    pub reason: String,
    /// See [`work`].
    pub work: i64,
}

/// What became of each kernel: made parallel, or why it stays serial.
#[derive(Debug, Default)]
pub struct Parallelized {
    pub parallel: Vec<ParallelKernel>,
    pub serial: Vec<SerialKernel>,
}

impl Parallelized {
    /// One comment line per kernel: parallel ones first.
    pub fn listing(&self) -> String {
        let mut text = String::new();
        for k in &self.parallel {
            text += &format!("// parallel: {} ({} iterations, work {}, scratch {} bytes)\n", k.name, k.trips, k.work, k.scratch_bytes);
        }
        for k in &self.serial {
            text += &format!("// serial: {} ({})\n", k.name, k.reason);
        }
        text
    }

    /// How the pool shares the kernels among `threads` threads: per
    /// parallel kernel, its home ranges (`aotc_runtime::pool::chunk`) and
    /// how busy the threads are (the iterations over threads times the
    /// largest range, before threads take pieces of each other's ranges);
    /// then the work-weighted average and the share of the work in serial
    /// kernels.
    pub fn plan(&self, threads: usize) -> String {
        let threads = threads.max(1);
        let mut text = format!("partition for {threads} threads: kernel, iterations, home ranges (iterations each), busy\n");
        let (mut weighted, mut total) = (0.0, 0.0);
        for k in &self.parallel {
            let parts = threads.min(k.trips.max(1) as usize);
            let sizes: Vec<i64> = (0..parts).map(|p| aotc_runtime::pool::chunk(k.trips, p, parts)).map(|(b, e)| e - b).collect();
            let (low, high) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
            let busy = k.trips as f64 / (threads as f64 * high.max(1) as f64);
            let each = if low == high { format!("{high}") } else { format!("{low}-{high}") };
            text += &format!("  {:<40} {:>6} {:>3} x {:<7} {:>5.0}%\n", k.name, k.trips, parts, each, busy * 100.0);
            weighted += busy * k.work as f64;
            total += k.work as f64;
        }
        let serial_work: i64 = self.serial.iter().map(|k| k.work).sum();
        let all = total + serial_work as f64;
        text += &format!(
            "{} parallel kernels, busy {:.0}% (weighted by work); {} serial kernels ({:.1}% of the work)\n",
            self.parallel.len(),
            if total > 0.0 { weighted / total * 100.0 } else { 0.0 },
            self.serial.len(),
            if all > 0.0 { serial_work as f64 / all * 100.0 } else { 0.0 },
        );
        text
    }
}

/// Makes every eligible kernel of the module take its iteration range (see
/// the module docs).
pub fn parallelize_kernels(context: &Context, module: &Module) -> Result<Parallelized> {
    let entry = crate::mlir::entry_function(module)?.to_raw();
    let entry_block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(entry, 0)) };
    let arguments = unsafe { mlirBlockGetNumArguments(entry_block) };
    let Some(arena) = arguments.checked_sub(1).map(|last| unsafe { mlirBlockGetArgument(entry_block, last) }) else {
        return Ok(Parallelized::default());
    };
    let mut calls: Vec<(String, MlirOperation)> = Vec::new();
    unsafe { OperationRef::from_raw(entry) }.walk(WalkOrder::PreOrder, |op| {
        if op.name().as_string_ref().as_str() == Ok("func.call") {
            let callee = op.attribute("callee").map(|a| a.to_string()).unwrap_or_default();
            calls.push((callee.trim_start_matches('@').to_string(), op.to_raw()));
        }
        WalkResult::Advance
    });
    // (kernel, its calls, its work, its plan or why it stays serial)
    let mut planned = Vec::new();
    let (mut model_work, mut model_bytes) = (0i64, 0i64);
    let mut function = unsafe { mlirBlockGetFirstOperation(mlirModuleGetBody(module.to_raw())) };
    while !function.ptr.is_null() {
        if op_name(function) == "func.func" && function.ptr != entry.ptr {
            let name = symbol_name(function).unwrap_or_default();
            let sites: Vec<MlirOperation> = calls.iter().filter(|(c, _)| *c == name).map(|(_, op)| *op).collect();
            let (kernel_work, bytes) = (work(function), buffer_bytes(function));
            model_work = model_work.saturating_add(kernel_work.saturating_mul(sites.len() as i64));
            model_bytes = model_bytes.saturating_add(bytes.saturating_mul(sites.len() as i64));
            let plan = plan_kernel(function, &sites, arena, bytes);
            planned.push((function, name, sites, kernel_work, plan));
        }
        function = unsafe { mlirOperationGetNextInBlock(function) };
    }
    let mut kernels = Parallelized::default();
    for (function, name, sites, kernel_work, plan) in planned {
        let plan = plan.and_then(|p| {
            if model_work < MIN_MODEL_WORK && model_bytes < MIN_MODEL_BYTES {
                return Err(format!("the model's work {model_work} < {MIN_MODEL_WORK}, {model_bytes} bytes < {MIN_MODEL_BYTES}"));
            }
            Ok(p)
        });
        match plan {
            Ok(plan) => kernels.parallel.push(make_parallel(context, function, &sites, arena, plan)?),
            Err(reason) => kernels.serial.push(SerialKernel { name, reason, work: kernel_work }),
        }
    }
    Ok(kernels)
}

/// An outer parallel loop of fewer iterations than this shares its range
/// with the parallel loop right inside it (see [`Collapsed`]): a range of
/// 3, 6 or 8 blocks cannot be shared evenly, nor its pieces taken over by a
/// thread done early (mobilenet_v2's depthwise kernels: 6 channel blocks of
/// 112 rows).
pub const COLLAPSE_BELOW: i64 = 64;

/// The parallel loop that the outer loop's body runs, when the two
/// share one range of `outer trips x inner trips` iterations (iteration
/// `i` is the inner loop's iteration `i % inner trips` in the outer loop's
/// `i / inner trips`).
struct Collapsed {
    inner: MlirOperation,
    inner_trips: i64,
    /// Fills after the inner loop that each outer iteration makes once (a
    /// padded buffer's border strips, see `border_fills`): the piece of the
    /// range that runs the inner loop's first iteration makes them.
    once: Vec<MlirOperation>,
}

/// How a kernel is made parallel.
struct Plan {
    outer: MlirOperation,
    collapsed: Option<Collapsed>,
    /// The iterations of the range (both loops' when collapsed).
    trips: i64,
    work: i64,
    /// The parameters that are scratch at every call, with their bytes.
    scratch: Vec<(usize, i64)>,
}

/// The plan for one kernel, or why it stays serial.
/// `bytes`: the kernel's [`buffer_bytes`].
fn plan_kernel(function: MlirOperation, sites: &[MlirOperation], arena: MlirValue, bytes: i64) -> std::result::Result<Plan, String> {
    let outer = single_loop(function).ok_or("not one loop nest")?;
    if !unsafe { OperationRef::from_raw(outer) }.has_attribute(PARALLEL) || unsafe { mlirOperationGetNumResults(outer) } != 0 {
        return Err("its outer loop is not parallel".into());
    }
    let trips = trip_count(constant_loop_bounds(outer).ok_or("its outer loop's bounds are not constants")?);
    let work = work(outer);
    if sites.is_empty() {
        return Err("not called".into());
    }
    let collapsed = if trips < COLLAPSE_BELOW { parallel_body_loop(outer) } else { None };
    let trips = trips * collapsed.as_ref().map_or(1, |c| c.inner_trips);
    if trips < 2 {
        return Err(format!("{trips} iteration(s)"));
    }
    if work < MIN_WORK && bytes < MIN_BYTES {
        return Err(format!("work {work} < {MIN_WORK}, {bytes} bytes < {MIN_BYTES}"));
    }
    let block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(function, 0)) };
    let mut scratch = Vec::new();
    for i in 0..unsafe { mlirBlockGetNumArguments(block) } {
        let per_site: Vec<bool> = sites.iter().map(|&call| is_scratch(call, i, sites, arena)).collect();
        if per_site.iter().all(|&s| s) {
            let bytes = memref_bytes(unsafe { mlirValueGetType(mlirBlockGetArgument(block, i)) });
            scratch.push((i as usize, bytes.ok_or("a scratch buffer that is not contiguous")?));
        } else if per_site.iter().any(|&s| s) {
            // threads would share it
            return Err(format!("parameter {i} is scratch at one call, live data at another"));
        }
    }
    Ok(Plan { outer, collapsed, trips, work, scratch })
}

/// The parallel loop that shares its range with `outer`'s, if any (see
/// [`Collapsed`]; `outer` has fewer than [`COLLAPSE_BELOW`] iterations).
pub(crate) fn collapsed_inner_loop(outer: MlirOperation) -> Option<MlirOperation> {
    parallel_body_loop(outer).map(|c| c.inner)
}

/// The loop that is all `outer`'s body does, if it is parallel, has
/// constant bounds and yields nothing: besides it, the body may only make
/// views and index values for it (which then run once per piece of it),
/// and after it the border fills that `border_fills` joined to it (their
/// strips lie apart from all it touches).
fn parallel_body_loop(outer: MlirOperation) -> Option<Collapsed> {
    let body = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(outer, 0)) };
    let mut inner = None;
    let mut once = Vec::new();
    let mut op = unsafe { mlirBlockGetFirstOperation(body) };
    while !op.ptr.is_null() {
        let name = op_name(op);
        match name.as_str() {
            "scf.for" if inner.is_none() => inner = Some(op),
            "linalg.fill" if inner.is_some() && unsafe { OperationRef::from_raw(op) }.has_attribute(BORDER_FILL) => once.push(op),
            "scf.yield" | "memref.subview" | "memref.expand_shape" | "memref.collapse_shape" | "memref.cast" | "affine.apply"
            | "affine.min" | "affine.max" => {}
            _ if name.starts_with("arith.") => {}
            _ => return None,
        }
        op = unsafe { mlirOperationGetNextInBlock(op) };
    }
    let inner = inner?;
    if !unsafe { OperationRef::from_raw(inner) }.has_attribute(PARALLEL) || unsafe { mlirOperationGetNumResults(inner) } != 0 {
        return None;
    }
    let inner_trips = trip_count(constant_loop_bounds(inner)?);
    (inner_trips >= 1).then_some(Collapsed { inner, inner_trips, once })
}

/// Whether operand `index` of a kernel call is scratch: a slot of the arena
/// (possibly reshaped) that nothing uses but calls of this kernel in this
/// operand, so its contents before and after each call do not matter, and
/// each thread may use a copy of its own. Each buffer has a view of its own
/// (`arena::plan` keeps CSE from merging the views of buffers that share a
/// slot at different times: a temporary of one kernel would look used by
/// another, and its threads would share it).
fn is_scratch(call: MlirOperation, index: isize, sites: &[MlirOperation], arena: MlirValue) -> bool {
    let mut v = unsafe { mlirOperationGetOperand(call, index) };
    if !only_this_operand(v, index, sites) {
        return false;
    }
    loop {
        if unsafe { !mlirValueIsAOpResult(v) } {
            return false;
        }
        let def = unsafe { mlirOpResultGetOwner(v) };
        let source = unsafe { mlirOperationGetOperand(def, 0) };
        match op_name(def).as_str() {
            "memref.view" => return source.ptr == arena.ptr,
            "memref.expand_shape" | "memref.collapse_shape" | "memref.cast" if crate::mlir::single_user(source).is_some() => v = source,
            _ => return false,
        }
    }
}

/// Whether every use of `v` is operand `index` of one of `calls`.
fn only_this_operand(v: MlirValue, index: isize, calls: &[MlirOperation]) -> bool {
    let mut operand = unsafe { mlirValueGetFirstUse(v) };
    while !operand.ptr.is_null() {
        let owner = unsafe { mlirOpOperandGetOwner(operand) };
        let number = unsafe { mlirOpOperandGetOperandNumber(operand) } as isize;
        if number != index || !calls.iter().any(|c| c.ptr == owner.ptr) {
            return false;
        }
        operand = unsafe { mlirOpOperandGetNextUse(operand) };
    }
    true
}

/// The bytes of a kernel's buffers (its memref parameters).
fn buffer_bytes(function: MlirOperation) -> i64 {
    let block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(function, 0)) };
    (0..unsafe { mlirBlockGetNumArguments(block) })
        .filter_map(|i| memref_bytes_any_layout(unsafe { mlirValueGetType(mlirBlockGetArgument(block, i)) }))
        .sum()
}

/// The bytes of a static, contiguous (identity layout) memref type.
fn memref_bytes(ty: MlirType) -> Option<i64> {
    let identity = unsafe { mlirTypeIsAMemRef(ty) && mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(ty)) };
    if !identity {
        return None;
    }
    memref_bytes_any_layout(ty)
}

/// The bytes of the elements of a static memref type (whatever its strides).
fn memref_bytes_any_layout(ty: MlirType) -> Option<i64> {
    unsafe {
        if !mlirTypeIsAMemRef(ty) || !mlirShapedTypeHasStaticShape(ty) {
            return None;
        }
        let rank = mlirShapedTypeGetRank(ty);
        let elements: i64 = (0..rank).map(|d| mlirShapedTypeGetDimSize(ty, d as isize)).product();
        Some(elements * element_bytes(ty)?)
    }
}

/// The bytes of one element of a shaped type (an integer, float or index).
pub(crate) fn element_bytes(ty: MlirType) -> Option<i64> {
    let element = unsafe { mlirShapedTypeGetElementType(ty) };
    let bits = unsafe {
        if mlirTypeIsAInteger(element) {
            mlirIntegerTypeGetWidth(element) as i64
        } else if mlirTypeIsAFloat(element) {
            mlirFloatTypeGetWidth(element) as i64
        } else if mlirTypeIsAIndex(element) {
            64
        } else {
            return None;
        }
    };
    Some(((bits + 7) / 8).max(1))
}

/// Scratch slots start at multiples of this in a thread's scratch.
const SCRATCH_ALIGN: i64 = 64;

/// The outer loop of a kernel that is one loop nest (constants and views
/// of its buffers before it).
fn single_loop(function: MlirOperation) -> Option<MlirOperation> {
    let block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(function, 0)) };
    let mut found = None;
    let mut op = unsafe { mlirBlockGetFirstOperation(block) };
    while !op.ptr.is_null() {
        match op_name(op).as_str() {
            "scf.for" if found.is_none() => found = Some(op),
            "arith.constant" | "memref.get_global" | "ub.poison" | "func.return" => {}
            "memref.subview" | "memref.expand_shape" | "memref.collapse_shape" | "memref.cast" | "memref.reinterpret_cast"
                if found.is_none() => {}
            _ => return None,
        }
        op = unsafe { mlirOperationGetNextInBlock(op) };
    }
    found
}

/// The iterations of a loop with these bounds and step.
pub(crate) fn trip_count((lb, ub, step): (i64, i64, i64)) -> i64 {
    if step <= 0 || ub <= lb {
        0
    } else {
        (ub - lb + step - 1) / step
    }
}

/// The operations a loop nest executes: every op counted once per
/// iteration of the loops around it (a loop with bounds not known at
/// compile time counts once).
pub fn work(op: MlirOperation) -> i64 {
    let root = unsafe { OperationRef::from_raw(op) };
    let mut total = 0i64;
    root.walk(WalkOrder::PreOrder, |o| {
        let name = o.name().as_string_ref().as_str().unwrap_or("").to_string();
        if matches!(name.as_str(), "scf.yield" | "arith.constant" | "scf.for") {
            return WalkResult::Advance;
        }
        let mut times = 1i64;
        let mut parent = o.parent_operation();
        while let Some(p) = parent {
            if p.name().as_string_ref().as_str() == Ok("scf.for") {
                times = times.saturating_mul(constant_loop_bounds(p.to_raw()).map(trip_count).unwrap_or(1).max(1));
            }
            if p.to_raw().ptr == op.ptr {
                break;
            }
            parent = p.parent_operation();
        }
        total = total.saturating_add(times);
        WalkResult::Advance
    });
    total
}

/// `memref<?xi8>`: the arena's type, and the scratch's.
fn bytes_type(context: &Context) -> Type<'_> {
    melior::ir::r#type::MemRefType::new(melior::ir::r#type::IntegerType::new(context, 8).into(), &[i64::MIN], None, None).into()
}

/// A new last argument of `block`.
fn add_argument(context: &Context, block: MlirBlock, ty: Type) -> MlirValue {
    unsafe { mlirBlockAddArgument(block, ty.to_raw(), Location::unknown(context).to_raw()) }
}

/// An inserter before `anchor` (see `mlir::InsertBefore`).
fn before<'c>(context: &'c Context, anchor: MlirOperation) -> InsertBefore<'c, 'c> {
    InsertBefore::new(context, unsafe { OperationRef::from_raw(anchor) })
}

/// The scratch views of parallel kernels, and the guard of the fills a
/// collapsed range makes once per outer iteration.
impl<'c> InsertBefore<'c, '_> {
    /// `arith.cmpi eq, a, b`.
    fn index_equal(&self, a: MlirValue, b: MlirValue) -> Result<MlirValue> {
        let predicate = Attribute::parse(self.context, "0 : i64").ok_or_else(|| anyhow!("a bad predicate"))?;
        let op = melior::ir::operation::OperationBuilder::new("arith.cmpi", self.location)
            .add_operands(&[unsafe { melior::ir::Value::from_raw(a) }, unsafe { melior::ir::Value::from_raw(b) }])
            .add_attributes(&[(melior::ir::Identifier::new(self.context, "predicate"), predicate)])
            .add_results(&[melior::ir::r#type::IntegerType::new(self.context, 1).into()])
            .build()?;
        self.insert(op)
    }

    /// `scf.if %condition { }` (no else); returns its `scf.yield`, before
    /// which the ops of the branch go.
    fn if_then(&self, condition: MlirValue) -> Result<MlirOperation> {
        use melior::ir::{block::BlockLike, RegionLike};
        let then = melior::ir::Block::new(&[]);
        let end = then.append_operation(melior::ir::operation::OperationBuilder::new("scf.yield", self.location).build()?).to_raw();
        let region = melior::ir::Region::new();
        region.append_block(then);
        let op = melior::ir::operation::OperationBuilder::new("scf.if", self.location)
            .add_operands(&[unsafe { melior::ir::Value::from_raw(condition) }])
            .add_regions([region, melior::ir::Region::new()])
            .build()?;
        self.insert_without_result(op);
        Ok(end)
    }

    /// `memref.view %source[%shift][sizes] : memref<?xi8> to ty`.
    fn view(&self, source: MlirValue, shift: MlirValue, sizes: &[MlirValue], ty: Type<'c>) -> Result<MlirValue> {
        let operands: Vec<melior::ir::Value> =
            [source, shift].iter().chain(sizes).map(|&v| unsafe { melior::ir::Value::from_raw(v) }).collect();
        let op = melior::ir::operation::OperationBuilder::new("memref.view", self.location).add_operands(&operands).add_results(&[ty]).build()?;
        self.insert(op)
    }
}

/// Rewrites the kernel to `(params but scratch..., scratch: memref<?xi8>,
/// begin, end)` (see [`scratch_as_views`], [`run_range`]) and renamed
/// `<kernel>_parallel`, and its calls to match ([`pass_whole_range`]).
fn make_parallel(context: &Context, function: MlirOperation, sites: &[MlirOperation], arena: MlirValue, plan: Plan) -> Result<ParallelKernel> {
    let block = unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(function, 0)) };
    let scratch_bytes = scratch_as_views(context, block, &plan.scratch)?;
    let index = Type::index(context);
    let (begin, end) = (add_argument(context, block, index), add_argument(context, block, index));
    set_function_type(context, function);
    match &plan.collapsed {
        None => run_range(&before(context, plan.outer), plan.outer, begin, end)?,
        Some(collapsed) => run_collapsed_range(context, plan.outer, collapsed, begin, end)?,
    }
    let name = symbol_name(function).ok_or_else(|| anyhow!("a kernel without a name"))?;
    let name = format!("{name}{PARALLEL_SUFFIX}");
    set_symbol_name(context, function, &name);
    let callee = Attribute::parse(context, &format!("@{name}")).ok_or_else(|| anyhow!("a bad kernel name"))?;
    for &call in sites {
        pass_whole_range(&before(context, call), call, callee, arena, &plan, scratch_bytes)?;
    }
    Ok(ParallelKernel { name, trips: plan.trips, work: plan.work, scratch_bytes })
}

/// Replaces the scratch parameters by views of one new `memref<?xi8>`
/// parameter at aligned offsets; returns its size.
fn scratch_as_views(context: &Context, block: MlirBlock, scratch_params: &[(usize, i64)]) -> Result<i64> {
    let first = before(context, unsafe { mlirBlockGetFirstOperation(block) });
    let scratch = add_argument(context, block, bytes_type(context));
    let mut offset = 0i64;
    for &(param, bytes) in scratch_params {
        let argument = unsafe { mlirBlockGetArgument(block, param as isize) };
        let ty = unsafe { Type::from_raw(mlirValueGetType(argument)) };
        let view = first.view(scratch, first.index(offset)?, &[], ty)?;
        unsafe { mlirValueReplaceAllUsesOfWith(argument, view) };
        offset += (bytes + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
    }
    for &(param, _) in scratch_params.iter().rev() {
        unsafe { mlirBlockEraseArgument(block, param as u32) };
    }
    Ok(offset)
}

/// The outer loop runs iterations `[begin, end)`: from `lb + begin * step`
/// to `min(ub, lb + end * step)` (ops inserted by `insert`, before it).
fn run_range(insert: &InsertBefore, outer: MlirOperation, begin: MlirValue, end: MlirValue) -> Result<()> {
    let (lb, ub, step) = unsafe { (mlirOperationGetOperand(outer, 0), mlirOperationGetOperand(outer, 1), mlirOperationGetOperand(outer, 2)) };
    let new_lb = insert.index_op("arith.addi", lb, insert.index_op("arith.muli", begin, step)?)?;
    let past = insert.index_op("arith.addi", lb, insert.index_op("arith.muli", end, step)?)?;
    let new_ub = insert.index_op("arith.minsi", past, ub)?;
    unsafe {
        mlirOperationSetOperand(outer, 0, new_lb);
        mlirOperationSetOperand(outer, 1, new_ub);
    }
    Ok(())
}

/// The two loops run iterations `[begin, end)` of their shared range: the
/// outer loop its iterations `begin / n` to `(end - 1) / n` (`n` the inner
/// loop's trips), and in its iteration `a` the inner loop its iterations
/// `max(begin - a*n, 0)` to `min(end - a*n, n)` (all of them but at the ends
/// of the range). The loops and their bodies stay as they are.
fn run_collapsed_range(context: &Context, outer: MlirOperation, collapsed: &Collapsed, begin: MlirValue, end: MlirValue) -> Result<()> {
    let outside = before(context, outer);
    let n = outside.index(collapsed.inner_trips)?;
    let last = outside.index_op("arith.subi", end, outside.index(1)?)?;
    let outer_begin = outside.index_op("arith.divsi", begin, n)?;
    let outer_end = outside.index_op("arith.addi", outside.index_op("arith.divsi", last, n)?, outside.index(1)?)?;
    run_range(&outside, outer, outer_begin, outer_end)?;
    let inside = before(context, collapsed.inner);
    let (lb, step) = unsafe { (mlirOperationGetOperand(outer, 0), mlirOperationGetOperand(outer, 2)) };
    let iteration = crate::mlir::induction_variable(outer);
    // `lb` is the new lower bound: iteration `a` counts from `outer_begin`
    let a = inside.index_op("arith.addi", inside.index_op("arith.divsi", inside.index_op("arith.subi", iteration, lb)?, step)?, outer_begin)?;
    let first = inside.index_op("arith.muli", a, inside.index(collapsed.inner_trips)?)?;
    let from = inside.index_op("arith.maxsi", inside.index_op("arith.subi", begin, first)?, inside.index(0)?)?;
    let to = inside.index_op("arith.minsi", inside.index_op("arith.subi", end, first)?, inside.index(collapsed.inner_trips)?)?;
    run_range(&inside, collapsed.inner, from, to)?;
    if !collapsed.once.is_empty() {
        // at the end of the body, where the fills' slices are all defined
        let at = before(context, unsafe { mlirBlockGetTerminator(mlirRegionGetFirstBlock(mlirOperationGetRegion(outer, 0))) });
        let starts_block = at.index_equal(from, at.index(0)?)?;
        let then = at.if_then(starts_block)?;
        for &fill in &collapsed.once {
            unsafe { mlirOperationMoveBefore(fill, then) };
        }
    }
    Ok(())
}

/// A call of the rewritten kernel: its operands but the scratch ones, a
/// view of the arena of the scratch's size (the dispatch points it at each
/// thread's scratch), and the whole range `(0, trips)`.
fn pass_whole_range(insert: &InsertBefore, call: MlirOperation, callee: Attribute, arena: MlirValue, plan: &Plan, scratch_bytes: i64) -> Result<()> {
    let operands: Vec<MlirValue> = (0..unsafe { mlirOperationGetNumOperands(call) }).map(|i| unsafe { mlirOperationGetOperand(call, i) }).collect();
    let is_scratch = |i: usize| plan.scratch.iter().any(|(p, _)| *p == i);
    let (dropped, kept): (Vec<(usize, MlirValue)>, Vec<(usize, MlirValue)>) = operands.into_iter().enumerate().partition(|(i, _)| is_scratch(*i));
    let (zero, size) = (insert.index(0)?, insert.index(scratch_bytes)?);
    let area = insert.view(arena, zero, &[size], bytes_type(insert.context))?;
    let mut operands: Vec<MlirValue> = kept.into_iter().map(|(_, v)| v).collect();
    operands.extend([area, zero, insert.index(plan.trips)?]);
    unsafe {
        mlirOperationSetOperands(call, operands.len() as isize, operands.as_ptr());
        mlirOperationSetAttributeByName(call, mlirStringRefCreateFromCString(c"callee".as_ptr()), callee.to_raw());
    }
    dropped.into_iter().for_each(|(_, v)| erase_unused_view(v));
    Ok(())
}

/// Erases the view (and the views it was made from) that defined a
/// scratch operand, once no call uses it.
fn erase_unused_view(mut v: MlirValue) {
    loop {
        let unused = unsafe { mlirValueGetFirstUse(v).ptr.is_null() };
        if !unused || unsafe { !mlirValueIsAOpResult(v) } {
            return;
        }
        let def = unsafe { mlirOpResultGetOwner(v) };
        if !matches!(op_name(def).as_str(), "memref.view" | "memref.expand_shape" | "memref.collapse_shape" | "memref.cast") {
            return;
        }
        v = unsafe { mlirOperationGetOperand(def, 0) };
        unsafe { mlirOperationDestroy(def) };
    }
}

/// Sets the function's type to its block's argument types (no results).
fn set_function_type(context: &Context, function: MlirOperation) {
    unsafe {
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(function, 0));
        let inputs: Vec<MlirType> = (0..mlirBlockGetNumArguments(block)).map(|i| mlirValueGetType(mlirBlockGetArgument(block, i))).collect();
        let ty = mlirFunctionTypeGet(context.to_raw(), inputs.len() as isize, inputs.as_ptr(), 0, std::ptr::null());
        mlirOperationSetAttributeByName(function, mlirStringRefCreateFromCString(c"function_type".as_ptr()), mlirTypeAttrGet(ty));
    }
}

/// The runtime's entry for a parallel kernel (see `aotc_runtime::pool`).
pub const PARALLEL_FOR: &str = "aotc_rt_parallel_for";

/// A parallel kernel's last parameters in LLVM IR: the scratch memref's
/// descriptor (allocated and aligned pointers, offset, size, stride), then
/// begin and end.
const SCRATCH_AND_RANGE: usize = 7;

/// In LLVM IR: every call of a `<kernel>_parallel(args..., scratch, 0,
/// trips)` becomes `aotc_rt_parallel_for(trips, <kernel>_parallel_task,
/// &args, scratch bytes)`, where the task (`(args, begin, end, scratch)`)
/// unpacks the arguments from the struct, points the scratch memref at the
/// running thread's scratch, and calls the kernel on its range.
pub fn dispatch_calls<'l>(llvm: &'l LlvmContext, ir: &LlvmModule<'l>) -> Result<()> {
    let kernels: Vec<_> = ir
        .get_functions()
        .filter(|f| f.count_basic_blocks() > 0 && f.get_name().to_string_lossy().ends_with(PARALLEL_SUFFIX))
        .collect();
    if kernels.is_empty() {
        return Ok(());
    }
    let (i64_ty, ptr_ty) = (llvm.i64_type(), llvm.ptr_type(inkwell::AddressSpace::default()));
    let parallel_for = ir.get_function(PARALLEL_FOR).unwrap_or_else(|| {
        ir.add_function(PARALLEL_FOR, llvm.void_type().fn_type(&[i64_ty.into(), ptr_ty.into(), ptr_ty.into(), i64_ty.into()], false), None)
    });
    let builder = llvm.create_builder();
    for kernel in kernels {
        let params = kernel.get_type().get_param_types();
        let Some(packed_count) = params.len().checked_sub(2).filter(|_| params.len() >= SCRATCH_AND_RANGE) else {
            bail!("parallel kernel {} lacks its scratch and range parameters", kernel.get_name().to_string_lossy());
        };
        let packed_types: Vec<BasicTypeEnum> = params[..packed_count]
            .iter()
            .map(|t| BasicTypeEnum::try_from(*t).map_err(|_| anyhow!("a kernel parameter that is not a value")))
            .collect::<Result<_>>()?;
        let args_ty = llvm.struct_type(&packed_types, false);
        // the calls, found before the task adds one
        let kernel_pointer = BasicValueEnum::from(kernel.as_global_value().as_pointer_value());
        let calls: Vec<_> = ir
            .get_functions()
            .flat_map(|f| f.get_basic_block_iter().flat_map(|b| b.get_instructions()).collect::<Vec<_>>())
            .filter(|i| i.get_opcode() == InstructionOpcode::Call && i.get_operand(i.get_num_operands() - 1).and_then(|o| o.value()) == Some(kernel_pointer))
            .collect();
        let task = task_function(llvm, ir, &builder, kernel, args_ty)?;
        for call in calls {
            dispatch_call(&builder, call, task, parallel_for, args_ty, params.len())?;
        }
    }
    Ok(())
}

fn build_failed(e: inkwell::builder::BuilderError) -> anyhow::Error {
    anyhow!("cannot build a parallel call: {e}")
}

/// `<kernel>_task(args, begin, end, scratch)`: loads the kernel's arguments
/// from the struct `args_ty` (the scratch memref's pointers replaced by the
/// thread's scratch) and calls the kernel on `[begin, end)`.
fn task_function<'l>(
    llvm: &'l LlvmContext,
    ir: &LlvmModule<'l>,
    builder: &inkwell::builder::Builder<'l>,
    kernel: FunctionValue<'l>,
    args_ty: StructType<'l>,
) -> Result<FunctionValue<'l>> {
    let (i64_ty, ptr_ty) = (llvm.i64_type(), llvm.ptr_type(inkwell::AddressSpace::default()));
    let task_ty = llvm.void_type().fn_type(&[ptr_ty.into(), i64_ty.into(), i64_ty.into(), ptr_ty.into()], false);
    let task = ir.add_function(&format!("{}_task", kernel.get_name().to_string_lossy()), task_ty, None);
    builder.position_at_end(llvm.append_basic_block(task, "entry"));
    let param = |k: u32| task.get_nth_param(k).expect("a task parameter");
    let args = param(0).into_pointer_value();
    // the scratch descriptor's allocated and aligned pointers
    let total = args_ty.count_fields() as usize + 2;
    let (allocated, aligned) = (total - SCRATCH_AND_RANGE, total - SCRATCH_AND_RANGE + 1);
    let mut call_args: Vec<BasicMetadataValueEnum> = Vec::new();
    for (i, ty) in args_ty.get_field_types().iter().enumerate() {
        if i == allocated || i == aligned {
            call_args.push(param(3).into());
            continue;
        }
        let field = builder.build_struct_gep(args_ty, args, i as u32, "field").map_err(build_failed)?;
        call_args.push(builder.build_load(*ty, field, "arg").map_err(build_failed)?.into());
    }
    call_args.push(param(1).into());
    call_args.push(param(2).into());
    builder.build_call(kernel, &call_args, "").map_err(build_failed)?;
    builder.build_return(None).map_err(build_failed)?;
    Ok(task)
}

/// Replaces `call` (of a kernel with `params` parameters) by packing its
/// arguments into a struct on the caller's stack and calling the pool with
/// the iteration count, the task and the scratch bytes.
fn dispatch_call<'l>(
    builder: &inkwell::builder::Builder<'l>,
    call: InstructionValue<'l>,
    task: FunctionValue<'l>,
    parallel_for: FunctionValue<'l>,
    args_ty: StructType<'l>,
    params: usize,
) -> Result<()> {
    let operand = |k: usize| -> Result<BasicValueEnum> { call.get_operand(k as u32).and_then(|o| o.value()).ok_or_else(|| anyhow!("a kernel call without operand {k}")) };
    let caller = call.get_parent().and_then(|b| b.get_parent()).ok_or_else(|| anyhow!("a call outside a function"))?;
    let entry = caller.get_first_basic_block().ok_or_else(|| anyhow!("a caller without blocks"))?;
    match entry.get_first_instruction() {
        Some(first) => builder.position_before(&first),
        None => builder.position_at_end(entry),
    }
    let packed = builder.build_alloca(args_ty, "kernel_args").map_err(build_failed)?;
    builder.position_before(&call);
    for k in 0..params - 2 {
        let field = builder.build_struct_gep(args_ty, packed, k as u32, "field").map_err(build_failed)?;
        builder.build_store(field, operand(k)?).map_err(build_failed)?;
    }
    // the scratch memref's size field, then begin and end
    let (scratch_size, trips) = (operand(params - 4)?, operand(params - 1)?);
    let task_pointer = task.as_global_value().as_pointer_value();
    builder.build_call(parallel_for, &[trips.into(), task_pointer.into(), packed.into(), scratch_size.into()], "").map_err(build_failed)?;
    call.erase_from_basic_block();
    Ok(())
}
