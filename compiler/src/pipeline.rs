//! The compilation pipeline, one function per stage. Each stage's output can
//! be printed with `--emit` and each has lit tests under `lit-tests/`.
//!
//! aten -> linalg (rule table) -> optimized (fusion, matmul tiling and
//! vectorization into FMA micro-kernels) -> bufferized (one-shot
//! bufferization, arena plan) -> outlined (one function per distinct
//! kernel) -> parallel kernels (the iteration range of a parallel outer loop
//! as parameters) -> llvm-dialect -> llvm-ir (parallel kernels called
//! through the runtime's worker pool) -> object.

use crate::mlir::{parse, run_pipeline};
use crate::{arena, kernels};
use anyhow::{anyhow, Result};
use melior::{ir::Module, Context};

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

/// Kernel strategies (matmul micro-kernels, vectorized elementwise and
/// reduction loops) and elementwise fusion: see `kernels`.
pub fn optimize(context: &Context, module: &mut Module, target: &kernels::Target) -> Result<()> {
    kernels::optimize(context, module, target)
}

/// One-shot bufferization, then every intermediate is placed in the arena.
/// Results are computed in their output buffers where they can be (see
/// `outputs`), else copied out of the arena. Copies are vectorized for
/// `target`. Returns the arena size in bytes. A value computed from an
/// empty tensor and then inserted into a slice of another is computed in
/// that slice (`eliminate-empty-tensors`: a product split in column parts
/// writes each part where it belongs, `aotc_dialects::lower::linear::Init`).
pub fn bufferize<'c>(context: &'c Context, module: &mut Module<'c>, target: &kernels::Target) -> Result<u64> {
    crate::outputs::compute_in_place(context, module)?;
    run_pipeline(
        context,
        module,
        "builtin.module(eliminate-empty-tensors, one-shot-bufferize, canonicalize, cse, func.func(buffer-hoisting, buffer-loop-hoisting))",
        "bufferization",
    )?;
    kernels::prefetch::prefetch_next_rows(context, module)?;
    kernels::prefetch::prefetch_streams(context, module)?;
    kernels::prefetch::prefetch_next_tiles(context, module)?;
    // before the plan, whose reused slots would keep loops apart; after
    // it too, once the copies into padded buffers are loops
    crate::slab_loops::join_slab_loops(module)?;
    let size = arena::plan(context, module)?;
    run_pipeline(context, module, "builtin.module(canonicalize, cse)", "cleanup after memory planning")?;
    copies_to_linalg(context, module)?;
    kernels::vectorize_copies(context, module, target)?;
    crate::border_fills::join_border_fills(module)?;
    crate::slab_loops::join_slab_loops(module)?;
    kernels::contiguous_transfers::flatten(context, module, target)?;
    Ok(size)
}

/// Rewrites `memref.copy` (which the LLVM lowering turns into a call to the
/// `memrefCopy` support function when layouts are strided, e.g. copying into
/// a padded buffer) into `linalg.copy`, which becomes plain loops.
fn copies_to_linalg<'c>(context: &'c Context, module: &mut Module<'c>) -> Result<()> {
    if crate::kernels::ops_named(module, "memref.copy").is_empty() {
        return Ok(());
    }
    let text = module.as_operation().to_string();
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

/// Every kernel (loop nest) becomes a function, identical kernels one
/// function: see `outline`.
pub fn outline_kernels(context: &Context, module: &Module) -> Result<crate::outline::Outlined> {
    crate::outline::outline_kernels(context, module)
}

/// Loops, vectors, memrefs, arith and func to the LLVM dialect.
/// Kernels whose outer loop is parallel take their iteration range: see
/// `parallel`.
pub fn parallelize_kernels(context: &Context, module: &Module) -> Result<crate::parallel::Parallelized> {
    crate::parallel::parallelize_kernels(context, module)
}

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

}
