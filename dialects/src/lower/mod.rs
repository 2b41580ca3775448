//! Lowering from the aten dialect to linalg/tensor/arith/math on tensors.
//!
//! The driver walks the single `func.func` of an imported module and hands
//! each aten op to the rule registered for its name in [`RULES`]. A rule
//! writes MLIR text through an [`Emitter`] and returns the SSA names of the
//! op's results. The lowered function has the ABI the rest of the pipeline
//! expects: every input (weights first, in graph-signature order, then user
//! inputs) and every output is a `memref` argument, followed by the
//! activation arena `memref<?xi8>`; results are written with
//! `bufferization.materialize_in_destination`.
//!
//! Rules are grouped by op family, as torch-mlir's TorchToLinalg is:
//! elementwise, linear algebra, convolution, pooling, shape/view ops.

mod conv;
mod elementwise;
mod linear;
mod pooling;
mod shape;

use crate::types::Ty;
use melior::ir::{
    block::BlockLike, operation::OperationLike, Module, OperationRef, RegionLike, Value, ValueLike,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// How an op's tensor operands are declared in IRDL.
pub enum OperandSpec {
    One(&'static str),
    Optional(&'static str),
    Variadic(&'static str),
}

pub type LowerFn = fn(&mut Emitter, &AtenOp) -> Result<Vec<String>, String>;

/// One entry of the lowering table.
pub struct Rule {
    /// The aten op name, `aten.<op>[.<overload>]` (the `.default` overload is dropped).
    pub op: &'static str,
    pub operands: &'static [OperandSpec],
    pub results: usize,
    pub lower: LowerFn,
}

use OperandSpec::*;

/// Every aten op aotc compiles, with its lowering rule.
pub static RULES: &[Rule] = &[
    // elementwise
    Rule { op: "aten.relu", operands: &[One("self")], results: 1, lower: elementwise::relu },
    Rule { op: "aten.mul_tensor", operands: &[One("self"), One("other")], results: 1, lower: elementwise::mul },
    Rule { op: "aten.add_tensor", operands: &[One("self"), One("other")], results: 1, lower: elementwise::add },
    // linear algebra
    Rule { op: "aten.linear", operands: &[One("input"), One("weight"), Optional("bias")], results: 1, lower: linear::linear },
    Rule { op: "aten.addmm", operands: &[One("self"), One("mat1"), One("mat2")], results: 1, lower: linear::addmm },
    Rule { op: "aten.mm", operands: &[One("self"), One("mat2")], results: 1, lower: linear::mm },
    // convolution
    Rule { op: "aten.conv2d", operands: &[One("input"), One("weight"), Optional("bias")], results: 1, lower: conv::conv2d },
    Rule { op: "aten.convolution", operands: &[One("input"), One("weight"), Optional("bias")], results: 1, lower: conv::convolution },
    // pooling
    Rule { op: "aten.max_pool2d", operands: &[One("self")], results: 1, lower: pooling::max_pool2d },
    Rule { op: "aten.max_pool2d_with_indices", operands: &[One("self")], results: 2, lower: pooling::max_pool2d_with_indices },
    // shape and view ops
    Rule { op: "aten.flatten_using_ints", operands: &[One("self")], results: 1, lower: shape::reshape },
    Rule { op: "aten.view", operands: &[One("self")], results: 1, lower: shape::reshape },
    Rule { op: "aten.reshape", operands: &[One("self")], results: 1, lower: shape::reshape },
    Rule { op: "aten.unsafe_view", operands: &[One("self")], results: 1, lower: shape::reshape },
    Rule { op: "aten.permute", operands: &[One("self")], results: 1, lower: shape::permute },
    Rule { op: "aten.t", operands: &[One("self")], results: 1, lower: shape::permute },
];

/// The rule for an aten op name (`aten.conv2d`), if aotc has one.
pub fn rule_for(op: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.op == op)
}

/// The aten dialect op name for an Export IR target. IRDL op names are
/// lowercase identifiers without leading or double underscores, so:
/// `aten.conv2d.default` -> `aten.conv2d`, `aten.mul.Tensor` -> `aten.mul_tensor`,
/// `aten._unsafe_view.default` -> `aten.unsafe_view`, `aten.add_.Tensor` -> `aten.add_inplace_tensor`.
pub fn aten_name(target: &str) -> String {
    let target = target.strip_suffix(".default").unwrap_or(target);
    let mut parts = target.splitn(3, '.');
    let (namespace, op, overload) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let mut name = op.trim_start_matches('_').to_string();
    if name.ends_with('_') {
        name = format!("{}_inplace", name.trim_end_matches('_'));
    }
    if let Some(o) = overload {
        name = format!("{name}_{}", o.to_lowercase());
    }
    format!("{namespace}.{name}")
}

/// A non-tensor argument, decoded from its MLIR attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
    Strs(Vec<String>),
}

/// A tensor operand of an aten op.
#[derive(Debug, Clone)]
pub struct Operand {
    pub ssa: String,
    pub ty: Ty,
    /// The schema argument it was passed as (`input`, `weight`, ...).
    pub arg: String,
}

/// An aten op as a rule sees it.
#[derive(Debug, Clone)]
pub struct AtenOp {
    pub name: String,
    pub operands: Vec<Operand>,
    pub attrs: BTreeMap<String, Attr>,
    pub results: Vec<Ty>,
    /// Whether anything (an op or the return) reads each result.
    pub results_used: Vec<bool>,
    pub location: String,
}

/// The SSA name a rule returns for a result that nothing reads.
pub const UNUSED_RESULT: &str = "%unused_result";

impl AtenOp {
    pub fn input(&self, arg: &str) -> Result<&Operand, String> {
        self.opt_input(arg).ok_or_else(|| format!("{}: missing tensor argument '{arg}'", self.name))
    }

    pub fn opt_input(&self, arg: &str) -> Option<&Operand> {
        self.operands.iter().find(|o| o.arg == arg)
    }

    pub fn result(&self) -> &Ty {
        &self.results[0]
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        match self.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Int(v)) => Ok(*v),
            Some(Attr::Bool(b)) => Ok(*b as i64),
            Some(other) => Err(format!("{}: attribute '{name}' should be an integer, is {other:?}", self.name)),
        }
    }

    pub fn float(&self, name: &str, default: f64) -> Result<f64, String> {
        match self.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Float(v)) => Ok(*v),
            Some(Attr::Int(v)) => Ok(*v as f64),
            Some(other) => Err(format!("{}: attribute '{name}' should be a number, is {other:?}", self.name)),
        }
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Bool(v)) => Ok(*v),
            Some(Attr::Int(v)) => Ok(*v != 0),
            Some(other) => Err(format!("{}: attribute '{name}' should be a bool, is {other:?}", self.name)),
        }
    }

    /// An int list; a single int is repeated `n` times (as torch's `_pair` does).
    pub fn ints(&self, name: &str, n: usize, default: &[i64]) -> Result<Vec<i64>, String> {
        match self.attrs.get(name) {
            None => Ok(default.to_vec()),
            Some(Attr::Ints(v)) if v.len() == 1 => Ok(vec![v[0]; n]),
            Some(Attr::Ints(v)) if v.is_empty() => Ok(default.to_vec()),
            Some(Attr::Ints(v)) => Ok(v.clone()),
            Some(Attr::Int(v)) => Ok(vec![*v; n]),
            Some(other) => Err(format!("{}: attribute '{name}' should be an int list, is {other:?}", self.name)),
        }
    }
}

