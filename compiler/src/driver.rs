//! Runs the stages in order for the CLI: archive -> library, or up to the
//! stage the user asked to print.

use crate::codegen::{self, TargetOptions};
use crate::link::{self, LinkInputs, OutputKind};
use crate::timings::stage;
use crate::{pack, pipeline};
use crate::program::ExportedProgram;
use crate::{import, pt2};
use anyhow::Result;
use melior::ir::Module;
use melior::Context;
use std::path::Path;

/// The stages `--emit` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// The imported program in the aten dialect (generic form).
    Aten,
    /// After lowering to linalg/tensor/arith on tensors.
    Linalg,
    /// After matmul tiling/vectorization and elementwise fusion.
    Optimized,
    /// After bufferization and memory planning (one arena).
    Bufferized,
    /// After outlining, with kernels that run on the worker threads taking
    /// their iteration range; which kernels are parallel (and why the
    /// others are not) is listed first.
    Parallel,
    /// The LLVM dialect.
    LlvmDialect,
    /// Optimized LLVM IR.
    LlvmIr,
    /// Target assembly.
    Asm,
}

pub struct Options {
    pub target: TargetOptions,
}

/// Reads an archive and renames the model to the library's symbol prefix.
/// `unpack_limit` bounds the bytes read out of the archive (see
/// [`pt2::default_unpack_limit`]).
pub fn load(path: &Path, prefix: &str, unpack_limit: Option<u64>) -> Result<ExportedProgram> {
    let mut program = pt2::read_archive(path, unpack_limit)?;
    program.name = prefix.to_string();
    crate::graph::canonical_targets(&mut program.nodes);
    crate::higher_order::unroll_maps(&mut program)?;
    crate::functionalize::functionalize(&mut program)?;
    crate::fold::fold_batch_norms(&mut program);
    crate::graph::drop_empty_cat_pieces(&mut program);
    crate::attention_pattern::fuse_attention(&mut program);
    crate::attention_pattern::heads_in_place(&mut program);
    crate::gelu_pattern::fuse_gelu(&mut program);
    crate::pool_pattern::relu_after_max_pool(&mut program);
    let unsupported = crate::import::unsupported_nodes(&program);
    if !unsupported.is_empty() {
        anyhow::bail!("{}", unsupported.join("\n"));
    }
    Ok(program)
}

fn print_module(module: &Module) -> String {
    module.as_operation().to_string()
}

/// Compiles through MLIR; returns the final LLVM-dialect module, the arena
/// size and which kernels run in parallel, or the printed stage if `stop`
/// is reached first.
fn compile_mlir<'c>(
    context: &'c Context,
    program: &mut ExportedProgram,
    options: &Options,
    stop: Option<Stage>,
) -> Result<Result<(Module<'c>, u64, crate::parallel::Parallelized), String>> {
    let aten_text = stage("import", || import::import(program))?;
    if stop == Some(Stage::Aten) {
        return Ok(Err(aten_text));
    }
    let aten = stage("parse aten", || crate::mlir::parse(context, &aten_text, "the imported aten module"))?;
    let mut module = stage("lower to linalg", || pipeline::lower_to_linalg(context, &aten))?;
    if stop == Some(Stage::Linalg) {
        return Ok(Err(print_module(&module)));
    }
    stage("weight packing", || -> Result<()> {
        let weights = pack::weight_arguments(program);
        let packed = pack::fold_weight_transposes(context, &mut module, &weights)?;
        program.unread_weights = pack::unread_arguments(&module, &weights)?;
        pack::apply(program, &packed)
    })?;
    let target = codegen::kernel_target(&options.target);
    stage("kernels", || pipeline::optimize(context, &mut module, &target))?;
    if stop == Some(Stage::Optimized) {
        return Ok(Err(print_module(&module)));
    }
    let arena = stage("bufferization", || pipeline::bufferize(context, &mut module, &target))?;
    if stop == Some(Stage::Bufferized) {
        return Ok(Err(format!("// arena: {arena} bytes\n{}", print_module(&module))));
    }
    stage("outline kernels", || pipeline::outline_kernels(context, &module))?;
    let kernels = stage("parallel kernels", || pipeline::parallelize_kernels(context, &module))?;
    if stop == Some(Stage::Parallel) {
        return Ok(Err(format!("{}{}", kernels.listing(), print_module(&module))));
    }
    stage("to llvm dialect", || pipeline::to_llvm_dialect(context, &mut module))?;
    if stop == Some(Stage::LlvmDialect) {
        return Ok(Err(print_module(&module)));
    }
    Ok(Ok((module, arena, kernels)))
}

/// Prints one stage of the pipeline.
pub fn emit(program: &mut ExportedProgram, stage: Stage, options: &Options) -> Result<String> {
    let context = aotc_dialects::new_context();
    let (module, ..) = match compile_mlir(&context, program, options, Some(stage))? {
        Ok(done) => done,
        Err(printed) => return Ok(printed),
    };
    let llvm = inkwell::context::Context::create();
    let machine = codegen::target_machine(&options.target)?;
    let ir = codegen::to_llvm_ir(&llvm, &module, &machine, &options.target)?;
    Ok(match stage {
        Stage::LlvmIr => ir.print_to_string().to_string(),
        _ => codegen::assembly(&ir, &machine)?,
    })
}

/// How the worker pool would share the program's kernels among `threads`
/// threads (see `Parallelized::plan`).
pub fn parallel_plan(program: &mut ExportedProgram, options: &Options, threads: usize) -> Result<String> {
    let context = aotc_dialects::new_context();
    let (_, _, kernels) = compile_mlir(&context, program, options, None)?.expect("no stop stage");
    Ok(kernels.plan(threads))
}

/// Compiles a program into a library at `output`. Weight packing may store
/// some weights in another layout: `program`'s weights and input types are
/// updated to match (its user inputs and outputs do not change).
pub fn build(program: &mut ExportedProgram, output: &Path, kind: OutputKind, options: &Options) -> Result<()> {
    if let Some(triple) = &options.target.triple {
        let host = inkwell::targets::TargetMachine::get_default_triple().as_str().to_string_lossy().into_owned();
        let arch = |t: &str| t.split('-').next().unwrap_or("").to_string();
        if arch(triple) != arch(&host) {
            anyhow::bail!(
                "linking a library for {triple} needs a cross toolchain and a runtime built for it, which aotc does not drive yet; \
                 print its code with --emit asm or --emit llvm-ir"
            );
        }
    }
    let context = aotc_dialects::new_context();
    let (module, arena, _) = compile_mlir(&context, program, options, None)?.expect("no stop stage");
    let llvm = inkwell::context::Context::create();
    let machine = codegen::target_machine(&options.target)?;
    let ir = stage("llvm ir", || codegen::translate(&llvm, &module, &machine, &options.target))?;
    let dir = tempfile::tempdir()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let objects = stage("llvm codegen", || codegen::compile_objects(&ir, &options.target, dir.path(), threads))?;
    let entry = aotc_dialects::lower::entry_symbol(&program.name);
    stage("link", || {
        link::link(
            &LinkInputs {
                program,
                prefix: &program.name,
                model_objects: &objects,
                arena_bytes: arena,
                entry: &entry,
                machine: &machine,
            },
            output,
            kind,
        )
    })
}
