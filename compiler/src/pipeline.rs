//! The compilation pipeline, one function per stage. Each stage's output can
//! be printed with `--emit` and each has lit tests under `lit-tests/`.
//!
//! aten -> linalg (rule table) -> optimized (fusion, matmul tiling and
//! vectorization into FMA micro-kernels) -> bufferized (one-shot
//! bufferization, arena plan) -> llvm-dialect -> llvm-ir -> object.

use crate::arena;
use anyhow::{anyhow, bail, Result};
use melior::{
    ir::{
        block::BlockLike,
        operation::{OperationLike, OperationMutLike, OperationRefMut, WalkOrder, WalkResult},
        Attribute, Module, ValueLike,
    },
    pass::PassManager,
    utility::parse_pass_pipeline,
    Context,
};

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
    parse_pass_pipeline(pm.as_operation_pass_manager(), pipeline)
        .map_err(|e| anyhow!("{what}: bad pass pipeline: {e}"))?;
    if pm.run(module).is_err() || !module.as_operation().verify() {
        return Err(crate::error::detailed(format!("{what} failed"), diagnostics.take().join("\n")));
    }
    Ok(())
}

/// aten -> linalg on tensors. When the lowered module does not verify,
/// the error names the node whose lowering is at fault.
pub fn lower_to_linalg<'c>(context: &'c Context, aten: &Module) -> Result<Module<'c>> {
    let lowered = aotc_dialects::lower::lower_module(aten).map_err(|errors| anyhow!("{}", errors.join("\n")))?;
    parse(context, &lowered.text, "the lowered (linalg) module").map_err(|e| first_bad_node(context, &lowered).unwrap_or(e))
}

/// Verifies each node's lowering on its own and reports the first that
/// fails (only run after the whole module failed).
fn first_bad_node(context: &Context, lowered: &aotc_dialects::lower::Lowered) -> Option<anyhow::Error> {
    lowered.nodes.iter().find_map(|node| {
        let text = aotc_dialects::lower::node_module(lowered, node);
        let error = parse(context, &text, "").err()?;
        let details = crate::error::details_of(&error).join("\n");
        Some(crate::error::detailed(
            format!("{}: {}: its lowered code does not verify (are the graph's declared types consistent?)", node.location, node.op),
            details,
        ))
    })
}

/// How one matmul `[M, K] x [K, N]` is tiled.
///
/// The register micro-kernel computes a `tile_m x tile_n` block of the
/// result with `tile_m * tile_n / 8` accumulators of 8 lanes (256 bits),
/// looping over K one step at a time: rows x 16 columns (whole 64-byte lines
/// of B per step) with up to 6 rows when the target has 16 vector registers
/// (AVX2: 12 accumulators) or 12 when it has 32 (AVX-512VL), or 8 x 8 when N
/// is not a multiple of 16. Around it, the N and K dimensions are blocked so that the
/// part of B that the kernel sweeps (`block_k x block_n`, at most 256 x 256
/// floats) stays in L2 while every row tile of A passes over it. All sizes
/// divide the problem exactly, so no masking is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulTiling {
    pub block_n: i64,
    pub block_k: i64,
    pub tile_m: i64,
    pub tile_n: i64,
}

fn largest_divisor(d: i64, limit: i64) -> i64 {
    (1..=limit.min(d).max(1)).rev().find(|t| d % t == 0).unwrap_or(1)
}

pub fn matmul_tiling(m: i64, n: i64, k: i64, vector_registers: u32) -> MatmulTiling {
    let max_rows = if vector_registers >= 32 { 12 } else { 6 };
    let (tile_m, tile_n) =
        if n % 16 == 0 { (largest_divisor(m, max_rows), 16) } else { (largest_divisor(m, 8), largest_divisor(n, 8)) };
    let block_n = tile_n * largest_divisor(n / tile_n, (256 / tile_n).max(1));
    let block_k = largest_divisor(k, 256);
    MatmulTiling { block_n, block_k, tile_m, tile_n }
}

