//! Export IR -> aten dialect. Each node becomes one generic-form `aten.*` op
//! whose tensor arguments are operands (their schema names listed in
//! `operand_names`) and whose other arguments are attributes. The node name
//! and its Python source line become the op's location.

use crate::graph;
use crate::program::{Arg, ExportedProgram, InputKind, Node, OutputKind};
use aotc_dialects::lower::{aten_name, float_literal, rule_for};
use anyhow::{bail, Result};
use std::fmt::Write;

/// A C-identifier version of a name (model names become symbol prefixes).
pub fn sanitize(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Why an op without a rule is not supported, when the reason is a
/// category aotc leaves out on purpose.
fn reason_not_supported(target: &str) -> Option<&'static str> {
    let op = target.split('.').nth(1).unwrap_or(target);
    let random = ["rand", "randn", "rand_like", "randn_like", "randint", "randint_like", "bernoulli", "normal", "uniform",
        "multinomial", "randperm", "exponential", "native_dropout", "poisson"];
    let data_dependent = ["nonzero", "masked_select", "unique", "unique_consecutive", "unique_dim", "_unique2",
        "_local_scalar_dense", "item", "argwhere", "nonzero_numpy", "repeat_interleave"];
    if op.contains("backward") {
        Some("backward ops are for training")
    } else if random.contains(&op) {
        Some("random ops give different results on each run")
    } else if op.contains("fft") || op.contains("complex") || op == "view_as_real" {
        Some("complex numbers and FFTs are not supported")
    } else if data_dependent.contains(&op) {
        Some("its output shape depends on the input data")
    } else {
        None
    }
}

