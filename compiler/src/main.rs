//! The `aotc` command line.

use anyhow::{anyhow, bail, Context, Result};
use aotc::codegen::TargetOptions;
use aotc::driver::{self, Options, Stage};
use aotc::link::{self, OutputKind};
use aotc::program::{ExportedProgram, HostTensor, TensorType};
use aotc::{npy, pipeline};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

/// aotc compiles a PyTorch program saved with torch.export.save (.pt2) into a
/// native library with a C API. No Python and no libtorch at run time.
///
/// Examples:
///   aotc simple_net.pt2 -o libsimple.so     # writes libsimple.so and simple.h
///   aotc simple_net.pt2 --emit linalg       # print one pipeline stage
///   aotc run simple_net.pt2                 # compile and run on the sample inputs
///   aotc run simple_net.pt2 --input x.npy --output-dir out/
#[derive(Parser)]
#[command(name = "aotc", version, verbatim_doc_comment, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    compile: CompileArgs,
}

#[derive(clap::Args)]
struct CompileArgs {
    /// The .pt2 archive to compile.
    input: Option<PathBuf>,
    /// Output library: .so (default), .a or .o; the header is written beside it.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Library kind, overriding the output's extension.
    #[arg(long, value_enum)]
    output_kind: Option<Kind>,
    /// Print the program after this stage instead of writing a library.
    #[arg(long, value_enum)]
    emit: Option<Stage>,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(clap::Args, Clone)]
struct TargetArgs {
    /// LLVM target triple (default: the host's).
    #[arg(long)]
    target: Option<String>,
    /// Target CPU, e.g. x86-64-v3, znver4, skylake-avx512 (default: the host's).
    #[arg(long)]
    target_cpu: Option<String>,
    /// Optimization level 0-3.
    #[arg(short = 'O', default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=3))]
    opt_level: u8,
}

impl TargetArgs {
    fn options(&self) -> Options {
        Options { target: TargetOptions { triple: self.target.clone(), cpu: self.target_cpu.clone(), opt_level: self.opt_level } }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    So,
    A,
    O,
}

#[derive(Subcommand)]
enum Command {
    /// Compile, run on the archive's sample inputs (or --input files), and
    /// print the outputs (or write output_K.npy into --output-dir).
    Run {
        /// The .pt2 archive.
        input: PathBuf,
        /// One .npy file per user input, in the program's input order.
        #[arg(long = "input", value_name = "FILE.npy")]
        inputs: Vec<PathBuf>,
        /// Write output_0.npy, output_1.npy, ... here instead of printing.
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// Print the compile and run times (seconds) on stderr.
        #[arg(long)]
        timings: bool,
        /// Run this many times on one model handle (buffers the program
        /// mutates carry over) and write the last run's outputs.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// aotc-opt: run one pipeline stage on an .mlir file and print the result
    /// (for lit tests and debugging).
    Opt {
        /// The .mlir input ("-" for standard input).
        input: PathBuf,
        /// The stage to run.
        #[arg(long, value_enum)]
        pass: Option<OptPass>,
        /// Or an upstream MLIR pass pipeline, e.g. "builtin.module(canonicalize)".
        #[arg(long)]
        pipeline: Option<String>,
        /// Vector registers the matmul micro-kernel may use (16: AVX2, 32: AVX-512VL).
        #[arg(long, default_value_t = 16)]
        vector_registers: u32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OptPass {
    /// aten dialect -> linalg on tensors.
    LowerAten,
    /// Matmul tiling + vectorization, elementwise fusion.
    Optimize,
    /// One-shot bufferization and arena planning.
    Bufferize,
    /// To the LLVM dialect.
    ToLlvm,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run { input, inputs, output_dir, timings, runs, target }) => {
            run(&input, &inputs, output_dir.as_deref(), timings, runs, &target)
        }
        Some(Command::Opt { input, pass, pipeline, vector_registers }) => opt(&input, pass, pipeline.as_deref(), vector_registers),
        None => compile(&cli.compile),
    };
    if let Err(e) = result {
        // One line per problem (several when many ops are unsupported).
        for line in format!("{e:#}").lines() {
            eprintln!("error: {line}");
        }
        std::process::exit(1);
    }
}

fn compile(args: &CompileArgs) -> Result<()> {
    let input = args.input.as_ref().ok_or_else(|| anyhow!("no input archive given (see aotc --help)"))?;
    let output = args.output.clone().unwrap_or_else(|| {
        let stem = input.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        PathBuf::from(format!("lib{stem}.so"))
    });
    let prefix = link::symbol_prefix(&output);
    let mut program = driver::load(input, &prefix)?;
    let options = args.target.options();
    if let Some(stage) = args.emit {
        print!("{}", driver::emit(&mut program, stage, &options)?);
        return Ok(());
    }
    let kind = match args.output_kind {
        Some(Kind::So) => OutputKind::Shared,
        Some(Kind::A) => OutputKind::Static,
        Some(Kind::O) => OutputKind::Object,
        None => OutputKind::from_path(&output),
    };
    driver::build(&mut program, &output, kind, &options)
}

/// Checks run inputs against the program: count, dtype and shape.
fn check_inputs(program: &ExportedProgram, tensors: &[HostTensor], sources: &[String]) -> Result<()> {
    let expected: Vec<_> = program.user_inputs().collect();
    if tensors.len() != expected.len() {
        bail!("the program takes {} input(s) ({}), got {}", expected.len(), expected.iter().map(|i| format!("{} {}", i.name, i.ty)).collect::<Vec<_>>().join(", "), tensors.len());
    }
    for (i, (t, want)) in tensors.iter().zip(&expected).enumerate() {
        if t.ty.dtype != want.ty.dtype {
            bail!("input {i} ('{}') from {}: dtype is {} but the program expects {}", want.name, sources[i], t.ty.dtype, want.ty.dtype);
        }
        if t.ty.shape != want.ty.shape {
            bail!("input {i} ('{}') from {}: shape is {:?} but the program expects {:?}", want.name, sources[i], t.ty.shape, want.ty.shape);
        }
    }
    Ok(())
}

fn run(
    archive: &Path,
    input_files: &[PathBuf],
    output_dir: Option<&Path>,
    timings: bool,
    runs: u32,
    target: &TargetArgs,
) -> Result<()> {
    let start = std::time::Instant::now();
    let prefix = "aotc_run";
    let mut program = driver::load(archive, prefix)?;
    let (tensors, sources): (Vec<HostTensor>, Vec<String>) = if input_files.is_empty() && program.user_inputs().next().is_none() {
        (Vec::new(), Vec::new())
    } else if input_files.is_empty() {
        let samples = program
            .sample_inputs
            .take()
            .ok_or_else(|| anyhow!("{}: the archive has no sample inputs; pass --input FILE.npy", archive.display()))?;
        let n = samples.len();
        (samples, vec!["the archive's sample inputs".to_string(); n])
    } else {
        let tensors = input_files.iter().map(|p| npy::read(p)).collect::<Result<Vec<_>>>()?;
        (tensors, input_files.iter().map(|p| p.display().to_string()).collect())
    };
    check_inputs(&program, &tensors, &sources)?;
    let dir = tempfile::tempdir()?;
    let library = dir.path().join(format!("lib{prefix}.so"));
    driver::build(&mut program, &library, OutputKind::Shared, &target.options())?;
    let compiled = std::time::Instant::now();
    let outputs = unsafe { run_library(&library, prefix, &tensors, runs)? };
    if timings {
        let (compile, run) = (compiled - start, compiled.elapsed());
        eprintln!("timings: compile {:.3} s, run {:.4} s", compile.as_secs_f64(), run.as_secs_f64());
    }
    let output_types: Vec<TensorType> = program.user_outputs().map(|o| o.ty.clone()).collect();
    for (k, (bytes, ty)) in outputs.into_iter().zip(output_types).enumerate() {
        let tensor = HostTensor { ty, data: bytes };
        match output_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
                npy::write(&dir.join(format!("output_{k}.npy")), &tensor)?;
            }
            None => println!("output_{k}: {}\n{}", tensor.ty, format_values(&tensor)),
        }
    }
    Ok(())
}