/// The transform-dialect script that blocks every matmul for the caches,
/// tiles it to its micro-kernel (reduction tile 1), vectorizes it, hoists the
/// accumulator out of the reduction loop, and lowers the contraction to
/// outer products (vector.fma).
fn matmul_strategy(tilings: &[MatmulTiling]) -> String {
    let mut s = String::from(
        "module attributes {transform.with_named_sequence} {\n  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {\n",
    );
    for (i, t) in tilings.iter().enumerate() {
        s += &format!(
            "    %mm{i} = transform.structured.match ops{{[\"linalg.matmul\"]}} attributes{{aotc.tile = {attr}}} in %root : (!transform.any_op) -> !transform.any_op
    %blocked{i}, %blocks{i}:2 = transform.structured.tile_using_for %mm{i} tile_sizes [0, {bn}, {bk}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    %tiled{i}, %loops{i}:3 = transform.structured.tile_using_for %blocked{i} tile_sizes [{tm}, {tn}, 1] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
    transform.structured.vectorize %tiled{i} : !transform.any_op
",
            attr = tiling_attribute(t),
            bn = t.block_n,
            bk = t.block_k,
            tm = t.tile_m,
            tn = t.tile_n,
        );
    }
    // The vectorizer emits mul + multi_reduction; fold that back into
    // vector.contract, hoist the accumulator tile out of the reduction loop
    // (it becomes a loop-carried vector in registers), then unroll the
    // contraction into broadcast + vector.fma per row.
    s += "    %func = transform.structured.match ops{[\"func.func\"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %func {
      transform.apply_patterns.vector.reduction_to_contract
      transform.apply_patterns.vector.transfer_permutation_patterns
      transform.apply_patterns.canonicalization
    } : !transform.any_op
";
    for i in 0..tilings.len() {
        s += &format!("    transform.loop.hoist_loop_invariant_subsets %loops{i}#2 : !transform.any_op\n");
    }
    s += "    transform.apply_patterns to %func {
      transform.apply_patterns.vector.lower_contraction lowering_strategy = \"outerproduct\"
      transform.apply_patterns.vector.lower_outerproduct
    } : !transform.any_op
    transform.apply_patterns to %func {
      transform.apply_patterns.canonicalization
    } : !transform.any_op
    transform.yield
  }
}
";
    s
}

fn tiling_attribute(t: &MatmulTiling) -> String {
    format!("array<i64: {}, {}, {}, {}>", t.block_n, t.block_k, t.tile_m, t.tile_n)
}

/// Marks each matmul with its tiling and returns the distinct tilings.
fn tag_matmuls(context: &Context, module: &Module, vector_registers: u32) -> Vec<MatmulTiling> {
    let mut tilings = Vec::new();
    let mut ops = Vec::new();
    module.as_operation().walk(WalkOrder::PreOrder, |op| {
        if op.name().as_string_ref().as_str() == Ok("linalg.matmul") {
            ops.push(op.to_raw());
        }
        WalkResult::Advance
    });
    for raw in ops {
        let mut op = unsafe { OperationRefMut::from_raw(raw) };
        let type_of = |i: usize| op.operand(i).ok().and_then(|v| aotc_dialects::types::Ty::parse(&v.r#type().to_string()));
        let (Some(a), Some(c)) = (type_of(0), type_of(2)) else { continue };
        if a.numel() == 0 || c.numel() == 0 || a.shape[1] == 1 {
            // nothing to tile (the plain loops run zero times, or fill the
            // init), or a single outer product
            continue;
        }
        let tiling = matmul_tiling(c.shape[0], c.shape[1], a.shape[1], vector_registers);
        let attr = Attribute::parse(context, &tiling_attribute(&tiling)).expect("valid attribute");
        op.set_discardable_attribute("aotc.tile", attr);
        if !tilings.contains(&tiling) {
            tilings.push(tiling);
        }
    }
    tilings
}

/// Matmul tiling and vectorization, then elementwise fusion. Fusion runs
/// second: its reshape propagation would otherwise fold the im2col gather
/// back into the matmul and turn it into a generic convolution.
/// `vector_registers` is how many 256-bit registers the target has (16 for
/// AVX2, 32 with AVX-512VL); it sizes the micro-kernel.
pub fn optimize(context: &Context, module: &mut Module, vector_registers: u32) -> Result<()> {
    run_pipeline(context, module, "builtin.module(canonicalize, cse)", "canonicalization")?;
    let tilings = tag_matmuls(context, module, vector_registers);
    if !tilings.is_empty() {
        vectorize_matmuls(context, module, &tilings)?;
    }
    run_pipeline(
        context,
        module,
        "builtin.module(func.func(linalg-fuse-elementwise-ops, cse, canonicalize))",
        "elementwise fusion",
    )
}

/// Runs the matmul strategy with the transform interpreter. The script is
/// appended to the payload module for the run and removed afterwards.
fn vectorize_matmuls(context: &Context, module: &mut Module, tilings: &[MatmulTiling]) -> Result<()> {
    let strategy = parse(context, &matmul_strategy(tilings), "the matmul strategy")?;
    let sequence = strategy.body().first_operation().expect("the strategy has its sequence");
    let sequence = unsafe { melior::ir::Operation::from_raw(mlir_sys::mlirOperationClone(sequence.to_raw())) };
    module.body().append_operation(sequence);
    let unit = Attribute::parse(context, "unit").expect("unit attribute");
    module.as_operation_mut().set_attribute("transform.with_named_sequence", unit);
    run_pipeline(context, module, "builtin.module(transform-interpreter, canonicalize, cse)", "matmul vectorization")?;
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
    Ok(())
}

/// One-shot bufferization, then every intermediate is placed in the arena.
/// (`eliminate-empty-tensors`, which would let results be computed in place
/// in the output buffers, is not used: after CSE merges two identical
/// `tensor.empty` + `linalg.fill` inits of different results, it writes one
/// result into the other's output buffer. Results are copied out instead.)
/// Returns the arena size in bytes.
pub fn bufferize<'c>(context: &'c Context, module: &mut Module<'c>) -> Result<u64> {
    run_pipeline(
        context,
        module,
        "builtin.module(one-shot-bufferize, canonicalize, cse, func.func(buffer-hoisting, buffer-loop-hoisting))",
        "bufferization",
    )?;
    let size = arena::plan(context, module)?;
    run_pipeline(context, module, "builtin.module(canonicalize, cse)", "cleanup after memory planning")?;
    copies_to_linalg(context, module)?;
    Ok(size)
}

/// Rewrites `memref.copy` (which the LLVM lowering turns into a call to the
/// `memrefCopy` support function when layouts are strided, e.g. copying into
/// a padded buffer) into `linalg.copy`, which becomes plain loops.
fn copies_to_linalg<'c>(context: &'c Context, module: &mut Module<'c>) -> Result<()> {
    let text = module.as_operation().to_string();
    if !text.contains("memref.copy ") {
        return Ok(());
    }
    let rewritten: Vec<String> = text.lines().map(copy_as_linalg).collect();
    *module = parse(context, &rewritten.join("\n"), "the module with linalg copies")?;
    Ok(())
}