/// Every node aotc cannot compile, one line each, with its Python source
/// line: ops without a rule, nodes that cannot be decoded, and nodes whose
/// results have no static type. Shape bookkeeping nodes that only follow a
/// data-dependent node (sym_size, asserts, Python operators) are left out
/// when something else is reported.
pub fn unsupported_nodes(program: &ExportedProgram) -> Vec<String> {
    let mut lines = Vec::new();
    let mut bookkeeping = Vec::new();
    for n in &program.nodes {
        if n.target.starts_with("aten._assert_tensor_metadata") {
            // a check of dtype and shape that static types already guarantee
            continue;
        }
        let source = n.source_line().map(|s| format!(" at {s}")).unwrap_or_default();
        let is_aten = n.target.starts_with("aten.");
        let problem = if !is_aten || n.target.starts_with("aten.sym_") || n.target.starts_with("aten._assert") {
            Some(format!("{}: symbolic shape computations are not supported; export with static shapes", n.target))
        } else if rule_for(&aten_name(&n.target)).is_none() {
            let why = reason_not_supported(&n.target).unwrap_or("no lowering rule");
            Some(format!("unsupported op {} ({why})", n.target))
        } else if let Some(p) = &n.problem {
            Some(format!("unsupported op {}: {p}", n.target))
        } else {
            n.outputs.iter().flatten().find_map(|o| program.bad_tensors.get(o)).map(|why| format!("unsupported op {}: result {why}", n.target))
        };
        let Some(problem) = problem else { continue };
        let line = format!("{problem} (node '{}'){source}", n.name);
        if !is_aten || n.target.starts_with("aten.sym_") || n.target.starts_with("aten._assert") {
            bookkeeping.push(line);
        } else {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        return bookkeeping;
    }
    lines
}

fn ssa(name: &str) -> String {
    format!("%{}", sanitize(name))
}

fn location(node: &Node) -> String {
    let name = node.name.replace('"', "'");
    if let Some(trace) = &node.stack_trace {
        if let Some(line) = crate::program::source_line_of(trace) {
            let mut parts = line.splitn(3, ':');
            if let (Some(file), Some(number)) = (parts.next(), parts.next()) {
                let file = file.replace('\\', "\\\\").replace('"', "'");
                return format!("loc(\"{name}\"(\"{file}\":{number}:0))");
            }
        }
    }
    format!("loc(\"{name}\")")
}

fn attribute(arg: &Arg) -> Option<String> {
    Some(match arg {
        Arg::Int(v) => format!("{v} : i64"),
        Arg::Ints(v) => {
            if v.is_empty() {
                "array<i64>".into()
            } else {
                format!("array<i64: {}>", v.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
            }
        }
        Arg::Float(v) => format!("{} : f64", float_literal(*v)),
        Arg::Floats(v) => {
            let items: Vec<String> = v.iter().map(|f| float_literal(*f)).collect();
            if items.is_empty() {
                "array<f64>".into()
            } else {
                format!("array<f64: {}>", items.join(", "))
            }
        }
        Arg::Bool(b) => b.to_string(),
        Arg::Bools(v) => {
            let items: Vec<String> = v.iter().map(bool::to_string).collect();
            format!("array<i1: {}>", items.join(", "))
        }
        Arg::Str(s) => format!("\"{}\"", s.replace('"', "'")),
        Arg::ScalarType(d) => format!("\"{}\"", d.torch_name()),
        Arg::None | Arg::Ignored(_) | Arg::Tensor(_) | Arg::Tensors(_) | Arg::OptionalTensors(_) => return None,
    })
}

/// Imports the program into the aten dialect (generic form). Fails listing
/// every unsupported node before writing anything.
pub fn import(program: &ExportedProgram) -> Result<String> {
    let unsupported = unsupported_nodes(program);
    if !unsupported.is_empty() {
        bail!("{}", unsupported.join("\n"));
    }
    let nodes = graph::schedule(program)?;
    for o in &program.outputs {
        if let OutputKind::BufferMutation { fqn } = &o.kind {
            let buffer = program.inputs.iter().find(|i| matches!(&i.kind, InputKind::Buffer { fqn: f, .. } if f == fqn));
            match buffer {
                Some(b) if b.ty == o.ty => {}
                Some(b) => bail!("output '{}' updates buffer '{fqn}' ({}) with a {}", o.name, b.ty, o.ty),
                None => bail!("output '{}' updates '{fqn}', which is not a buffer input of the graph", o.name),
            }
        }
    }
    let model = sanitize(&program.name);
    let mut s = String::new();
    writeln!(s, "module attributes {{aotc.model = \"{model}\"}} {{").unwrap();
    let params: Vec<String> = program.inputs.iter().map(|i| format!("{}: {}", ssa(&i.name), i.ty.mlir())).collect();
    let results: Vec<String> = program.outputs.iter().map(|o| o.ty.mlir()).collect();
    writeln!(s, "  func.func @forward({}) -> ({}) {{", params.join(", "), results.join(", ")).unwrap();
    for node in &nodes {
        let mut operands = Vec::new();
        let mut operand_names = Vec::new();
        let mut attrs = Vec::new();
        for (name, arg) in &node.args {
            match arg {
                Arg::Tensor(t) => {
                    operands.push(t.clone());
                    operand_names.push(name.clone());
                }
                Arg::Tensors(ts) => {
                    for t in ts {
                        operands.push(t.clone());
                        operand_names.push(name.clone());
                    }
                }
                Arg::OptionalTensors(ts) => {
                    // present tensors become operands; the positions of the Nones an attribute
                    let mut nones = Vec::new();
                    for (i, t) in ts.iter().enumerate() {
                        match t {
                            Some(t) => {
                                operands.push(t.clone());
                                operand_names.push(name.clone());
                            }
                            None => nones.push(i as i64),
                        }
                    }
                    attrs.push(format!("{name}_none = {}", attribute(&Arg::Ints(nones)).expect("ints are attributes")));
                }
                other => {
                    if let Some(a) = attribute(other) {
                        attrs.push(format!("{name} = {a}"));
                    }
                }
            }
        }
        let names: Vec<String> = operand_names.iter().map(|n| format!("\"{n}\"")).collect();
        attrs.insert(0, format!("operand_names = [{}]", names.join(", ")));
        let operand_types: Vec<String> = operands.iter().map(|t| program.tensor_types[t].mlir()).collect();
        let mut result_names = Vec::new();
        let mut result_types = Vec::new();
        for (i, out) in node.outputs.iter().enumerate() {
            let name = out.clone().unwrap_or_else(|| format!("{}_unused_{i}", node.name));
            let ty = program.tensor_types.get(&name).map(|t| t.mlir());
            let Some(ty) = ty else { bail!("node '{}': result '{name}' has no tensor type", node.name) };
            result_names.push(ssa(&name));
            result_types.push(ty);
        }
        if let Some(rule) = rule_for(&aten_name(&node.target)) {
            let segments = aotc_dialects::segment_attributes(rule, &operand_names, result_names.len())
                .map_err(|e| anyhow::anyhow!("node '{}': {e}", node.name))?;
            attrs.extend(segments);
        }
        let lhs = if result_names.is_empty() { String::new() } else { format!("{} = ", result_names.join(", ")) };
        writeln!(
            s,
            "    {lhs}\"{}\"({}) {{{}}} : ({}) -> ({}) {}",
            aten_name(&node.target),
            operands.iter().map(|o| ssa(o)).collect::<Vec<_>>().join(", "),
            attrs.join(", "),
            operand_types.join(", "),
            result_types.join(", "),
            location(node)
        )
        .unwrap();
    }
    let outs: Vec<String> = program.outputs.iter().map(|o| ssa(&o.name)).collect();
    writeln!(s, "    return {} : {}", outs.join(", "), results.join(", ")).unwrap();
    s += "  }\n}\n";
    Ok(s)
}
