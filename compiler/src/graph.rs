//! The program's dataflow graph (petgraph): node order, dead-code removal and
//! the last use of every tensor.

use crate::program::{Arg, ExportedProgram, GraphOutput, InputKind, Node, OutputKind};
use anyhow::{bail, Result};
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};
use std::collections::HashMap;

/// Tensor names a node reads.
pub fn tensor_operands(node: &Node) -> Vec<&str> {
    let mut names = Vec::new();
    for (_, arg) in &node.args {
        match arg {
            Arg::Tensor(t) => names.push(t.as_str()),
            Arg::Tensors(ts) => names.extend(ts.iter().map(String::as_str)),
            Arg::OptionalTensors(ts) => names.extend(ts.iter().flatten().map(String::as_str)),
            _ => {}
        }
    }
    names
}

/// Orders the nodes so that producers come before consumers and drops nodes
/// whose results reach no output. Errors name a tensor nobody produces.
pub fn schedule(program: &ExportedProgram) -> Result<Vec<Node>> {
    let mut graph = DiGraph::<usize, ()>::new();
    let indices: Vec<NodeIndex> = (0..program.nodes.len()).map(|i| graph.add_node(i)).collect();
    let mut producer: HashMap<&str, NodeIndex> = HashMap::new();
    for (i, node) in program.nodes.iter().enumerate() {
        for out in node.outputs.iter().flatten() {
            producer.insert(out.as_str(), indices[i]);
        }
    }
    let graph_inputs: std::collections::HashSet<&str> = program.inputs.iter().map(|i| i.name.as_str()).collect();
    for (i, node) in program.nodes.iter().enumerate() {
        for operand in tensor_operands(node) {
            match producer.get(operand) {
                Some(&p) => {
                    graph.add_edge(p, indices[i], ());
                }
                None if graph_inputs.contains(operand) => {}
                None => bail!("node '{}' reads tensor '{operand}', which no node or input produces", node.name),
            }
        }
    }
    if let Err(cycle) = toposort(&graph, None) {
        bail!("the graph has a cycle through node '{}'", program.nodes[graph[cycle.node_id()]].name);
    }
    // Live nodes: everything an output depends on.
    let reversed = Reversed(&graph);
    let mut live = vec![false; program.nodes.len()];
    for output in &program.outputs {
        if let Some(&p) = producer.get(output.name.as_str()) {
            let mut dfs = Dfs::new(reversed, p);
            while let Some(n) = dfs.next(reversed) {
                live[graph[n]] = true;
            }
        }
    }
    // torch.export lists nodes in a valid order already; keep it (and with it
    // the order of the user's source) once the graph is known to be acyclic
    // and every operand is produced before use.
    let mut defined = graph_inputs.clone();
    let mut order = Vec::new();
    for (i, node) in program.nodes.iter().enumerate() {
        if let Some(operand) = tensor_operands(node).into_iter().find(|o| !defined.contains(o)) {
            bail!("node '{}' reads tensor '{operand}' before it is produced", node.name);
        }
        defined.extend(node.outputs.iter().flatten().map(String::as_str));
        if live[i] {
            order.push(node.clone());
        }
    }
    Ok(order)
}

/// Whether a node's op writes into its `self` argument (`aten.add_.Tensor`).
fn is_in_place(target: &str) -> bool {
    let op = target.split('.').nth(1).unwrap_or("");
    op.ends_with('_') && !op.starts_with("__")
}

const FUNCTIONAL_BATCH_NORM: &str = "aten._native_batch_norm_legit_functional.default";

