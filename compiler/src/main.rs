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
    /// After an error, also print the diagnostics behind it (MLIR verifier
    /// output, a linker's messages).
    #[arg(long, global = true)]
    verbose: bool,
}

#[derive(clap::Args, Clone)]
struct ArchiveArgs {
    /// The most bytes aotc unpacks from the archive (decompressed entries
    /// and tensors materialized from strided views), e.g. 8G or 512M.
    /// Default: 256M plus four times the archive's size.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_unpacked_bytes: Option<u64>,
}

/// A byte count with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        Some('T') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let n: u64 = digits.trim().parse().map_err(|_| format!("'{text}' is not a size (a number with an optional K, M, G or T)"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("'{text}' is too large"))
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
    /// Print each compile stage's seconds on stderr.
    #[arg(long)]
    timings: bool,
    /// Print how the worker pool would share the kernels among this many
    /// threads (home ranges per kernel, how busy the threads are) instead of
    /// writing a library.
    #[arg(long, value_name = "THREADS", value_parser = clap::value_parser!(u32).range(1..))]
    parallel_plan: Option<u32>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

#[derive(clap::Args, Clone)]
struct TargetArgs {
    /// LLVM target triple (default: the host's).
    #[arg(long)]
    target: Option<String>,
    /// Target CPU, e.g. x86-64-v3, znver4, skylake-avx512 (default: the host's).
    #[arg(long)]
    target_cpu: Option<String>,
    /// LLVM optimization level 0-3 (2 by default: see codegen::DEFAULT_OPT_LEVEL).
    #[arg(short = 'O', default_value_t = aotc::codegen::DEFAULT_OPT_LEVEL, value_parser = clap::value_parser!(u8).range(0..=3))]
    opt_level: u8,
    /// For the developers: every load and store of the model's code first
    /// calls the runtime's `aotc_rt_trace`, which only a runtime built with
    /// the `line-sharing` feature has (tools/line_sharing.py).
    #[arg(long, hide = true)]
    trace_memory: bool,
}

