//! The program's dataflow graph (petgraph): node order, dead-code removal and
//! the last use of every tensor.

use crate::program::{Arg, ExportedProgram, Node};
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

/// The tensor names a node reads, to rename them in place.
pub fn tensor_operands_mut(node: &mut Node) -> Vec<&mut String> {
    let mut names = Vec::new();
    for (_, arg) in &mut node.args {
        match arg {
            Arg::Tensor(t) => names.push(t),
            Arg::Tensors(ts) => names.extend(ts.iter_mut()),
            Arg::OptionalTensors(ts) => names.extend(ts.iter_mut().flatten()),
            _ => {}
        }
    }
    names
}

/// The index of the node whose first result is the tensor `name`.
pub fn producer(program: &ExportedProgram, name: &str) -> Option<usize> {
    program.nodes.iter().position(|n| n.outputs.first().is_some_and(|o| o.as_deref() == Some(name)))
}

/// The node producing `name`, if it has one of `targets` and `name` is
/// its only result read, once (not by the program's outputs).
pub fn single_use_producer<'a>(program: &'a ExportedProgram, name: &str, targets: &[&str]) -> Option<&'a Node> {
    let node = &program.nodes[producer(program, name)?];
    (targets.contains(&node.target.as_str()) && uses(program, name) == 1).then_some(node)
}

/// How many times the program's nodes and outputs read the tensor `name`.
pub fn uses(program: &ExportedProgram, name: &str) -> usize {
    let by_nodes: usize = program.nodes.iter().map(|n| tensor_operands(n).iter().filter(|&&o| o == name).count()).sum();
    by_nodes + program.outputs.iter().filter(|o| o.name == name).count()
}

/// Whether nothing reads the results of `node` past its first (a max
/// pool's indices, a batch norm's saved statistics).
pub fn only_first_result_read(program: &ExportedProgram, node: &Node) -> bool {
    node.outputs.iter().skip(1).flatten().all(|r| uses(program, r) == 0)
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

/// torch's alias ops (`torch.divide` is `torch.div`, `clip` is `clamp`),
/// which the default export keeps under their own names.
const ALIASES: &[(&str, &str)] = &[
    ("absolute", "abs"),
    ("negative", "neg"),
    ("divide", "div"),
    ("true_divide", "div"),
    ("multiply", "mul"),
    ("subtract", "sub"),
    ("greater", "gt"),
    ("greater_equal", "ge"),
    ("less", "lt"),
    ("less_equal", "le"),
    ("not_equal", "ne"),
    ("clip", "clamp"),
    ("fix", "trunc"),
    ("arccos", "acos"),
    ("arcsin", "asin"),
    ("arctan", "atan"),
    ("arctan2", "atan2"),
    ("arccosh", "acosh"),
    ("arcsinh", "asinh"),
    ("arctanh", "atanh"),
    ("concat", "cat"),
    ("concatenate", "cat"),
    ("swapaxes", "transpose"),
    ("swapdims", "transpose"),
    ("moveaxis", "movedim"),
    ("special_expit", "sigmoid"),
    ("special_erf", "erf"),
];

/// Renames alias ops (and their in-place forms) to the op they stand for,
/// in the graph and its subgraphs: `aten.divide.Tensor` -> `aten.div.Tensor`.
pub fn canonical_targets(nodes: &mut [Node]) {
    for node in nodes {
        let mut parts: Vec<String> = node.target.split('.').map(str::to_string).collect();
        if parts.len() >= 2 && parts[0] == "aten" {
            let (base, in_place) = match parts[1].strip_suffix('_') {
                Some(b) if !parts[1].starts_with("__") => (b.to_string(), "_"),
                _ => (parts[1].clone(), ""),
            };
            if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == base) {
                parts[1] = format!("{to}{in_place}");
                node.target = parts.join(".");
            }
        }
        for (_, arg) in &mut node.args {
            if let Arg::Graph(g) = arg {
                canonical_targets(&mut g.nodes);
            }
        }
    }
}