/// `batch_norm` in training mode and `_native_batch_norm_legit` update their
/// running statistics in place (the default export keeps them so). Both
/// become `_native_batch_norm_legit_functional`, whose last two results are
/// the new statistics; `functionalize` then treats those as the buffers'
/// new values.
fn functional_batch_norms(program: &mut ExportedProgram) {
    for node in &mut program.nodes {
        let training = node.args.iter().any(|(n, a)| n == "training" && *a == Arg::Bool(true));
        let stats: Vec<String> = node
            .args
            .iter()
            .filter(|(n, _)| n == "running_mean" || n == "running_var")
            .filter_map(|(_, a)| if let Arg::Tensor(t) = a { Some(t.clone()) } else { None })
            .collect();
        let rewrites = matches!(node.target.as_str(), "aten.batch_norm.default" | "aten._native_batch_norm_legit.default");
        if !rewrites || !training || stats.len() != 2 {
            continue;
        }
        let Some(Some(out)) = node.outputs.first().cloned() else { continue };
        let Some(input_ty) = program.tensor_types.get(&out).cloned() else { continue };
        let channels = input_ty.shape.get(1).copied().unwrap_or(1);
        let mut outputs = vec![Some(out)];
        for (k, suffix) in ["save_mean", "save_invstd", "running_mean", "running_var"].iter().enumerate() {
            let name = format!("{}_{suffix}", node.name);
            let ty = if k < 2 {
                crate::program::TensorType { dtype: crate::program::DType::F32, shape: vec![channels] }
            } else {
                program.tensor_types.get(&stats[k - 2]).cloned().unwrap_or_else(|| input_ty.clone())
            };
            program.tensor_types.insert(name.clone(), ty);
            outputs.push(Some(name));
        }
        node.args.retain(|(n, _)| n != "cudnn_enabled");
        node.target = FUNCTIONAL_BATCH_NORM.to_string();
        node.outputs = outputs;
    }
}

/// The default export keeps in-place ops (`add_`, `copy_`, ...) on buffers
/// instead of `BUFFER_MUTATION` outputs. Rewrites them into values: later
/// reads of a mutated tensor read the op's result, and the last value of
/// every mutated buffer becomes a `BufferMutation` output, so it persists
/// in the model handle like the core form's mutations do.
pub fn functionalize(program: &mut ExportedProgram) {
    functional_batch_norms(program);
    // the tensor that holds each mutated tensor's current value
    let mut current: HashMap<String, String> = HashMap::new();
    for node in &mut program.nodes {
        for (_, arg) in &mut node.args {
            let names: Vec<&mut String> = match arg {
                Arg::Tensor(t) => vec![t],
                Arg::Tensors(ts) => ts.iter_mut().collect(),
                Arg::OptionalTensors(ts) => ts.iter_mut().flatten().collect(),
                _ => vec![],
            };
            for t in names {
                if let Some(c) = current.get(t.as_str()) {
                    *t = c.clone();
                }
            }
        }
        // (argument written, result holding its new value)
        let writes: Vec<(&str, usize)> = if node.target == FUNCTIONAL_BATCH_NORM {
            vec![("running_mean", 3), ("running_var", 4)]
        } else if is_in_place(&node.target) {
            vec![("self", 0)]
        } else {
            vec![]
        };
        for (arg, k) in writes {
            let written = node.args.iter().find(|(n, _)| n == arg).and_then(|(_, a)| match a {
                Arg::Tensor(t) => Some(t.clone()),
                _ => None,
            });
            if let (Some(written), Some(Some(result))) = (written, node.outputs.get(k)) {
                // keyed by the original name, not by an earlier rewrite of it
                let original = current.iter().find(|(_, v)| **v == written).map(|(k, _)| k.clone()).unwrap_or(written);
                current.insert(original, result.clone());
            }
        }
    }
    let already: Vec<String> = program
        .outputs
        .iter()
        .filter_map(|o| match &o.kind {
            OutputKind::BufferMutation { fqn } => Some(fqn.clone()),
            OutputKind::User => None,
        })
        .collect();
    for input in &program.inputs {
        let InputKind::Buffer { fqn, .. } = &input.kind else { continue };
        let Some(value) = current.get(&input.name) else { continue };
        if already.contains(fqn) {
            continue;
        }
        let ty = program.tensor_types.get(value).cloned().unwrap_or_else(|| input.ty.clone());
        program.outputs.push(GraphOutput { name: value.clone(), kind: OutputKind::BufferMutation { fqn: fqn.clone() }, ty });
    }
    // user outputs that named a mutated tensor read its final value
    for output in &mut program.outputs {
        if output.kind == OutputKind::User {
            if let Some(c) = current.get(&output.name) {
                output.name = c.clone();
            }
        }
    }
}