impl TargetArgs {
    fn options(&self) -> Options {
        let target = TargetOptions { triple: self.target.clone(), cpu: self.target_cpu.clone(), opt_level: self.opt_level, trace_memory: self.trace_memory };
        Options { target }
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
        /// Run at each of these thread counts (comma-separated; default: the
        /// handle's default, AOTC_NUM_THREADS or the CPUs this process may
        /// use), each on a new handle; with several, the outputs must be
        /// bitwise identical (an error says which differ).
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
        threads: Vec<u32>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Compile and time the model on the archive's sample inputs (or --input
    /// files): median and minimum latency of single runs at each thread
    /// count, and the speed-up over the first count.
    Bench {
        /// The .pt2 archive.
        input: PathBuf,
        /// One .npy file per user input, in the program's input order.
        #[arg(long = "input", value_name = "FILE.npy")]
        inputs: Vec<PathBuf>,
        /// Thread counts, comma-separated (default: 1 and the CPUs this
        /// process may use).
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
        threads: Vec<u32>,
        /// Timed runs per thread count (after a few untimed ones).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        archive: ArchiveArgs,
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
        /// Vector registers the kernels may use (16: AVX2, 32: AVX-512).
        #[arg(long, default_value_t = 16)]
        vector_registers: u32,
        /// Vector width in bits the kernels are written for (256 or 512).
        #[arg(long, default_value_t = 256)]
        vector_bits: u32,
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
    /// One function per distinct kernel (after bufferization).
    OutlineKernels,
    /// Kernels with a parallel outer loop take their iteration range (after outlining).
    ParallelizeKernels,
    /// To the LLVM dialect.
    ToLlvm,
}

/// The last panic's message: a bug in aotc is reported as one error line,
/// never as a panic dump.
static PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Ends the process quietly when its output pipe closes (`aotc x.pt2
/// --emit linalg | head`), as other command-line tools do: Rust ignores
/// SIGPIPE, and printing to the closed pipe would then panic.
fn die_on_closed_pipe() {
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: restores the default disposition before any thread starts.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

fn main() {
    die_on_closed_pipe();
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut p) = PANIC.lock() {
            *p = info.to_string();
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &cli.command {
        Some(Command::Run { input, inputs, output_dir, timings, runs, threads, target, archive }) => {
            run(input, inputs, output_dir.as_deref(), *timings, *runs, threads, target, archive)
        }
        Some(Command::Bench { input, inputs, threads, runs, target, archive }) => bench(input, inputs, threads, *runs, target, archive),
        Some(Command::Opt { input, pass, pipeline, vector_registers, vector_bits }) => {
            opt(input, *pass, pipeline.as_deref(), *vector_registers, *vector_bits)
        }
        None => compile(&cli.compile),
    }))
    .unwrap_or_else(|_| {
        let message = PANIC.lock().map(|p| p.clone()).unwrap_or_default();
        Err(anyhow!("internal error (a bug in aotc, please report it): {}", aotc::text::shown_max(&message, 400)))
    });
    if let Err(e) = result {
        // One line per problem (several when many ops are unsupported).
        for line in format!("{e:#}").lines() {
            eprintln!("error: {line}");
        }
        if cli.verbose {
            for d in aotc::error::details_of(&e) {
                eprintln!("{d}");
            }
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
    if args.timings {
        aotc::timings::enable();
    }
    let mut program = aotc::timings::stage("read archive", || driver::load(input, &prefix, args.archive.max_unpacked_bytes))?;
    let options = args.target.options();
    if let Some(stage) = args.emit {
        print!("{}", driver::emit(&mut program, stage, &options)?);
        return Ok(());
    }
    if let Some(threads) = args.parallel_plan {
        print!("{}", driver::parallel_plan(&mut program, &options, threads as usize)?);
        return Ok(());
    }
    let kind = match args.output_kind {
        Some(Kind::So) => OutputKind::Shared,
        Some(Kind::A) => OutputKind::Static,
        Some(Kind::O) => OutputKind::Object,
        None => OutputKind::from_path(&output),
    };
    driver::build(&mut program, &output, kind, &options)?;
    for line in aotc::timings::report() {
        eprintln!("timings: {line}");
    }
    Ok(())
}

/// The program's user inputs, as (name, type).
fn expected_inputs(program: &ExportedProgram) -> Vec<(String, TensorType)> {
    program.user_inputs().map(|i| (i.name.clone(), i.ty.clone())).collect()
}

fn count_error(expected: &[(String, TensorType)], given: usize) -> anyhow::Error {
    let list: Vec<String> = expected.iter().map(|(n, t)| format!("{} {t}", aotc::text::shown(n))).collect();
    anyhow!("the program takes {} input(s) ({}), got {given}", expected.len(), list.join(", "))
}

/// Checks that input `i` (from `source`) has the dtype and shape the program expects.
fn check_input(i: usize, (name, want): &(String, TensorType), got: &TensorType, source: &str) -> Result<()> {
    let name = aotc::text::shown(name);
    if got.dtype != want.dtype {
        bail!("input {i} ('{name}') from {source}: dtype is {} but the program expects {}", got.dtype, want.dtype);
    }
    if got.shape != want.shape {
        bail!("input {i} ('{name}') from {source}: shape is {:?} but the program expects {:?}", got.shape, want.shape);
    }
    Ok(())
}

/// Checks run inputs against the program: count, dtype and shape.
fn check_inputs(program: &ExportedProgram, tensors: &[HostTensor], source: &str) -> Result<()> {
    let expected = expected_inputs(program);
    if tensors.len() != expected.len() {
        return Err(count_error(&expected, tensors.len()));
    }
    for (i, (t, want)) in tensors.iter().zip(&expected).enumerate() {
        check_input(i, want, &t.ty, source)?;
    }
    Ok(())
}

/// Reads one `.npy` file per user input; each header is checked against
/// the input's dtype and shape before its data is read, so a file never
/// makes aotc read more than the input's size.
fn read_inputs(program: &ExportedProgram, files: &[PathBuf]) -> Result<Vec<HostTensor>> {
    let expected = expected_inputs(program);
    if files.len() != expected.len() {
        return Err(count_error(&expected, files.len()));
    }
    files
        .iter()
        .zip(&expected)
        .enumerate()
        .map(|(i, (path, want))| npy::read_checked(path, |ty| check_input(i, want, ty, &path.display().to_string())))
        .collect()
}

/// The program and its run inputs: the `--input` files, else the archive's
/// sample inputs.
fn program_and_inputs(archive: &Path, input_files: &[PathBuf], archive_args: &ArchiveArgs, prefix: &str) -> Result<(ExportedProgram, Vec<HostTensor>)> {
    let mut program = driver::load(archive, prefix, archive_args.max_unpacked_bytes)?;
    let tensors: Vec<HostTensor> = if input_files.is_empty() && program.user_inputs().next().is_none() {
        Vec::new()
    } else if input_files.is_empty() {
        let samples = program
            .sample_inputs
            .take()
            .ok_or_else(|| anyhow!("{}: the archive has no sample inputs; pass --input FILE.npy", archive.display()))?;
        check_inputs(&program, &samples, "the archive's sample inputs")?;
        samples
    } else {
        read_inputs(&program, input_files)?
    };
    Ok((program, tensors))
}

#[allow(clippy::too_many_arguments)]
fn run(
    archive: &Path,
    input_files: &[PathBuf],
    output_dir: Option<&Path>,
    timings: bool,
    runs: u32,
    threads: &[u32],
    target: &TargetArgs,
    archive_args: &ArchiveArgs,
) -> Result<()> {
    let start = std::time::Instant::now();
    let prefix = "aotc_run";
    let (mut program, tensors) = program_and_inputs(archive, input_files, archive_args, prefix)?;
    let library = Library::build(&mut program, prefix, target)?;
    let compiled = std::time::Instant::now();
    let counts: Vec<Option<u32>> = if threads.is_empty() { vec![None] } else { threads.iter().copied().map(Some).collect() };
    let mut outputs: Option<(Option<u32>, Vec<Vec<u8>>)> = None;
    for count in counts {
        let mut model = library.model(count)?;
        let result = run_model(&mut model, &tensors, runs)?;
        match &outputs {
            None => outputs = Some((count, result)),
            Some((first, expected)) => {
                if let Some(k) = (0..expected.len()).find(|&k| expected[k] != result[k]) {
                    let shown = |c: Option<u32>| c.map_or("the default".to_string(), |c| c.to_string());
                    bail!("output {k} differs between {} and {} threads (results must be bitwise identical)", shown(*first), shown(count));
                }
            }
        }
    }
    if timings {
        let (compile, run) = (compiled - start, compiled.elapsed());
        eprintln!("timings: compile {:.3} s, run {:.4} s", compile.as_secs_f64(), run.as_secs_f64());
    }
    let output_types: Vec<TensorType> = program.user_outputs().map(|o| o.ty.clone()).collect();
    let outputs = outputs.map(|(_, o)| o).unwrap_or_default();
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

/// `aotc bench`: see its help.
fn bench(archive: &Path, input_files: &[PathBuf], threads: &[u32], runs: u32, target: &TargetArgs, archive_args: &ArchiveArgs) -> Result<()> {
    let prefix = "aotc_bench";
    let (mut program, tensors) = program_and_inputs(archive, input_files, archive_args, prefix)?;
    let start = std::time::Instant::now();
    let library = Library::build(&mut program, prefix, target)?;
    println!("{}: compiled in {:.2} s", archive.display(), start.elapsed().as_secs_f64());
    let counts: Vec<u32> = if threads.is_empty() {
        let all = aotc_runtime::pool::default_threads() as u32;
        if all > 1 { vec![1, all] } else { vec![1] }
    } else {
        threads.to_vec()
    };
    let in_bytes: Vec<&[u8]> = tensors.iter().map(|t| t.data.as_slice()).collect();
    // the first handle of a model makes the weights the runtime derives
    // (Winograd filters); a handle is made anew for each count
    let start = std::time::Instant::now();
    let mut first = Some(library.model(Some(counts[0]))?);
    println!("a handle created in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    println!("{:>8} {:>12} {:>12} {:>9}", "threads", "median ms", "min ms", "speed-up");
    let mut first_median = None;
    for count in counts {
        let mut model = match first.take() {
            Some(model) => model,
            None => library.model(Some(count))?,
        };
        let mut outs: Vec<Vec<u8>> = model.outputs.iter().map(|o| vec![0u8; o.bytes]).collect();
        let mut out_refs: Vec<&mut [u8]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        for _ in 0..runs.div_ceil(10).max(2) {
            model.run_bytes(&in_bytes, &mut out_refs).map_err(|e| anyhow!("{e}"))?;
        }
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = std::time::Instant::now();
                model.run_bytes(&in_bytes, &mut out_refs).map_err(|e| anyhow!("{e}"))?;
                Ok(t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_>>()?;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let base = *first_median.get_or_insert(median);
        println!("{count:>8} {median:>12.3} {:>12.3} {:>8.2}x", times[0], base / median);
    }
    Ok(())
}

/// A library built by `driver::build` in a temporary folder, loaded.
struct Library {
    api: *const aotc_runtime::safe::Api,
    _library: libloading::Library,
    _dir: tempfile::TempDir,
}

impl Library {
    fn build(program: &mut ExportedProgram, prefix: &str, target: &TargetArgs) -> Result<Library> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(format!("lib{prefix}.so"));
        driver::build(program, &path, OutputKind::Shared, &target.options())?;
        unsafe {
            let library = libloading::Library::new(&path).map_err(|e| anyhow!("cannot load {}: {e}", path.display()))?;
            let api: libloading::Symbol<unsafe extern "C" fn() -> *const aotc_runtime::safe::Api> =
                library.get(format!("{prefix}_api").as_bytes()).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let api = api();
            Ok(Library { api, _library: library, _dir: dir })
        }
    }

    /// A new handle (with `threads` threads, else the default).
    fn model(&self, threads: Option<u32>) -> Result<aotc_runtime::safe::Model> {
        let mut model = unsafe { aotc_runtime::safe::Model::new(self.api) }.map_err(|e| anyhow!("{e}"))?;
        if let Some(t) = threads {
            model.set_num_threads(t as usize).map_err(|e| anyhow!("{e}"))?;
        }
        Ok(model)
    }
}

/// Runs a handle `runs` times on `inputs`; returns the last run's outputs.
fn run_model(model: &mut aotc_runtime::safe::Model, inputs: &[HostTensor], runs: u32) -> Result<Vec<Vec<u8>>> {
    let in_bytes: Vec<&[u8]> = inputs.iter().map(|t| t.data.as_slice()).collect();
    let mut outs: Vec<Vec<u8>> = model.outputs.iter().map(|o| vec![0u8; o.bytes]).collect();
    let mut out_refs: Vec<&mut [u8]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
    for _ in 0..runs {
        model.run_bytes(&in_bytes, &mut out_refs).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(outs)
}

fn format_values(t: &HostTensor) -> String {
    let float = t.ty.dtype.is_float();
    let values: Vec<String> = t.to_f64().iter().map(|v| if float { format!("{v:.6}") } else { format!("{v}") }).collect();
    format!("[{}]", values.join(", "))
}

fn opt(input: &Path, pass: Option<OptPass>, upstream: Option<&str>, vector_registers: u32, vector_bits: u32) -> Result<()> {
    let text = if input == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(input).with_context(|| format!("{}: cannot read", input.display()))?
    };
    let context = aotc_dialects::new_context();
    let mut module = aotc::mlir::parse(&context, &text, &input.display().to_string())?;
    if let Some(p) = upstream {
        aotc::mlir::run_pipeline(&context, &mut module, p, "the pass pipeline")?;
    }
    let target = aotc::kernels::Target { vector_bits, vector_registers };
    match pass {
        Some(OptPass::LowerAten) => module = pipeline::lower_to_linalg(&context, &module)?,
        Some(OptPass::Optimize) => pipeline::optimize(&context, &mut module, &target)?,
        Some(OptPass::Bufferize) => {
            let arena = pipeline::bufferize(&context, &mut module, &target)?;
            println!("// arena: {arena} bytes");
        }
        Some(OptPass::OutlineKernels) => {
            let outlined = pipeline::outline_kernels(&context, &module)?;
            println!("// kernels: {}, functions: {}", outlined.kernels, outlined.functions);
        }
        Some(OptPass::ParallelizeKernels) => {
            print!("{}", pipeline::parallelize_kernels(&context, &module)?.listing());
        }
        Some(OptPass::ToLlvm) => pipeline::to_llvm_dialect(&context, &mut module)?,
        None => {}
    }
    println!("{}", melior::ir::operation::OperationLike::to_string_with_flags(&module.as_operation(), Default::default()).unwrap_or_default());
    Ok(())
}
