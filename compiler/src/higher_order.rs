//! `map_impl(body, xs, args)` applies `body` to each slice of `xs` along
//! its first dim (a static size): it is unrolled here into that many
//! copies of the body, each reading `select(xs, 0, i)`, with the results
//! stacked. (`cond` and `while_loop` are imported as `scf.if` and
//! `scf.while`, see `import.rs`.)

use crate::program::{Arg, ExportedProgram, Node, Subgraph, TensorType};
use crate::text::shown;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};

/// The longest map aotc unrolls.
const MAX_MAP_LENGTH: i64 = 4096;

/// Unrolls every `map_impl` node of the program (and of subgraphs).
pub fn unroll_maps(program: &mut ExportedProgram) -> Result<()> {
    let nodes = std::mem::take(&mut program.nodes);
    program.nodes = unroll(nodes, &mut program.tensor_types)?;
    Ok(())
}

fn unroll(nodes: Vec<Node>, types: &mut BTreeMap<String, TensorType>) -> Result<Vec<Node>> {
    let mut out = Vec::with_capacity(nodes.len());
    for mut node in nodes {
        for (_, arg) in &mut node.args {
            if let Arg::Graph(g) = arg {
                let inner = std::mem::take(&mut g.nodes);
                g.nodes = unroll(inner, &mut g.tensor_types)?;
            }
        }
        if node.target != "higher_order.map_impl" {
            out.push(node);
            continue;
        }
        let (body, xs, extra) = match node.args.as_slice() {
            [(_, Arg::Graph(b)), (_, Arg::Tensors(xs)), (_, Arg::Tensors(extra))] => ((**b).clone(), xs.clone(), extra.clone()),
            _ => bail!("node '{}': map_impl takes (body, xs, args)", shown(&node.name)),
        };
        let Some(first) = xs.first().and_then(|x| types.get(x)) else { bail!("node '{}': map_impl over no tensors", shown(&node.name)) };
        let n = first.shape.first().copied().unwrap_or(0);
        if !(1..=MAX_MAP_LENGTH).contains(&n) || xs.iter().any(|x| types.get(x).and_then(|t| t.shape.first()) != Some(&n)) {
            bail!("node '{}': map over a leading dim of {n} (aotc unrolls maps of 1 to {MAX_MAP_LENGTH} steps over equal leading dims)", shown(&node.name));
        }
        let mut per_output: Vec<Vec<String>> = vec![Vec::new(); body.outputs.len()];
        for i in 0..n {
            let prefix = format!("{}__map{i}__", node.name);
            let mut inputs = Vec::new();
            for x in &xs {
                let ty = types[x].clone();
                let slice = format!("{prefix}{x}");
                types.insert(slice.clone(), TensorType { dtype: ty.dtype, shape: ty.shape[1..].to_vec() });
                out.push(Node {
                    name: slice.clone(),
                    target: "aten.select.int".into(),
                    args: vec![("self".into(), Arg::Tensor(x.clone())), ("dim".into(), Arg::Int(0)), ("index".into(), Arg::Int(i))],
                    outputs: vec![Some(slice.clone())],
                    stack_trace: node.stack_trace.clone(),
                    problem: None,
                });
                inputs.push(slice);
            }
            inputs.extend(extra.iter().cloned());
            let results = inline(&body, &inputs, &prefix, types, &mut out)?;
            for (k, r) in results.into_iter().enumerate() {
                per_output[k].push(r);
            }
        }
        if per_output.len() != node.outputs.len() {
            bail!("node '{}': map body gives {} outputs for {} results", shown(&node.name), per_output.len(), node.outputs.len());
        }
        for (pieces, result) in per_output.into_iter().zip(&node.outputs) {
            let Some(result) = result else { continue };
            stack(pieces, result, &node, types, &mut out);
        }
    }
    Ok(out)
}

/// The most tensors one stack or cat op takes (the aten dialect's list size).
const LIST: usize = aotc_dialects::LIST_SLOTS;

/// `result = stack(pieces)`: one stack of up to LIST pieces, or stacks of
/// LIST pieces concatenated.
fn stack(pieces: Vec<String>, result: &str, node: &Node, types: &mut BTreeMap<String, TensorType>, out: &mut Vec<Node>) {
    let op = |target: &str, inputs: Vec<String>, output: &str| Node {
        name: output.to_string(),
        target: target.into(),
        args: vec![("tensors".into(), Arg::Tensors(inputs)), ("dim".into(), Arg::Int(0))],
        outputs: vec![Some(output.to_string())],
        stack_trace: node.stack_trace.clone(),
        problem: None,
    };
    if pieces.len() <= LIST {
        out.push(op("aten.stack.default", pieces, result));
        return;
    }
    let piece_ty = types[&pieces[0]].clone();
    let mut chunks = Vec::new();
    for (c, chunk) in pieces.chunks(LIST).enumerate() {
        let name = format!("{result}__chunk{c}");
        let mut shape = vec![chunk.len() as i64];
        shape.extend(&piece_ty.shape);
        types.insert(name.clone(), TensorType { dtype: piece_ty.dtype, shape });
        out.push(op("aten.stack.default", chunk.to_vec(), &name));
        chunks.push(name);
    }
    out.push(op("aten.cat.default", chunks, result));
}

/// Copies a subgraph's nodes into `out` with its inputs bound to `inputs`
/// and its own tensors renamed under `prefix`; returns its outputs.
fn inline(body: &Subgraph, inputs: &[String], prefix: &str, types: &mut BTreeMap<String, TensorType>, out: &mut Vec<Node>) -> Result<Vec<String>> {
    if body.inputs.len() != inputs.len() {
        bail!("map body '{}' takes {} inputs, is passed {}", shown(&body.name), body.inputs.len(), inputs.len());
    }
    let mut rename: HashMap<String, String> = body.inputs.iter().cloned().zip(inputs.iter().cloned()).collect();
    for node in &body.nodes {
        let mut node = node.clone();
        for t in crate::graph::tensor_operands_mut(&mut node) {
            *t = rename.get(t.as_str()).cloned().unwrap_or_else(|| format!("{prefix}{t}"));
        }
        for o in node.outputs.iter_mut().flatten() {
            let new = format!("{prefix}{o}");
            if let Some(ty) = body.tensor_types.get(o.as_str()) {
                types.insert(new.clone(), ty.clone());
            }
            rename.insert(o.clone(), new.clone());
            *o = new;
        }
        node.name = format!("{prefix}{}", node.name);
        out.push(node);
    }
    Ok(body.outputs.iter().map(|o| rename.get(o).cloned().unwrap_or_else(|| format!("{prefix}{o}"))).collect())
}
