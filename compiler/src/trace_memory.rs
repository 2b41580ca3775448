//! For the developers (`aotc --trace-memory`): before every load and store
//! of the model's code (vector and masked ones, and the two sides of a
//! `memcpy`, the one side of a `memset`), a call of the runtime's
//! [`TRACE`] with the address, the bytes, whether it writes and the name of
//! the function it is in. Only a runtime built with the `line-sharing`
//! feature defines it (`aotc_runtime::line_sharing`, which counts the cache
//! lines each kernel moves between threads; `tools/line_sharing.py`).
//! Added before LLVM's optimizations, so the traced accesses are the
//! program's, not fewer (a traced library runs some 100x slower).

use anyhow::{anyhow, Result};
use inkwell::context::Context as LlvmContext;
use inkwell::module::Module as LlvmModule;
use inkwell::targets::TargetData;
use inkwell::types::AnyType;
use inkwell::values::{BasicValueEnum, CallSiteValue, FunctionValue, InstructionOpcode, InstructionValue, PointerValue};

/// The runtime's tracer: `(address, bytes, write, function name)`.
pub const TRACE: &str = "aotc_rt_trace";

/// One traced access: where, how many bytes, whether it writes.
struct Access<'l> {
    address: PointerValue<'l>,
    bytes: Bytes<'l>,
    write: bool,
}

/// A size known at compile time, or a value (a `memcpy`'s length).
enum Bytes<'l> {
    Fixed(u64),
    Value(BasicValueEnum<'l>),
}

/// Adds the calls (see the module's comment) to every function `ir`
/// defines.
pub fn instrument<'l>(llvm: &'l LlvmContext, ir: &LlvmModule<'l>, data: &TargetData) -> Result<()> {
    let (i64_ty, i32_ty, ptr_ty) = (llvm.i64_type(), llvm.i32_type(), llvm.ptr_type(inkwell::AddressSpace::default()));
    let functions: Vec<FunctionValue> = ir.get_functions().filter(|f| f.count_basic_blocks() > 0).collect();
    let trace = ir.add_function(TRACE, llvm.void_type().fn_type(&[ptr_ty.into(), i64_ty.into(), i32_ty.into(), ptr_ty.into()], false), None);
    let builder = llvm.create_builder();
    for function in functions {
        let Some(first) = function.get_first_basic_block().and_then(|b| b.get_first_instruction()) else { continue };
        builder.position_before(&first);
        let name = function.get_name().to_string_lossy().into_owned();
        let name = builder.build_global_string_ptr(&name, "traced_function").map_err(failed)?.as_pointer_value();
        let instructions: Vec<InstructionValue> = function.get_basic_block_iter().flat_map(|b| b.get_instructions()).collect();
        for instruction in instructions {
            for access in accesses(instruction, data) {
                builder.position_before(&instruction);
                let bytes = match access.bytes {
                    Bytes::Fixed(n) => i64_ty.const_int(n, false).into(),
                    Bytes::Value(v) => v,
                };
                let write = i32_ty.const_int(access.write as u64, false);
                builder.build_call(trace, &[access.address.into(), bytes.into(), write.into(), name.into()], "").map_err(failed)?;
            }
        }
    }
    Ok(())
}

fn failed(e: inkwell::builder::BuilderError) -> anyhow::Error {
    anyhow!("cannot trace memory: {e}")
}

