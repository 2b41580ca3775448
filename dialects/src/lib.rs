//! The `aten` MLIR dialect and its lowering to linalg.
//!
//! The dialect is declared in IRDL, generated from the lowering rule table
//! ([`lower::RULES`]): every op that can be imported has exactly one rule, so
//! adding an op is one table entry, one rule function and one test.

pub mod lower;
pub mod types;

use melior::{
    dialect::DialectRegistry,
    ir::Module,
    utility::{load_irdl_dialects, register_all_dialects, register_all_llvm_translations, register_all_passes},
    Context,
};

/// The IRDL module that declares the aten dialect, one `irdl.operation` per rule.
pub fn aten_irdl() -> String {
    let mut s = String::from("irdl.dialect @aten {\n");
    for rule in lower::RULES {
        let op = rule.op.strip_prefix("aten.").expect("rule names start with aten.");
        // One `irdl.any` per value: IRDL binds a constraint variable to the
        // first type it sees, so a shared one (even inside one variadic)
        // would force every operand to have the same type. Tensor lists are
        // therefore LIST_SLOTS optional operands, each with its own constraint.
        s += &format!("  irdl.operation @{op} {{\n");
        let mut operands = Vec::new();
        for (i, slot) in operand_slots(rule).iter().enumerate() {
            s += &format!("    %o{i} = irdl.any\n");
            operands.push(match slot {
                Slot::One(n) => format!("{n}: %o{i}"),
                Slot::Optional(n) => format!("{n}: optional %o{i}"),
            });
        }
        let mut results = Vec::new();
        for i in 0..result_slots(rule) {
            s += &format!("    %r{i} = irdl.any\n");
            let kind = if rule.results == lower::VARIADIC { "optional " } else { "" };
            results.push(format!("result{i}: {kind}%r{i}"));
        }
        s += &format!("    irdl.operands({})\n", operands.join(", "));
        s += &format!("    irdl.results({})\n  }}\n", results.join(", "));
    }
    s += "}\n";
    s
}

/// The longest tensor list an op takes or returns (cat inputs, split results).
pub const LIST_SLOTS: usize = 64;

/// One declared operand of an aten op in IRDL.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    One(String),
    Optional(String),
}

/// The IRDL operands of a rule: a tensor list `tensors` becomes optional
/// operands `tensors_0` ... `tensors_63`.
pub fn operand_slots(rule: &lower::Rule) -> Vec<Slot> {
    let mut slots = Vec::new();
    for o in rule.operands {
        match o {
            lower::OperandSpec::One(n) => slots.push(Slot::One(n.to_string())),
            lower::OperandSpec::Optional(n) => slots.push(Slot::Optional(n.to_string())),
            lower::OperandSpec::Variadic(n) => {
                slots.extend((0..LIST_SLOTS).map(|k| Slot::Optional(format!("{n}_{k}"))));
            }
        }
    }
    slots
}

/// How many results a rule declares (a list result is LIST_SLOTS optional ones).
pub fn result_slots(rule: &lower::Rule) -> usize {
    if rule.results == lower::VARIADIC {
        LIST_SLOTS
    } else {
        rule.results
    }
}

/// The `operandSegmentSizes` and `resultSegmentSizes` attributes an op
/// needs when it declares more than one optional value, for the given
/// operand argument names (in order) and result count.
pub fn segment_attributes(rule: &lower::Rule, operand_args: &[String], results: usize) -> Result<Vec<String>, String> {
    let mut attrs = Vec::new();
    let mut sizes = Vec::new();
    for o in rule.operands {
        match o {
            lower::OperandSpec::One(_) => sizes.push(1),
            lower::OperandSpec::Optional(n) => sizes.push(operand_args.iter().filter(|a| a == n).count()),
            lower::OperandSpec::Variadic(n) => {
                let count = operand_args.iter().filter(|a| a == n).count();
                if count > LIST_SLOTS {
                    return Err(format!("{}: a list of {count} tensors is longer than the {LIST_SLOTS} aotc takes", rule.op));
                }
                sizes.extend((0..LIST_SLOTS).map(|k| usize::from(k < count)));
            }
        }
    }
    let optional = operand_slots(rule).iter().filter(|s| matches!(s, Slot::Optional(_))).count();
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    if optional > 1 {
        attrs.push(format!("operandSegmentSizes = array<i32: {}>", join(&sizes)));
    }
    if rule.results == lower::VARIADIC {
        if results > LIST_SLOTS {
            return Err(format!("{}: {results} results are more than the {LIST_SLOTS} aotc takes", rule.op));
        }
        let r: Vec<usize> = (0..LIST_SLOTS).map(|k| usize::from(k < results)).collect();
        attrs.push(format!("resultSegmentSizes = array<i32: {}>", join(&r)));
    }
    Ok(attrs)
}

/// Printing an op normally verifies the whole function around it first.
/// Some transforms print ops into diagnostics they only show on failure
/// (`fuse_into_containing_op` describes each producer and loop before it
/// tries to fuse them), which made every fusion cost a verification of
/// the model: 5.8 of GPT-2's 6.4 s of kernel planning. aotc verifies after
/// every pass itself and prints only verified modules (error diagnostics
/// print ops in generic form, which needs no verification), so it turns
/// on MLIR's `--mlir-print-assume-verified`, once per process.
fn print_ops_without_verifying() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" {
        // `mlir::registerAsmPrinterCLOptions()`: a C++ function with no C API
        // wrapper; it takes and returns nothing, so the C calling convention fits.
        #[link_name = "_ZN4mlir27registerAsmPrinterCLOptionsEv"]
        fn register_asm_printer_cl_options();
        fn LLVMParseCommandLineOptions(argc: i32, argv: *const *const std::ffi::c_char, overview: *const std::ffi::c_char);
    }
    ONCE.call_once(|| unsafe {
        register_asm_printer_cl_options();
        let args = [c"aotc".as_ptr(), c"--mlir-print-assume-verified".as_ptr()];
        LLVMParseCommandLineOptions(args.len() as i32, args.as_ptr(), std::ptr::null());
    });
}

/// A context with every upstream dialect, extension, pass and LLVM
/// translation registered, and the aten dialect loaded.
pub fn new_context() -> Context {
    print_ops_without_verifying();
    let context = Context::new();
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    register_all_passes();
    register_all_llvm_translations(&context);
    let irdl = Module::parse(&context, &aten_irdl()).expect("the generated aten IRDL parses");
    assert!(load_irdl_dialects(&irdl), "the aten IRDL dialect loads");
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use melior::ir::operation::OperationLike;

    #[test]
    fn aten_ops_parse_in_generic_form() {
        let context = new_context();
        let text = r#"func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
            %0 = "aten.relu"(%x) {operand_names = ["self"]} : (tensor<2xf32>) -> tensor<2xf32>
            return %0 : tensor<2xf32>
        }"#;
        let module = Module::parse(&context, text).expect("parses");
        assert!(module.as_operation().verify());
    }

    #[test]
    fn verifier_checks_operand_counts() {
        let context = new_context();
        let text = r#"func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
            %0 = "aten.relu"(%x, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
            return %0 : tensor<2xf32>
        }"#;
        let verified = Module::parse(&context, text).map(|m| m.as_operation().verify()).unwrap_or(false);
        assert!(!verified);
    }
}
