//! LLVM dialect -> LLVM IR -> optimized machine code for the target, with
//! inkwell's TargetMachine.

use anyhow::{anyhow, bail, Result};
use inkwell::{
    attributes::AttributeLoc,
    context::Context as LlvmContext,
    module::Module as LlvmModule,
    passes::PassBuilderOptions,
    targets::{CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple},
    OptimizationLevel,
};
use melior::ir::Module;
use std::path::Path;

/// Where and how to generate code.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// LLVM triple; the host's when `None`.
    pub triple: Option<String>,
    /// CPU name (`znver3`, `skylake-avx512`, ...); the host's when `None`.
    pub cpu: Option<String>,
    /// 0..=3
    pub opt_level: u8,
    /// Trace every load and store (`trace_memory`).
    pub trace_memory: bool,
}

/// LLVM's optimization level when none is given. 2, not 3: the kernels
/// arrive vectorized and tiled, and -O3 made nothing measurably faster
/// (resnet18, mobilenet_v2, BERT, sdpa, softmax, GELU, layer norm,
/// depthwise) while taking 0.2 s longer on resnet18.
pub const DEFAULT_OPT_LEVEL: u8 = 2;

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions { triple: None, cpu: None, opt_level: DEFAULT_OPT_LEVEL, trace_memory: false }
    }
}

fn optimization_level(level: u8) -> OptimizationLevel {
    match level {
        0 => OptimizationLevel::None,
        1 => OptimizationLevel::Less,
        2 => OptimizationLevel::Default,
        _ => OptimizationLevel::Aggressive,
    }
}

/// Whether the target runs 512-bit vectors at full speed with 32 vector
/// registers (AVX-512F + VL): known for the host from its features, and for
/// a named CPU from a list of those that do.
fn has_avx512(options: &TargetOptions) -> bool {
    const AVX512_CPUS: &[&str] = &[
        "znver4", "znver5", "icelake-server", "sapphirerapids", "emeraldrapids", "graniterapids", "cooperlake",
        "cascadelake", "tigerlake", "rocketlake", "skylake-avx512", "x86-64-v4",
    ];
    match (&options.triple, &options.cpu) {
        (None, None) => {
            let features = TargetMachine::get_host_cpu_features().to_string();
            ["+avx512f", "+avx512vl"].iter().all(|f| features.split(',').any(|x| x == *f))
        }
        (_, Some(cpu)) => AVX512_CPUS.contains(&cpu.as_str()),
        _ => false,
    }
}

/// How many vector registers the target has: 32 with AVX-512, else 16.
pub fn vector_registers(options: &TargetOptions) -> u32 {
    if has_avx512(options) {
        32
    } else {
        16
    }
}

/// The vector width the generated code uses: 512 bits with AVX-512 (the
/// 16-lane kernels map to one register), else 256.
pub fn vector_bits(options: &TargetOptions) -> u32 {
    if has_avx512(options) {
        512
    } else {
        256
    }
}

/// What the kernel strategies generate code for.
pub fn kernel_target(options: &TargetOptions) -> crate::kernels::Target {
    crate::kernels::Target { vector_bits: vector_bits(options), vector_registers: vector_registers(options) }
}

pub fn target_machine(options: &TargetOptions) -> Result<TargetMachine> {
    // LLVM's target registry is not safe to fill from several threads at
    // once (code generation runs on several): fill it once per process.
    static INITIALIZE: std::sync::Once = std::sync::Once::new();
    INITIALIZE.call_once(|| {
        Target::initialize_all(&InitializationConfig::default());
        // The post-register-allocation scheduler took a quarter of code
        // generation (0.23 of 0.95 s on resnet18, mostly in the unrolled
        // FMA blocks) and made no measurable difference to run time on
        // Zen 4 (resnet18, mobilenet_v2, BERT, sdpa, matmul, conv, depthwise).
        set_llvm_options(&["-post-RA-scheduler=false"]);
    });
    let host = options.triple.is_none();
    let triple = match &options.triple {
        Some(t) => TargetTriple::create(t),
        None => TargetMachine::get_default_triple(),
    };
    let target = Target::from_triple(&triple).map_err(|e| anyhow!("unknown target triple: {e}"))?;
    let (cpu, features) = match (&options.cpu, host) {
        (Some(cpu), _) => (cpu.clone(), String::new()),
        (None, true) => (
            TargetMachine::get_host_cpu_name().to_string(),
            TargetMachine::get_host_cpu_features().to_string(),
        ),
        (None, false) => ("generic".to_string(), String::new()),
    };
    target
        .create_target_machine(
            &triple,
            &cpu,
            &features,
            optimization_level(options.opt_level),
            RelocMode::PIC,
            CodeModel::Default,
        )
        .ok_or_else(|| anyhow!("cannot create a target machine for {} / cpu {cpu}", triple))
}