/// `memref.copy %a, %b : T to U` -> `linalg.copy ins(%a : T) outs(%b : U)`.
fn copy_as_linalg(line: &str) -> String {
    let trimmed = line.trim_start();
    let Some(rest) = trimmed.strip_prefix("memref.copy ") else { return line.to_string() };
    let parsed = rest.split_once(" : ").and_then(|(values, types)| {
        let (src, dst) = values.split_once(", ")?;
        let (src_ty, dst_ty) = types.split_once(" to ")?;
        Some(format!("linalg.copy ins({src} : {src_ty}) outs({dst} : {dst_ty})"))
    });
    match parsed {
        Some(copy) => format!("{}{copy}", &line[..line.len() - trimmed.len()]),
        None => line.to_string(),
    }
}

/// Loops, vectors, memrefs, arith and func to the LLVM dialect.
pub fn to_llvm_dialect(context: &Context, module: &mut Module) -> Result<()> {
    run_pipeline(
        context,
        module,
        "builtin.module(func.func(convert-linalg-to-loops, convert-vector-to-scf{full-unroll=true}), \
         convert-math-to-funcs, func.func(arith-expand{include-bf16=true}), \
         lower-affine, expand-strided-metadata, lower-affine, convert-scf-to-cf, \
         convert-vector-to-llvm, finalize-memref-to-llvm, convert-math-to-llvm, convert-math-to-libm, \
         convert-arith-to-llvm, convert-index-to-llvm, convert-ub-to-llvm, convert-cf-to-llvm, convert-func-to-llvm, \
         reconcile-unrealized-casts)",
        "lowering to the LLVM dialect",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_become_linalg_copies() {
        assert_eq!(
            copy_as_linalg("    memref.copy %a, %b : memref<4xf32> to memref<4xf32, strided<[1], offset: 2>>"),
            "    linalg.copy ins(%a : memref<4xf32>) outs(%b : memref<4xf32, strided<[1], offset: 2>>)"
        );
        assert_eq!(copy_as_linalg("    %0 = arith.addf %a, %b : f32"), "    %0 = arith.addf %a, %b : f32");
    }

    #[test]
    fn tilings_divide_the_problem() {
        let t = |m, n, k| {
            let t = matmul_tiling(m, n, k, 16);
            (t.block_n, t.block_k, t.tile_m, t.tile_n)
        };
        assert_eq!(t(6, 784, 75), (112, 75, 6, 16));
        assert_eq!(t(1, 10, 1176), (10, 196, 1, 5));
        assert_eq!(t(64, 1024, 1024), (256, 256, 4, 16));
        assert_eq!(t(64, 3136, 576), (224, 192, 4, 16));
        assert_eq!(t(7, 13, 5), (13, 5, 7, 1));
        assert_eq!(matmul_tiling(64, 1024, 1024, 32).tile_m, 8);
    }
}
