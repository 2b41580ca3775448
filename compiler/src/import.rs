//! Export IR -> aten dialect. Each node becomes one generic-form `aten.*` op
//! whose tensor arguments are operands (their schema names listed in
//! `operand_names`) and whose other arguments are attributes. The node name
//! and its Python source line become the op's location.

use crate::graph;
use crate::program::{Arg, ExportedProgram, InputKind, Node, OutputKind, Subgraph, TensorType};
use aotc_dialects::lower::{aten_name, float_literal, rule_for};
use crate::text::{mlir_string, sanitize, shown, shown_max};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

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
    check_nodes(&program.nodes, program, &mut lines, &mut bookkeeping);
    if lines.is_empty() {
        return bookkeeping;
    }
    lines
}

/// The higher-order ops aotc compiles (their subgraphs are checked too).
const HIGHER_ORDER: &[&str] = &["higher_order.cond", "higher_order.while_loop"];

fn check_nodes(nodes: &[Node], program: &ExportedProgram, lines: &mut Vec<String>, bookkeeping: &mut Vec<String>) {
    for n in nodes {
        if n.target.starts_with("aten._assert_tensor_metadata") {
            // a check of dtype and shape that static types already guarantee
            continue;
        }
        let source = n.source_line().map(|s| format!(" at {}", shown(&s))).unwrap_or_default();
        let is_aten = n.target.starts_with("aten.");
        let higher_order = HIGHER_ORDER.contains(&n.target.as_str());
        let target = shown(&n.target);
        let problem = if higher_order {
            for arg in &n.args {
                if let (_, Arg::Graph(g)) = arg {
                    check_nodes(&g.nodes, program, lines, bookkeeping);
                }
            }
            n.problem.as_ref().map(|p| format!("unsupported op {target}: {}", shown_max(p, 300)))
        } else if n.target.starts_with("higher_order.") {
            Some(format!("unsupported op {target} (aotc compiles the higher-order ops cond, while_loop and map)"))
        } else if !is_aten || n.target.starts_with("aten.sym_") || n.target.starts_with("aten._assert") {
            Some(format!("{target}: symbolic shape computations are not supported; export with static shapes"))
        } else if rule_for(&aten_name(&n.target)).is_none() {
            let why = reason_not_supported(&n.target).unwrap_or("no lowering rule");
            Some(format!("unsupported op {target} ({why})"))
        } else if let Some(p) = &n.problem {
            Some(format!("unsupported op {target}: {}", shown_max(p, 300)))
        } else {
            n.outputs
                .iter()
                .flatten()
                .find_map(|o| program.bad_tensors.get(o))
                .map(|why| format!("unsupported op {target}: result {}", shown_max(why, 300)))
        };
        let Some(problem) = problem else { continue };
        let line = format!("{problem} (node '{}'){source}", shown(&n.name));
        if !is_aten && !n.target.starts_with("higher_order.") || n.target.starts_with("aten.sym_") || n.target.starts_with("aten._assert") {
            bookkeeping.push(line);
        } else {
            lines.push(line);
        }
    }
}

/// The tensors a graph (or subgraph) can name: their SSA values and types.
/// SSA names are numbered in the order tensors are defined, so no archive
/// name reaches the MLIR text as a value name and distinct names never
/// collide; a subgraph has its own scope, whose inputs are bound to the
/// values the higher-order op passes.
struct Scope<'p> {
    types: &'p BTreeMap<String, TensorType>,
    values: HashMap<&'p str, String>,
}

impl<'p> Scope<'p> {
    fn new(types: &'p BTreeMap<String, TensorType>) -> Self {
        Scope { types, values: HashMap::new() }
    }

    fn type_of(&self, name: &str, node: &Node) -> Result<&'p TensorType> {
        self.types.get(name).ok_or_else(|| anyhow::anyhow!("node '{}': tensor '{}' has no type", shown(&node.name), shown(name)))
    }

    /// The SSA name and MLIR type of a tensor read by `node`.
    fn operand(&self, name: &str, node: &Node) -> Result<(String, String)> {
        let (Some(v), Some(ty)) = (self.values.get(name), self.types.get(name)) else {
            bail!("node '{}' reads tensor '{}', which has no type or producer", shown(&node.name), shown(name));
        };
        Ok((v.clone(), ty.mlir()))
    }
}

