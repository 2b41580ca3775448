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
        // One `irdl.any` per value: a shared constraint variable would force
        // every operand to have the same type.
        s += &format!("  irdl.operation @{op} {{\n");
        let mut operands = Vec::new();
        for (i, o) in rule.operands.iter().enumerate() {
            s += &format!("    %o{i} = irdl.any\n");
            operands.push(match o {
                lower::OperandSpec::One(n) => format!("{n}: %o{i}"),
                lower::OperandSpec::Optional(n) => format!("{n}: optional %o{i}"),
                lower::OperandSpec::Variadic(n) => format!("{n}: variadic %o{i}"),
            });
        }
        let mut results = Vec::new();
        for i in 0..rule.results {
            s += &format!("    %r{i} = irdl.any\n");
            results.push(format!("result{i}: %r{i}"));
        }
        s += &format!("    irdl.operands({})\n", operands.join(", "));
        s += &format!("    irdl.results({})\n  }}\n", results.join(", "));
    }
    s += "}\n";
    s
}

/// A context with every upstream dialect, extension, pass and LLVM
/// translation registered, and the aten dialect loaded.
pub fn new_context() -> Context {
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