extern "C" {
    // LLVM's C API (linked with inkwell); inkwell does not wrap it.
    fn LLVMParseCommandLineOptions(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char, overview: *const std::ffi::c_char);
}

/// Sets LLVM's global command-line options (as `clang -mllvm` does), once
/// per process before any code generation.
fn set_llvm_options(options: &[&str]) {
    let args: Vec<std::ffi::CString> = std::iter::once("aotc").chain(options.iter().copied()).map(|a| std::ffi::CString::new(a).unwrap()).collect();
    let pointers: Vec<*const std::ffi::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    unsafe { LLVMParseCommandLineOptions(pointers.len() as std::ffi::c_int, pointers.as_ptr(), c"".as_ptr()) };
}

/// Translates an LLVM-dialect module into LLVM IR and optimizes it.
pub fn to_llvm_ir<'l>(llvm: &'l LlvmContext, module: &Module, machine: &TargetMachine, options: &TargetOptions) -> Result<LlvmModule<'l>> {
    let ir = translate(llvm, module, machine, options)?;
    optimize(&ir, machine, options)?;
    Ok(ir)
}

fn optimize(ir: &LlvmModule, machine: &TargetMachine, options: &TargetOptions) -> Result<()> {
    let passes = format!("default<O{}>", options.opt_level.min(3));
    ir.run_passes(&passes, machine, PassBuilderOptions::create())
        .map_err(|e| anyhow!("LLVM optimization failed: {e}"))?;
    split_long_blocks(ir, CALLS_PER_BLOCK)
}

/// How many calls a basic block keeps before code generation (see
/// `split_long_blocks`).
const CALLS_PER_BLOCK: usize = 8;

/// Splits every basic block after each `calls_per_block`-th call. The
/// model's entry function is one block of hundreds of kernel calls, and
/// instruction selection, which works on one block at a time, slows
/// down more than linearly with a block's size: resnet18's entry took
/// 0.33 s to select in one block, 0.17 s in blocks of 8 calls. Run after
/// the optimization pipeline, which would merge the blocks back. Only
/// blocks that return are split: no successor's phi then names them.
fn split_long_blocks(ir: &LlvmModule, calls_per_block: usize) -> Result<()> {
    let llvm = ir.get_context();
    let builder = llvm.create_builder();
    for function in ir.get_functions() {
        let mut block = function.get_first_basic_block();
        while let Some(current) = block {
            let returns = current.get_terminator().is_some_and(|t| t.get_opcode() == inkwell::values::InstructionOpcode::Return);
            if !returns {
                block = current.get_next_basic_block();
                continue;
            }
            let mut calls = 0;
            let mut split_after = None;
            let mut instruction = current.get_first_instruction();
            while let Some(i) = instruction {
                if i.get_opcode() == inkwell::values::InstructionOpcode::Call {
                    calls += 1;
                    if calls == calls_per_block && !i.get_next_instruction().is_some_and(|n| n.is_terminator()) {
                        split_after = Some(i);
                        break;
                    }
                }
                instruction = i.get_next_instruction();
            }
            let Some(last) = split_after else {
                block = current.get_next_basic_block();
                continue;
            };
            // Move everything after `last` into a new block that `current` branches to.
            let rest = llvm.insert_basic_block_after(current, "");
            builder.position_at_end(rest);
            let mut moving = last.get_next_instruction();
            while let Some(i) = moving {
                moving = i.get_next_instruction();
                i.remove_from_basic_block();
                builder.insert_instruction(&i, None);
            }
            builder.position_at_end(current);
            builder.build_unconditional_branch(rest).map_err(|e| anyhow!("cannot split a block: {e}"))?;
            block = Some(rest);
        }
    }
    Ok(())
}

/// Translates an LLVM-dialect module into (unoptimized) LLVM IR for the
/// target.
pub fn translate<'l>(llvm: &'l LlvmContext, module: &Module, machine: &TargetMachine, options: &TargetOptions) -> Result<LlvmModule<'l>> {
    let raw = unsafe {
        mlir_sys::mlirTranslateModuleToLLVMIR(
            module.as_operation().to_raw(),
            llvm.raw() as *mut _ as mlir_sys::LLVMContextRef,
        )
    };
    if raw.is_null() {
        bail!("translation of the LLVM dialect to LLVM IR failed");
    }
    let ir = unsafe { LlvmModule::new(raw as *mut _) };
    crate::parallel::dispatch_calls(llvm, &ir)?;
    if options.trace_memory {
        crate::trace_memory::instrument(llvm, &ir, &machine.get_target_data())?;
    }
    limit_vector_width(llvm, &ir, vector_bits(options));
    hide_functions(&ir);
    ir.set_triple(&machine.get_triple());
    ir.set_data_layout(&machine.get_target_data().get_data_layout());
    ir.verify().map_err(|e| anyhow!("invalid LLVM IR: {e}"))?;
    Ok(ir)
}