/// Writes the imported function's body.
struct Writer {
    text: String,
    next: usize,
    indent: usize,
}

impl Writer {
    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%t{}", self.next - 1)
    }

    /// Defines tensor `name` in `scope` as a fresh SSA value.
    fn define<'p>(&mut self, scope: &mut Scope<'p>, name: &'p str) -> Result<String> {
        let v = self.fresh();
        if scope.values.insert(name, v.clone()).is_some() {
            bail!("tensor '{}' is defined twice in the graph", shown(name));
        }
        Ok(v)
    }

    fn line(&mut self, line: impl AsRef<str>) {
        for _ in 0..self.indent {
            self.text.push_str("  ");
        }
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    fn node<'p>(&mut self, scope: &mut Scope<'p>, node: &'p Node) -> Result<()> {
        match node.target.as_str() {
            "higher_order.cond" => self.cond(scope, node),
            "higher_order.while_loop" => self.while_loop(scope, node),
            _ => self.aten_op(scope, node),
        }
    }

    /// The results of `node` (names and MLIR types), defined in `scope`.
    fn results<'p>(&mut self, scope: &mut Scope<'p>, node: &'p Node) -> Result<(Vec<String>, Vec<String>)> {
        let mut names = Vec::new();
        let mut types = Vec::new();
        for (i, out) in node.outputs.iter().enumerate() {
            let Some(name) = out else {
                bail!("node '{}': result {i} has no tensor type", shown(&node.name));
            };
            types.push(scope.type_of(name, node)?.mlir());
            names.push(self.define(scope, name)?);
        }
        Ok((names, types))
    }

    fn aten_op<'p>(&mut self, scope: &mut Scope<'p>, node: &'p Node) -> Result<()> {
        let mut operands = Vec::new();
        let mut operand_names = Vec::new();
        let mut attrs = Vec::new();
        for (name, arg) in &node.args {
            check_argument_name(name, node)?;
            match arg {
                Arg::Tensor(t) => {
                    operands.push(scope.operand(t, node)?);
                    operand_names.push(name.clone());
                }
                Arg::Tensors(ts) => {
                    for t in ts {
                        operands.push(scope.operand(t, node)?);
                        operand_names.push(name.clone());
                    }
                }
                Arg::OptionalTensors(ts) => {
                    // present tensors become operands; the positions of the Nones an attribute
                    let mut nones = Vec::new();
                    for (i, t) in ts.iter().enumerate() {
                        match t {
                            Some(t) => {
                                operands.push(scope.operand(t, node)?);
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
        let names: Vec<String> = operand_names.iter().map(|n| mlir_string(n)).collect();
        attrs.insert(0, format!("operand_names = [{}]", names.join(", ")));
        let (result_names, result_types) = self.results(scope, node)?;
        let Some(rule) = rule_for(&aten_name(&node.target)) else {
            bail!("node '{}': no lowering rule for {}", shown(&node.name), shown(&node.target));
        };
        let segments = aotc_dialects::segment_attributes(rule, &operand_names, result_names.len())
            .map_err(|e| anyhow::anyhow!("node '{}': {e}", shown(&node.name)))?;
        attrs.extend(segments);
        let lhs = if result_names.is_empty() { String::new() } else { format!("{} = ", result_names.join(", ")) };
        self.line(format!(
            "{lhs}\"{}\"({}) {{{}}} : ({}) -> ({}) {}",
            rule.op,
            operands.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>().join(", "),
            attrs.join(", "),
            operands.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(", "),
            result_types.join(", "),
            location(node)
        ));
        Ok(())
    }

    /// A subgraph's nodes with its inputs bound to `inputs`; returns the
    /// SSA values of its outputs, checked against `types`.
    fn subgraph(&mut self, graph: &Subgraph, inputs: &[String], types: &[String], node: &Node) -> Result<Vec<String>> {
        if graph.inputs.len() != inputs.len() || graph.outputs.len() != types.len() {
            bail!(
                "node '{}': subgraph '{}' takes {} inputs and gives {} outputs, but is passed {} and must give {}",
                shown(&node.name),
                shown(&graph.name),
                graph.inputs.len(),
                graph.outputs.len(),
                inputs.len(),
                types.len()
            );
        }
        let mut scope = Scope::new(&graph.tensor_types);
        for (name, value) in graph.inputs.iter().zip(inputs) {
            scope.values.insert(name, value.clone());
        }
        for inner in &graph.nodes {
            self.node(&mut scope, inner)?;
        }
        graph
            .outputs
            .iter()
            .zip(types)
            .map(|(o, want)| {
                let (v, ty) = scope.operand(o, node)?;
                if &ty != want {
                    bail!("node '{}': subgraph '{}' gives {ty} where {want} is expected", shown(&node.name), shown(&graph.name));
                }
                Ok(v)
            })
            .collect()
    }

    /// The boolean in a 0-d bool tensor, as an `i1` value.
    fn predicate(&mut self, scope: &Scope, name: &str, node: &Node) -> Result<String> {
        let (pred, ty) = scope.operand(name, node)?;
        if ty != "tensor<i1>" {
            bail!("node '{}': the predicate is a {ty}; aotc needs a 0-d bool tensor (a data-dependent condition)", shown(&node.name));
        }
        let c = self.fresh();
        self.line(format!("{c} = tensor.extract {pred}[] : tensor<i1>"));
        Ok(c)
    }

    /// `cond(pred, true_graph, false_graph, operands)`: both branches are
    /// compiled into an `scf.if`; the predicate chooses one at run time.
    fn cond<'p>(&mut self, scope: &mut Scope<'p>, node: &'p Node) -> Result<()> {
        let (pred, branches, operands) = match node.args.as_slice() {
            [(_, Arg::Tensor(p)), (_, Arg::Graph(t)), (_, Arg::Graph(f)), (_, Arg::Tensors(ops))] => (p, [t, f], ops),
            _ => bail!("node '{}': cond takes (pred, true_fn, false_fn, operands)", shown(&node.name)),
        };
        let c = self.predicate(scope, pred, node)?;
        let inputs = operands.iter().map(|o| scope.operand(o, node).map(|(v, _)| v)).collect::<Result<Vec<_>>>()?;
        let (names, types) = self.results(scope, node)?;
        let types_text = types.join(", ");
        let lhs = if names.is_empty() { String::new() } else { format!("{} = ", names.join(", ")) };
        self.line(format!("{lhs}scf.if {c} -> ({types_text}) {{"));
        for (k, branch) in branches.iter().enumerate() {
            if k == 1 {
                self.line("} else {");
            }
            self.indent += 1;
            let outs = self.subgraph(branch, &inputs, &types, node)?;
            self.line(format!("scf.yield {} : {types_text}", outs.join(", ")));
            self.indent -= 1;
        }
        self.line(format!("}} {}", location(node)));
        Ok(())
    }

    /// `while_loop(cond_graph, body_graph, carried, additional)`: an
    /// `scf.while` whose values are the carried tensors.
    fn while_loop<'p>(&mut self, scope: &mut Scope<'p>, node: &'p Node) -> Result<()> {
        let (cond, body, carried, additional) = match node.args.as_slice() {
            [(_, Arg::Graph(c)), (_, Arg::Graph(b)), (_, Arg::Tensors(carried)), (_, Arg::Tensors(extra))] => (c, b, carried, extra),
            _ => bail!("node '{}': while_loop takes (cond_fn, body_fn, carried_inputs, additional_inputs)", shown(&node.name)),
        };
        let inits = carried.iter().map(|o| scope.operand(o, node).map(|(v, _)| v)).collect::<Result<Vec<_>>>()?;
        let extra = additional.iter().map(|o| scope.operand(o, node).map(|(v, _)| v)).collect::<Result<Vec<_>>>()?;
        let (names, types) = self.results(scope, node)?;
        if names.len() != inits.len() {
            bail!("node '{}': while_loop carries {} tensors but gives {}", shown(&node.name), inits.len(), names.len());
        }
        let types_text = types.join(", ");
        let before: Vec<String> = inits.iter().map(|_| self.fresh()).collect();
        let header: Vec<String> = before.iter().zip(&inits).map(|(b, i)| format!("{b} = {i}")).collect();
        self.line(format!("{} = scf.while ({}) : ({types_text}) -> ({types_text}) {{", names.join(", "), header.join(", ")));
        self.indent += 1;
        let mut cond_inputs = before.clone();
        cond_inputs.extend(extra.iter().cloned());
        let flag = self.subgraph(cond, &cond_inputs, &["tensor<i1>".to_string()], node)?;
        let c = self.fresh();
        self.line(format!("{c} = tensor.extract {}[] : tensor<i1>", flag[0]));
        self.line(format!("scf.condition({c}) {} : {types_text}", before.join(", ")));
        self.indent -= 1;
        self.line("} do {");
        let after: Vec<String> = inits.iter().map(|_| self.fresh()).collect();
        let args: Vec<String> = after.iter().zip(&types).map(|(a, t)| format!("{a}: {t}")).collect();
        self.line(format!("^bb0({}):", args.join(", ")));
        self.indent += 1;
        let mut body_inputs = after.clone();
        body_inputs.extend(extra.iter().cloned());
        let outs = self.subgraph(body, &body_inputs, &types, node)?;
        self.line(format!("scf.yield {} : {types_text}", outs.join(", ")));
        self.indent -= 1;
        self.line(format!("}} {}", location(node)));
        Ok(())
    }
}

/// The node's location: its name and, when its stack trace has one, the
/// Python file and line, as escaped MLIR string literals.
fn location(node: &Node) -> String {
    let name = mlir_string(&node.name);
    if let Some(line) = node.source_line() {
        let mut parts = line.splitn(3, ':');
        if let (Some(file), Some(number)) = (parts.next(), parts.next().and_then(|n| n.parse::<u32>().ok())) {
            return format!("loc({name}({}:{number}:0))", mlir_string(file));
        }
    }
    format!("loc({name})")
}

/// Argument names become attribute names: only plain identifiers (torch's
/// schema names are) may do so.
fn check_argument_name(name: &str, node: &Node) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        bail!("node '{}': argument name '{}' is not an identifier", shown(&node.name), shown(name));
    }
    Ok(())
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
        Arg::Str(s) => mlir_string(s),
        Arg::ScalarType(d) => format!("\"{}\"", d.torch_name()),
        Arg::None | Arg::Ignored(_) | Arg::Tensor(_) | Arg::Tensors(_) | Arg::OptionalTensors(_) | Arg::Graph(_) => return None,
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
                Some(b) => bail!("output '{}' updates buffer '{}' ({}) with a {}", shown(&o.name), shown(fqn), b.ty, o.ty),
                None => bail!("output '{}' updates '{}', which is not a buffer input of the graph", shown(&o.name), shown(fqn)),
            }
        }
    }
    let model = sanitize(&program.name);
    let mut scope = Scope::new(&program.tensor_types);
    let mut w = Writer { text: String::new(), next: 0, indent: 2 };
    let params: Vec<String> =
        program.inputs.iter().map(|i| Ok(format!("{}: {}", w.define(&mut scope, &i.name)?, i.ty.mlir()))).collect::<Result<_>>()?;
    let results: Vec<String> = program.outputs.iter().map(|o| o.ty.mlir()).collect();
    for node in &nodes {
        w.node(&mut scope, node)?;
    }
    let outs: Vec<String> = program
        .outputs
        .iter()
        .map(|o| scope.values.get(o.name.as_str()).cloned())
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow::anyhow!("an output of the graph is not produced by any node or input"))?;
    let mut s = String::new();
    writeln!(s, "module attributes {{aotc.model = \"{model}\"}} {{").unwrap();
    writeln!(s, "  func.func @forward({}) -> ({}) {{", params.join(", "), results.join(", ")).unwrap();
    s += &w.text;
    writeln!(s, "    return {} : {}", outs.join(", "), results.join(", ")).unwrap();
    s += "  }\n}\n";
    Ok(s)
}