/// Loads a library built by `driver::build` and runs it once.
unsafe fn run_library(library: &Path, prefix: &str, inputs: &[HostTensor], runs: u32) -> Result<Vec<Vec<u8>>> {
    let lib = libloading::Library::new(library).map_err(|e| anyhow!("cannot load {}: {e}", library.display()))?;
    let api: libloading::Symbol<unsafe extern "C" fn() -> *const aotc_runtime::safe::Api> =
        lib.get(format!("{prefix}_api").as_bytes()).map_err(|e| anyhow!("{}: {e}", library.display()))?;
    let mut model = aotc_runtime::safe::Model::new(api()).map_err(|e| anyhow!("{e}"))?;
    let in_bytes: Vec<&[u8]> = inputs.iter().map(|t| t.data.as_slice()).collect();
    let mut outs: Vec<Vec<u8>> = model.outputs.iter().map(|o| vec![0u8; o.bytes]).collect();
    let mut out_refs: Vec<&mut [u8]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
    for _ in 0..runs {
        model.run_bytes(&in_bytes, &mut out_refs).map_err(|e| anyhow!("{e}"))?;
    }
    drop(model);
    Ok(outs)
}

fn format_values(t: &HostTensor) -> String {
    let float = t.ty.dtype.is_float();
    let values: Vec<String> = t.to_f64().iter().map(|v| if float { format!("{v:.6}") } else { format!("{v}") }).collect();
    format!("[{}]", values.join(", "))
}

fn opt(input: &Path, pass: Option<OptPass>, upstream: Option<&str>, vector_registers: u32) -> Result<()> {
    let text = if input == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(input).with_context(|| format!("{}: cannot read", input.display()))?
    };
    let context = aotc_dialects::new_context();
    let mut module = pipeline::parse(&context, &text, &input.display().to_string())?;
    if let Some(p) = upstream {
        pipeline::run_pipeline(&context, &mut module, p, "the pass pipeline")?;
    }
    match pass {
        Some(OptPass::LowerAten) => module = pipeline::lower_to_linalg(&context, &module)?,
        Some(OptPass::Optimize) => pipeline::optimize(&context, &mut module, vector_registers)?,
        Some(OptPass::Bufferize) => {
            let arena = pipeline::bufferize(&context, &mut module)?;
            println!("// arena: {arena} bytes");
        }
        Some(OptPass::ToLlvm) => pipeline::to_llvm_dialect(&context, &mut module)?,
        None => {}
    }
    println!("{}", melior::ir::operation::OperationLike::to_string_with_flags(&module.as_operation(), Default::default()).unwrap_or_default());
    Ok(())
}