/// Optimizes `ir` and writes it as object files into `dir`, on up to
/// `threads` threads: the functions (the model's entry points and its
/// outlined kernels) are dealt into parts of about equal size, and each
/// part is optimized and compiled in its own LLVM context from a copy of
/// the module in which the other parts' functions are only declared.
/// There are `PARTS_PER_THREAD` times more parts than threads, taken from
/// a queue: a function's size before optimization predicts its compile
/// time poorly (resnet18's two halves took 1.1 and 0.6 s), and smaller
/// parts even the threads out (each part costs ~30 ms to read the module).
/// Returns the objects' paths. The model's functions are hidden, not
/// internal, so calls between parts link (see `hide_functions`).
pub fn compile_objects(ir: &LlvmModule, options: &TargetOptions, dir: &Path, threads: usize) -> Result<Vec<std::path::PathBuf>> {
    const PARTS_PER_THREAD: usize = 4;
    // Only external functions are dealt out; the others (helpers such as
    // `__mlir_math_ipowi_i64`, linkonce_odr) stay in every part that calls them.
    let sizes: Vec<(String, usize)> = ir
        .get_functions()
        .filter(|f| f.count_basic_blocks() > 0 && f.get_linkage() == inkwell::module::Linkage::External)
        .map(|f| (f.get_name().to_string_lossy().into_owned(), f.get_basic_blocks().iter().map(|b| b.get_instructions().count()).sum()))
        .collect();
    let threads = threads.clamp(1, sizes.len().max(1));
    if threads == 1 {
        let machine = target_machine(options)?;
        optimize(ir, &machine, options)?;
        let path = dir.join("model.o");
        write_object(ir, &machine, &path)?;
        return Ok(vec![path]);
    }
    let parts = (threads * PARTS_PER_THREAD).min(sizes.len());
    let owner = deal(&sizes, parts);
    let bitcode = ir.write_bitcode_to_memory().as_slice().to_vec();
    let next_part = std::sync::atomic::AtomicUsize::new(0);
    let compile_part = |part: usize| -> Result<std::path::PathBuf> {
        let llvm = LlvmContext::create();
        let buffer = inkwell::memory_buffer::MemoryBuffer::create_from_memory_range(&bitcode, "model");
        let module = LlvmModule::parse_bitcode_from_buffer(&buffer, &llvm).map_err(|e| anyhow!("cannot read the model's bitcode: {e}"))?;
        let others: Vec<_> = module
            .get_functions()
            .filter(|f| owner.get(f.get_name().to_string_lossy().as_ref()).is_some_and(|&p| p != part))
            .collect();
        for function in others {
            declare_only(&module, function);
        }
        let machine = target_machine(options)?;
        optimize(&module, &machine, options)?;
        let path = dir.join(format!("model{part}.o"));
        write_object(&module, &machine, &path)?;
        Ok(path)
    };
    let results: Vec<Vec<Result<std::path::PathBuf>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = vec![];
                    loop {
                        let part = next_part.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if part >= parts {
                            return done;
                        }
                        done.push(compile_part(part));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| vec![Err(anyhow!("code generation panicked"))])).collect()
    });
    results.into_iter().flatten().collect()
}

/// Replaces the definition of `function` with a hidden declaration of the
/// same name and type (its body is compiled in another part). Deleting
/// the function drops its body's references first, which deleting its
/// blocks one by one would not.
fn declare_only<'l>(module: &LlvmModule<'l>, function: inkwell::values::FunctionValue<'l>) {
    let name = function.get_name().to_string_lossy().into_owned();
    let declaration = module.add_function(&format!("{name}.declaration"), function.get_type(), None);
    function.replace_all_uses_with(declaration);
    unsafe { function.delete() };
    declaration.as_global_value().set_name(&name);
    declaration.as_global_value().set_visibility(inkwell::GlobalVisibility::Hidden);
}

/// Assigns each function to one of `parts` parts, largest first to the
/// least loaded part.
fn deal(sizes: &[(String, usize)], parts: usize) -> std::collections::HashMap<String, usize> {
    let mut order: Vec<&(String, usize)> = sizes.iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut load = vec![0usize; parts];
    let mut owner = std::collections::HashMap::new();
    for (name, size) in order {
        let part = (0..parts).min_by_key(|&p| (load[p], p)).unwrap_or(0);
        load[part] += size.max(&1);
        owner.insert(name.clone(), part);
    }
    owner
}