/// Writes MLIR text with fresh SSA names.
#[derive(Default)]
pub struct Emitter {
    pub text: String,
    counter: usize,
    indent: usize,
}

impl Emitter {
    pub fn fresh(&mut self) -> String {
        self.counter += 1;
        format!("%v{}", self.counter)
    }

    pub fn line(&mut self, line: impl AsRef<str>) {
        for _ in 0..self.indent {
            self.text.push_str("  ");
        }
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// Emits `%x = <rhs>` with a fresh name and returns the name.
    pub fn assign(&mut self, rhs: impl AsRef<str>) -> String {
        let name = self.fresh();
        self.line(format!("{name} = {}", rhs.as_ref()));
        name
    }

    pub fn indented<R>(&mut self, f: impl FnOnce(&mut Emitter) -> R) -> R {
        self.indent += 1;
        let r = f(self);
        self.indent -= 1;
        r
    }
}

/// Lowers an aten module to linalg text. Every op without a rule, and every
/// rule failure, is collected and reported together.
pub fn lower_module(module: &Module) -> Result<String, Vec<String>> {
    let body = module.body();
    let mut functions = Vec::new();
    let mut op = body.first_operation();
    while let Some(o) = op {
        if o.name().as_string_ref().as_str() == Ok("func.func") {
            functions.push(o);
        }
        op = o.next_in_block();
    }
    let [function] = functions.as_slice() else {
        return Err(vec![format!("expected exactly one func.func in the module, found {}", functions.len())]);
    };
    let model = module
        .as_operation()
        .attribute("aotc.model")
        .ok()
        .and_then(|a| parse_attr(&a.to_string()))
        .and_then(|a| if let Attr::Str(s) = a { Some(s) } else { None })
        .unwrap_or_else(|| "model".to_string());
    lower_function(function, &model)
}

fn value_key(v: &Value) -> usize {
    v.to_raw().ptr as usize
}

fn lower_function(function: &OperationRef, model: &str) -> Result<String, Vec<String>> {
    let region = function.region(0).map_err(|e| vec![e.to_string()])?;
    let block = region.first_block().ok_or_else(|| vec!["function has no body".to_string()])?;
    let mut e = Emitter { indent: 2, ..Default::default() };
    let mut names: HashMap<usize, (String, Ty)> = HashMap::new();
    let mut errors = Vec::new();

    // Arguments: memrefs, brought into tensor land without copies.
    let mut params = Vec::new();
    for i in 0..block.argument_count() {
        let arg = block.argument(i).map_err(|err| vec![err.to_string()])?;
        let ty_text = arg.r#type().to_string();
        let ty = Ty::parse(&ty_text).ok_or_else(|| vec![format!("argument {i}: unsupported type {ty_text}")])?;
        let memref = format!("%in{i}");
        params.push(format!("{memref}: {}", ty.memref()));
        let abi = ty.abi_tensor();
        let mut tensor = e.assign(format!("bufferization.to_tensor {memref} restrict : {} to {abi}", ty.memref()));
        if abi.elem != ty.elem {
            tensor = elementwise::convert(&mut e, &tensor, &abi, &ty.elem);
        }
        names.insert(value_key(&arg.into()), (tensor, ty));
    }

    let mut returned = Vec::new();
    let mut op = block.first_operation();
    while let Some(o) = op {
        op = o.next_in_block();
        let name = o.name().as_string_ref().as_str().unwrap_or("?").to_string();
        if name == "func.return" {
            for v in o.operands() {
                returned.push(names.get(&value_key(&v)).cloned());
            }
            continue;
        }
        let location = o.location().to_string();
        let Some(rule) = rule_for(&name) else {
            errors.push(format!("{location}: no lowering rule for '{name}'"));
            continue;
        };
        let aten = match describe(&o, &names) {
            Ok(a) => a,
            Err(err) => {
                errors.push(format!("{location}: {name}: {err}"));
                continue;
            }
        };
        match (rule.lower)(&mut e, &aten) {
            Ok(results) => {
                for (i, r) in results.into_iter().enumerate() {
                    let result = o.result(i).expect("rule returned one name per result");
                    names.insert(value_key(&result.into()), (r, aten.results[i].clone()));
                }
            }
            Err(err) => errors.push(format!("{location}: {err}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Results are written into caller-provided output memrefs.
    for (k, r) in returned.iter().enumerate() {
        let Some((tensor, ty)) = r else {
            return Err(vec![format!("output {k} is not produced by the lowered program")]);
        };
        let out = format!("%out{k}");
        params.push(format!("{out}: {}", ty.memref()));
        let abi = ty.abi_tensor();
        let value = if abi.elem != ty.elem { elementwise::convert(&mut e, tensor, ty, &abi.elem) } else { tensor.clone() };
        e.line(format!(
            "bufferization.materialize_in_destination {value} in restrict writable {out} : ({abi}, {}) -> ()",
            ty.memref()
        ));
    }
    params.push("%arena: memref<?xi8>".to_string());
    e.line("return");

    let mut text = String::new();
    writeln!(text, "module attributes {{aotc.model = \"{model}\"}} {{").unwrap();
    writeln!(
        text,
        "  func.func @{}({}) attributes {{llvm.emit_c_interface}} {{",
        entry_symbol(model),
        params.join(", ")
    )
    .unwrap();
    text += &e.text;
    text += "  }\n}\n";
    Ok(text)
}

/// The symbol of a model's entry function.
pub fn entry_symbol(model: &str) -> String {
    format!("aotc_{model}_forward")
}

fn describe(o: &OperationRef, names: &HashMap<usize, (String, Ty)>) -> Result<AtenOp, String> {
    let mut attrs = BTreeMap::new();
    for (id, attr) in o.attributes() {
        let key = id.as_string_ref().as_str().unwrap_or("?").to_string();
        let text = attr.to_string();
        let value = parse_attr(&text).ok_or_else(|| format!("attribute '{key}' = {text} is not understood"))?;
        attrs.insert(key, value);
    }
    let arg_names = match attrs.remove("operand_names") {
        Some(Attr::Strs(v)) => v,
        Some(Attr::Str(s)) => vec![s],
        _ => Vec::new(),
    };
    let mut operands = Vec::new();
    for (i, v) in o.operands().enumerate() {
        let (ssa, ty) = names.get(&value_key(&v)).cloned().ok_or("operand defined outside the function body")?;
        let arg = arg_names.get(i).cloned().unwrap_or_else(|| format!("operand{i}"));
        operands.push(Operand { ssa, ty, arg });
    }
    let mut results = Vec::new();
    let mut results_used = Vec::new();
    for r in o.results() {
        let text = r.r#type().to_string();
        results.push(Ty::parse(&text).ok_or_else(|| format!("result type {text} is not a static ranked tensor"))?);
        results_used.push(unsafe { !mlir_sys::mlirValueGetFirstUse(r.to_raw()).ptr.is_null() });
    }
    Ok(AtenOp {
        name: o.name().as_string_ref().as_str().unwrap_or("?").to_string(),
        operands,
        attrs,
        results,
        results_used,
        location: o.location().to_string(),
    })
}

/// Parses the printed forms of the attributes the importer writes.
pub fn parse_attr(text: &str) -> Option<Attr> {
    let text = text.trim();
    if text == "true" || text == "false" {
        return Some(Attr::Bool(text == "true"));
    }
    if let Some(s) = text.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Some(Attr::Str(s.to_string()));
    }
    if let Some(body) = text.strip_prefix("array<").and_then(|s| s.strip_suffix('>')) {
        let (elem, values) = body.split_once(':').unwrap_or((body, ""));
        let items: Vec<&str> = values.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        return match elem.trim() {
            "f64" | "f32" => Some(Attr::Floats(items.iter().map(|v| parse_float(v)).collect::<Option<_>>()?)),
            _ => Some(Attr::Ints(
                items
                    .iter()
                    .map(|v| match *v {
                        "true" => Some(1),
                        "false" => Some(0),
                        v => v.parse().ok(),
                    })
                    .collect::<Option<_>>()?,
            )),
        };
    }
    if let Some(body) = text.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let items = body
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_matches('"').to_string())
            .collect();
        return Some(Attr::Strs(items));
    }
    let (value, ty) = text.rsplit_once(':').map(|(v, t)| (v.trim(), t.trim())).unwrap_or((text, "i64"));
    if ty.starts_with('f') {
        return parse_float(value).map(Attr::Float);
    }
    value.parse().ok().map(Attr::Int)
}

fn parse_float(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(f64::from_bits);
    }
    text.parse().ok()
}

/// An f64 in MLIR syntax that round-trips exactly (inf and NaN as hex).
pub fn float_literal(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.16e}")
    } else {
        format!("0x{:016X}", v.to_bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_printed_attributes() {
        assert_eq!(parse_attr("array<i64: 1, 2>"), Some(Attr::Ints(vec![1, 2])));
        assert_eq!(parse_attr("array<i64>"), Some(Attr::Ints(vec![])));
        assert_eq!(parse_attr("3 : i64"), Some(Attr::Int(3)));
        assert_eq!(parse_attr("-1 : i64"), Some(Attr::Int(-1)));
        assert_eq!(parse_attr("2.500000e+00 : f64"), Some(Attr::Float(2.5)));
        assert_eq!(parse_attr("0xFFF0000000000000 : f64"), Some(Attr::Float(f64::NEG_INFINITY)));
        assert_eq!(parse_attr("true"), Some(Attr::Bool(true)));
        assert_eq!(parse_attr("[\"a\", \"b\"]"), Some(Attr::Strs(vec!["a".into(), "b".into()])));
    }

    #[test]
    fn float_literals_round_trip() {
        for v in [1.5, -0.0, 1e-30, f64::INFINITY, f64::NEG_INFINITY] {
            let Some(Attr::Float(back)) = parse_attr(&format!("{} : f64", float_literal(v))) else { panic!() };
            assert_eq!(back.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn names_follow_irdl_rules() {
        assert_eq!(aten_name("aten.conv2d.default"), "aten.conv2d");
        assert_eq!(aten_name("aten.mul.Tensor"), "aten.mul_tensor");
        assert_eq!(aten_name("aten.flatten.using_ints"), "aten.flatten_using_ints");
    }

    #[test]
    fn every_rule_is_registered_once() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|o| o.op != r.op), "{} twice", r.op);
        }
    }
}