/// The accesses `instruction` makes.
fn accesses<'l>(instruction: InstructionValue<'l>, data: &TargetData) -> Vec<Access<'l>> {
    let operand = |k: u32| instruction.get_operand(k).and_then(|o| o.value());
    let pointer = |k: u32| operand(k).filter(|v| v.is_pointer_value()).map(|v| v.into_pointer_value());
    let size = |ty: &dyn AnyType<'l>| Bytes::Fixed(data.get_store_size(ty));
    // a load's pointer is operand 0; a store's value 0, pointer 1 (so are a
    // masked load's and store's)
    let load = || pointer(0).map(|address| Access { address, bytes: size(&instruction.get_type()), write: false }).into_iter().collect();
    let store = || match (operand(0), pointer(1)) {
        (Some(value), Some(address)) => vec![Access { address, bytes: size(&value.get_type()), write: true }],
        _ => vec![],
    };
    match instruction.get_opcode() {
        InstructionOpcode::Load => load(),
        InstructionOpcode::Store => store(),
        InstructionOpcode::Call => {
            let Ok(call) = CallSiteValue::try_from(instruction) else { return vec![] };
            let callee = call.get_called_fn_value().map(|f| f.get_name().to_string_lossy().into_owned()).unwrap_or_default();
            if callee.starts_with("llvm.masked.load.") {
                load()
            } else if callee.starts_with("llvm.masked.store.") {
                store()
            } else if callee.starts_with("llvm.memcpy.") || callee.starts_with("llvm.memmove.") {
                match (pointer(0), pointer(1), operand(2)) {
                    (Some(to), Some(from), Some(n)) => vec![
                        Access { address: from, bytes: Bytes::Value(n), write: false },
                        Access { address: to, bytes: Bytes::Value(n), write: true },
                    ],
                    _ => vec![],
                }
            } else if callee.starts_with("llvm.memset.") {
                match (pointer(0), operand(2)) {
                    (Some(to), Some(n)) => vec![Access { address: to, bytes: Bytes::Value(n), write: true }],
                    _ => vec![],
                }
            } else {
                vec![]
            }
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inkwell::targets::{InitializationConfig, Target, TargetMachine};

    /// A load, a store, a memcpy and a masked store: five traced accesses,
    /// the stores and the copy's destination as writes.
    #[test]
    fn every_access_is_traced_before_it() {
        Target::initialize_native(&InitializationConfig::default()).unwrap();
        let llvm = LlvmContext::create();
        let ir = llvm.create_module("t");
        let (ptr, i64_ty) = (llvm.ptr_type(inkwell::AddressSpace::default()), llvm.i64_type());
        let f = ir.add_function("kernel", llvm.void_type().fn_type(&[ptr.into(), ptr.into()], false), None);
        let builder = llvm.create_builder();
        builder.position_at_end(llvm.append_basic_block(f, "entry"));
        let (a, b) = (f.get_nth_param(0).unwrap().into_pointer_value(), f.get_nth_param(1).unwrap().into_pointer_value());
        let v = builder.build_load(llvm.f32_type().vec_type(16), a, "v").unwrap();
        builder.build_store(b, v).unwrap();
        builder.build_memcpy(b, 4, a, 4, i64_ty.const_int(256, false)).unwrap();
        let (f32x16, i1x16) = (llvm.f32_type().vec_type(16), llvm.bool_type().vec_type(16));
        let masked_store = ir.add_function(
            "llvm.masked.store.v16f32.p0",
            llvm.void_type().fn_type(&[f32x16.into(), ptr.into(), i1x16.into()], false),
            None,
        );
        let mask = i1x16.const_zero();
        builder.build_call(masked_store, &[v.into(), b.into(), mask.into()], "").unwrap();
        builder.build_return(None).unwrap();
        let machine = TargetMachine::get_default_triple();
        let target = Target::from_triple(&machine).unwrap();
        let tm = target.create_target_machine(&machine, "generic", "", inkwell::OptimizationLevel::None, inkwell::targets::RelocMode::PIC, inkwell::targets::CodeModel::Default).unwrap();
        instrument(&llvm, &ir, &tm.get_target_data()).unwrap();
        ir.verify().unwrap();
        let text = ir.print_to_string().to_string();
        let traces: Vec<&str> = text.lines().filter(|l| l.contains("call void @aotc_rt_trace")).collect();
        assert_eq!(traces.len(), 5, "{text}");
        assert!(traces[0].contains("i64 64, i32 0"), "{text}");
        assert!(traces[1].contains("i64 64, i32 1"), "{text}");
        assert!(traces[2].contains("i64 256, i32 0") && traces[3].contains("i64 256, i32 1"), "{text}");
        assert!(traces[4].contains("i64 64, i32 1"), "{text}");
    }
}