/// The model's functions (its entry points and kernels) are called only
/// from the glue linked into the same library: hidden visibility makes
/// those calls direct (no PLT) and keeps the kernels out of the library's
/// symbol table.
fn hide_functions(ir: &LlvmModule) {
    for function in ir.get_functions().filter(|f| f.count_basic_blocks() > 0) {
        function.as_global_value().set_visibility(inkwell::GlobalVisibility::Hidden);
    }
}

/// Keeps vector code at `bits` wide registers: explicit wider vectors are
/// split into registers of that width. 512 only where AVX-512 is known to
/// run at full speed (see `has_avx512`).
fn limit_vector_width(llvm: &LlvmContext, ir: &LlvmModule, bits: u32) {
    let width = bits.to_string();
    for function in ir.get_functions() {
        for (key, value) in [("prefer-vector-width", width.as_str()), ("min-legal-vector-width", width.as_str())] {
            function.add_attribute(AttributeLoc::Function, llvm.create_string_attribute(key, value));
        }
    }
}

/// Writes an object file that defines one hidden, read-only, 64-byte
/// aligned symbol holding `bytes` (the weights blob), for the target of
/// `machine`: written directly for ELF targets (`crate::elf`), else as the
/// data of an LLVM constant. Nothing about the bytes, nor the symbol name
/// (a C identifier built from the sanitized prefix), is read by an
/// assembler.
pub fn write_data_object(symbol: &str, bytes: &[u8], machine: &TargetMachine, path: &Path) -> Result<()> {
    let triple = machine.get_triple().as_str().to_string_lossy().into_owned();
    if let Some(elf_machine) = crate::elf::machine_for(&triple) {
        return crate::elf::write_data_object(path, elf_machine, symbol, bytes)
            .map_err(|e| anyhow!("cannot write {}: {e}", path.display()));
    }
    let llvm = LlvmContext::create();
    let module = llvm.create_module("weights");
    module.set_triple(&machine.get_triple());
    module.set_data_layout(&machine.get_target_data().get_data_layout());
    // One trailing byte keeps the symbol valid (and distinct) when there are no weights.
    let mut data = Vec::with_capacity(bytes.len() + 1);
    data.extend_from_slice(bytes);
    data.push(0);
    let value = llvm.const_string(&data, false);
    let global = module.add_global(value.get_type(), None, symbol);
    global.set_initializer(&value);
    global.set_constant(true);
    global.set_alignment(64);
    global.set_linkage(inkwell::module::Linkage::External);
    global.set_visibility(inkwell::GlobalVisibility::Hidden);
    write_object(&module, machine, path)
}

pub fn write_object(ir: &LlvmModule, machine: &TargetMachine, path: &Path) -> Result<()> {
    machine
        .write_to_file(ir, FileType::Object, path)
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}

pub fn assembly(ir: &LlvmModule, machine: &TargetMachine) -> Result<String> {
    let buffer = machine
        .write_to_memory_buffer(ir, FileType::Assembly)
        .map_err(|e| anyhow!("code generation failed: {e}"))?;
    Ok(String::from_utf8_lossy(buffer.as_slice()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_balanced_and_cover_every_function() {
        let sizes: Vec<(String, usize)> = [("a", 100), ("b", 60), ("c", 50), ("d", 10), ("e", 0)]
            .iter()
            .map(|(n, s)| (n.to_string(), *s))
            .collect();
        let owner = deal(&sizes, 2);
        assert_eq!(owner.len(), 5);
        let load = |p| sizes.iter().filter(|(n, _)| owner[n] == p).map(|(_, s)| s).sum::<usize>();
        assert_eq!((load(0), load(1)), (110, 110));
        assert_eq!(deal(&sizes, 1).values().filter(|&&p| p == 0).count(), 5);
    }

    #[test]
    fn long_returning_blocks_are_split_after_every_few_calls() {
        let llvm = LlvmContext::create();
        let module = llvm.create_module("calls");
        let void = llvm.void_type().fn_type(&[], false);
        let callee = module.add_function("kernel", void, None);
        let caller = module.add_function("entry", void, None);
        let builder = llvm.create_builder();
        builder.position_at_end(llvm.append_basic_block(caller, "entry"));
        for _ in 0..20 {
            builder.build_call(callee, &[], "").unwrap();
        }
        builder.build_return(None).unwrap();
        split_long_blocks(&module, 8).unwrap();
        // 8 + 8 + 4 calls; the last block keeps the return.
        let calls: Vec<usize> = caller
            .get_basic_blocks()
            .iter()
            .map(|b| b.get_instructions().filter(|i| i.get_opcode() == inkwell::values::InstructionOpcode::Call).count())
            .collect();
        assert_eq!(calls, vec![8, 8, 4]);
        assert!(module.verify().is_ok(), "{}", module.print_to_string());
    }
}