/// Drops the empty pieces of every `cat` of the top-level graph (of the
/// result's dtype: a piece of another dtype still takes part in the type
/// promotion), and makes the readers of a `cat` left with one piece of the
/// result's type read that piece: a KV cache starting empty (Hugging Face's
/// `DynamicCache` concatenates its `[0]` tensor and the new keys) is then
/// the keys themselves, with no copy, and an attention can read them in
/// place (`attention_pattern::heads_in_place`). Returns how many changed.
pub fn drop_empty_cat_pieces(program: &mut ExportedProgram) -> usize {
    let mut changed = 0;
    let mut forwarded = Vec::new();
    for i in 0..program.nodes.len() {
        let node = &program.nodes[i];
        let (Some(Arg::Tensors(pieces)), Some(Some(out))) = (node.arg("tensors"), node.outputs.first()) else { continue };
        if node.target != "aten.cat.default" {
            continue;
        }
        let Some(out_ty) = program.tensor_type(out).cloned() else { continue };
        let empty = |p: &String| program.tensor_type(p).is_some_and(|t| t.numel() == 0 && t.dtype == out_ty.dtype);
        let kept: Vec<String> = pieces.iter().filter(|p| !empty(p)).cloned().collect();
        if kept.is_empty() || kept.len() == pieces.len() {
            continue;
        }
        let out = out.clone();
        let forward = kept.len() == 1
            && program.tensor_type(&kept[0]) == Some(&out_ty)
            && !program.outputs.iter().any(|o| o.name == out);
        changed += 1;
        if forward {
            for name in program.nodes.iter_mut().flat_map(tensor_operands_mut) {
                if *name == out {
                    *name = kept[0].clone();
                }
            }
            forwarded.push(i);
            continue;
        }
        let node = &mut program.nodes[i];
        let arg = node.args.iter_mut().find(|(n, _)| n == "tensors").expect("a cat has its pieces");
        arg.1 = Arg::Tensors(kept);
    }
    // (nothing reads them now; their pieces would count them as readers)
    for i in forwarded.into_iter().rev() {
        program.nodes.remove(i);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{DType, GraphInput, GraphOutput, InputKind, OutputKind, TensorType};

    /// e [0] and x [2, 3] (f32, and i [0] of i64) concatenated into c,
    /// which `relu` reads (its result y is the output); `pieces` names
    /// the cat's inputs.
    fn cat_program(pieces: &[&str]) -> ExportedProgram {
        let ty = |dtype, shape: Vec<i64>| TensorType { dtype, shape };
        let input = |name: &str, t: TensorType| GraphInput { name: name.into(), kind: InputKind::User, ty: t };
        let node = |name: &str, target: &str, args: Vec<(&str, Arg)>| Node::for_test(name, target, args, name);
        let tensors = Arg::Tensors(pieces.iter().map(|p| p.to_string()).collect());
        ExportedProgram::for_test(
            vec![input("e", ty(DType::F32, vec![0])), input("x", ty(DType::F32, vec![2, 3])), input("i", ty(DType::I64, vec![0]))],
            vec![GraphOutput { name: "y".into(), kind: OutputKind::User, ty: ty(DType::F32, vec![2, 3]) }],
            vec![
                node("c", "aten.cat.default", vec![("tensors", tensors), ("dim", Arg::Int(-2))]),
                node("y", "aten.relu.default", vec![("self", Arg::Tensor("c".into()))]),
            ],
            [("c".to_string(), ty(DType::F32, vec![2, 3])), ("y".to_string(), ty(DType::F32, vec![2, 3]))].into(),
        )
    }

    #[test]
    fn a_cat_left_with_one_piece_is_that_piece() {
        let mut p = cat_program(&["e", "x", "e"]);
        assert_eq!(drop_empty_cat_pieces(&mut p), 1);
        assert_eq!(p.nodes.len(), 1);
        assert_eq!(p.nodes[0].arg("self"), Some(&Arg::Tensor("x".into())));
    }

    #[test]
    fn empty_pieces_of_another_dtype_stay_for_the_promotion() {
        let mut p = cat_program(&["i", "x"]);
        assert_eq!(drop_empty_cat_pieces(&mut p), 0);
        assert_eq!(p.nodes[0].arg("tensors"), Some(&Arg::Tensors(vec!["i".into(), "x".into()])));
    }

    #[test]
    fn a_cat_the_program_returns_keeps_its_node() {
        let mut p = cat_program(&["e", "x"]);
        p.outputs[0].name = "c".into();
        assert_eq!(drop_empty_cat_pieces(&mut p), 1);
        assert_eq!(p.nodes[0].arg("tensors"), Some(&Arg::Tensors(vec!["x".into()])));
        assert_eq!(p.nodes[1].arg("self"), Some(&Arg::Tensor("c".into())));
    }
}
