//! Functionalization: the default export keeps in-place ops (`add_`,
//! `masked_fill_`, `copy_`, `index_put_`, ...) and the views they write
//! through (`x[:, 2:4].fill_(1)`, `attn_mask[h0:h1, w0:w1] = k`). aotc
//! compiles values, so every write becomes a new value, as torch's own
//! functionalization does:
//!
//! - an in-place op becomes its functional op (`add_.Tensor` ->
//!   `add.Tensor`), whose result is the written tensor's new value;
//! - a write into a view is scattered back into the view's base, one view
//!   step at a time (`slice_scatter`, `select_scatter`, a reshape or the
//!   inverse permutation), up to the tensor that owns the memory;
//! - a view read after its base (or another view of it) changed is
//!   rebuilt from the base's new value, replaying its view ops;
//! - the last value of a buffer that was written becomes a
//!   `BUFFER_MUTATION` output, so it persists in the model handle.

use crate::program::{Arg, DType, ExportedProgram, GraphOutput, InputKind, Node, OutputKind, Subgraph, TensorType};
use crate::text::shown;
use anyhow::{bail, Result};
use std::collections::HashMap;

/// Whether a node's op writes into its `self` argument (`aten.add_.Tensor`).
pub fn is_in_place(target: &str) -> bool {
    let op = target.split('.').nth(1).unwrap_or("");
    op.ends_with('_') && !op.starts_with("__")
}

/// The functional op of an in-place one: `aten.add_.Tensor` -> `aten.add.Tensor`.
pub fn functional_target(target: &str) -> String {
    let mut parts: Vec<&str> = target.split('.').collect();
    if let Some(op) = parts.get_mut(1) {
        *op = op.strip_suffix('_').unwrap_or(op);
    }
    parts.join(".")
}

const FUNCTIONAL_BATCH_NORM: &str = "aten._native_batch_norm_legit_functional.default";

/// How a view reads its base, enough to rebuild it and to write it back.
#[derive(Debug, Clone)]
enum ViewKind {
    /// The same tensor under another name (alias, detach, an in-place op's result).
    Identity,
    /// The same elements in another shape (view, unsqueeze, flatten, ...).
    Reshape,
    /// `slice.Tensor` args: dim, start, end, step.
    Slice(Vec<(String, Arg)>),
    /// `select.int` at (dim, index).
    Select(i64, i64),
    /// out dim i is base dim perm[i].
    Permute(Vec<usize>),
    /// A view that aotc cannot write through (expand, diagonal, as_strided).
    Opaque(&'static str),
}

#[derive(Debug, Clone)]
struct View {
    base: String,
    kind: ViewKind,
}

/// The view an op's `k`-th result is, if it is a view of its `self`
/// argument, given the argument and result types.
fn view_kind(node: &Node, k: usize, base: &TensorType, result: &TensorType) -> Option<ViewKind> {
    let arg = |name: &str| node.args.iter().find(|(n, _)| n == name).map(|(_, a)| a.clone());
    let int = |name: &str, default: i64| match arg(name) {
        Some(Arg::Int(v)) => v,
        _ => default,
    };
    let rank = base.shape.len() as i64;
    let dim = |d: i64| if d < 0 { d + rank.max(1) } else { d };
    let op = node.target.as_str();
    Some(match op {
        "aten.alias.default" | "aten.detach.default" | "aten.view_as.default" | "aten.lift_fresh_copy.default" => ViewKind::Identity,
        "aten.view.default" | "aten.reshape.default" | "aten.unsqueeze.default" | "aten.squeeze.default"
        | "aten.squeeze.dim" | "aten.squeeze.dims" | "aten.flatten.using_ints" | "aten.unflatten.int" => ViewKind::Reshape,
        "aten.slice.Tensor" => ViewKind::Slice(node.args.iter().filter(|(n, _)| n != "self").cloned().collect()),
        "aten.narrow.default" => {
            let start = int("start", 0);
            let start = if start < 0 { start + base.shape.get(dim(int("dim", 0)) as usize).copied().unwrap_or(0) } else { start };
            ViewKind::Slice(vec![
                ("dim".into(), Arg::Int(int("dim", 0))),
                ("start".into(), Arg::Int(start)),
                ("end".into(), Arg::Int(start + int("length", 0))),
            ])
        }
        "aten.select.int" => ViewKind::Select(dim(int("dim", 0)), int("index", 0)),
        "aten.unbind.int" => ViewKind::Select(dim(int("dim", 0)), k as i64),
        "aten.split.Tensor" | "aten.split_with_sizes.default" | "aten.chunk.default" => {
            // result k starts where the earlier results end along dim
            let d = dim(int("dim", 0)) as usize;
            let len = result.shape.get(d).copied().unwrap_or(0);
            let split = match (arg("split_size"), arg("split_sizes")) {
                (_, Some(Arg::Ints(sizes))) => sizes[..k.min(sizes.len())].iter().sum::<i64>(),
                (Some(Arg::Int(size)), _) => size * k as i64,
                _ => {
                    // chunk: every chunk but the last has ceil(size / chunks) elements
                    let chunks = int("chunks", 1).max(1);
                    let size = base.shape.get(d).copied().unwrap_or(0);
                    (size + chunks - 1) / chunks * k as i64
                }
            };
            ViewKind::Slice(vec![
                ("dim".into(), Arg::Int(d as i64)),
                ("start".into(), Arg::Int(split)),
                ("end".into(), Arg::Int(split + len)),
            ])
        }
        "aten.permute.default" => match arg("dims") {
            Some(Arg::Ints(dims)) => ViewKind::Permute(dims.iter().map(|&d| dim(d) as usize).collect()),
            _ => return None,
        },
        "aten.transpose.int" => {
            let mut perm: Vec<usize> = (0..rank as usize).collect();
            let (a, b) = (dim(int("dim0", 0)) as usize, dim(int("dim1", 1)) as usize);
            if a < perm.len() && b < perm.len() {
                perm.swap(a, b);
            }
            ViewKind::Permute(perm)
        }
        "aten.t.default" => ViewKind::Permute(if rank == 2 { vec![1, 0] } else { (0..rank as usize).collect() }),
        "aten.expand.default" | "aten.expand_as.default" => ViewKind::Opaque("expand"),
        "aten.diagonal.default" => ViewKind::Opaque("diagonal"),
        "aten.as_strided.default" => ViewKind::Opaque("as_strided"),
        _ => return None,
    })
}

fn inverse(perm: &[usize]) -> Vec<i64> {
    let mut inv = vec![0i64; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        if p < inv.len() {
            inv[p] = i as i64;
        }
    }
    inv
}

struct Functionalizer<'p> {
    types: &'p mut std::collections::BTreeMap<String, TensorType>,
    /// Tensors that are views of another (by their names in the graph).
    views: HashMap<String, View>,
    /// The value that holds each written tensor's current contents.
    current: HashMap<String, String>,
    /// How many writes each base has seen, and the count each tensor's
    /// current value reflects: a view older than its base is rebuilt.
    version: HashMap<String, u64>,
    stamp: HashMap<String, u64>,
    nodes: Vec<Node>,
    fresh: usize,
}

impl Functionalizer<'_> {
    fn base_of(&self, t: &str) -> String {
        let mut t = t.to_string();
        let mut steps = 0;
        while let Some(v) = self.views.get(&t) {
            t = v.base.clone();
            steps += 1;
            if steps > self.views.len() {
                break; // a cycle: the graph is malformed; schedule() reports it
            }
        }
        t
    }

    fn new_value(&mut self, like: &str, ty: TensorType) -> String {
        loop {
            self.fresh += 1;
            let name = format!("{like}__v{}", self.fresh);
            if !self.types.contains_key(&name) {
                self.types.insert(name.clone(), ty);
                return name;
            }
        }
    }

    fn emit(&mut self, target: &str, args: Vec<(String, Arg)>, output: &str, origin: &Node) {
        self.nodes.push(Node {
            name: output.to_string(),
            target: target.to_string(),
            args,
            outputs: vec![Some(output.to_string())],
            stack_trace: origin.stack_trace.clone(),
            problem: None,
        });
    }

    /// The value holding `t`'s contents now, rebuilding it (and the views
    /// it is made from) when its base was written after it was read. The
    /// chain of views is walked in a loop: an archive's chain of a hundred
    /// thousand views costs no stack.
    fn read(&mut self, t: &str, origin: &Node) -> Result<String> {
        if !self.views.contains_key(t) {
            return Ok(self.current.get(t).cloned().unwrap_or_else(|| t.to_string()));
        }
        let version = self.version.get(&self.base_of(t)).copied().unwrap_or(0);
        // the stale views from `t` up to the first tensor whose value is current
        let mut stale = Vec::new();
        let mut at = t.to_string();
        while let Some(view) = self.views.get(&at) {
            if self.stamp.get(&at).copied().unwrap_or(0) == version || stale.len() > self.views.len() {
                break;
            }
            stale.push(at.clone());
            at = view.base.clone();
        }
        let mut value = self.current.get(&at).cloned().unwrap_or_else(|| at.clone());
        for name in stale.into_iter().rev() {
            value = self.rebuild(&name, value, origin)?;
            self.current.insert(name.clone(), value.clone());
            self.stamp.insert(name, version);
        }
        Ok(value)
    }

    /// View `t` of its base's value `from`, replaying the view op.
    fn rebuild(&mut self, t: &str, from: String, origin: &Node) -> Result<String> {
        let view = self.views[t].clone();
        let Some(ty) = self.types.get(t).cloned() else { bail!("tensor '{}' has no type", shown(t)) };
        Ok(match &view.kind {
            ViewKind::Identity => from,
            ViewKind::Reshape => {
                let v = self.new_value(t, ty.clone());
                self.emit("aten.view.default", vec![("self".into(), Arg::Tensor(from)), ("size".into(), Arg::Ints(ty.shape))], &v, origin);
                v
            }
            ViewKind::Slice(args) => {
                let v = self.new_value(t, ty);
                let mut a = vec![("self".to_string(), Arg::Tensor(from))];
                a.extend(args.iter().cloned());
                self.emit("aten.slice.Tensor", a, &v, origin);
                v
            }
            ViewKind::Select(dim, index) => {
                let v = self.new_value(t, ty);
                let a = vec![("self".into(), Arg::Tensor(from)), ("dim".into(), Arg::Int(*dim)), ("index".into(), Arg::Int(*index))];
                self.emit("aten.select.int", a, &v, origin);
                v
            }
            ViewKind::Permute(perm) => {
                let v = self.new_value(t, ty);
                let dims = perm.iter().map(|&p| p as i64).collect();
                self.emit("aten.permute.default", vec![("self".into(), Arg::Tensor(from)), ("dims".into(), Arg::Ints(dims))], &v, origin);
                v
            }
            // never written through (that is an error), so never stale
            ViewKind::Opaque(_) => self.current.get(t).cloned().unwrap_or_else(|| t.to_string()),
        })
    }

    /// Records that `t` now holds `value`: writes it back through every view
    /// step to the base, which then has a new version.
    fn write(&mut self, t: &str, value: String, origin: &Node) -> Result<()> {
        let mut chain = vec![t.to_string()];
        let (mut child, mut child_value) = (t.to_string(), value.clone());
        self.current.insert(t.to_string(), value);
        while let Some(view) = self.views.get(&child).cloned() {
            let base_value = self.read(&view.base, origin)?;
            let Some(base_ty) = self.types.get(&view.base).cloned() else { bail!("tensor '{}' has no type", shown(&view.base)) };
            let new_base = match &view.kind {
                ViewKind::Identity => child_value.clone(),
                ViewKind::Reshape => {
                    let v = self.new_value(&view.base, base_ty.clone());
                    let a = vec![("self".into(), Arg::Tensor(child_value.clone())), ("size".into(), Arg::Ints(base_ty.shape))];
                    self.emit("aten.view.default", a, &v, origin);
                    v
                }
                ViewKind::Slice(args) => {
                    let v = self.new_value(&view.base, base_ty);
                    let mut a = vec![("self".to_string(), Arg::Tensor(base_value)), ("src".to_string(), Arg::Tensor(child_value.clone()))];
                    a.extend(args.iter().cloned());
                    self.emit("aten.slice_scatter.default", a, &v, origin);
                    v
                }
                ViewKind::Select(dim, index) => {
                    let v = self.new_value(&view.base, base_ty);
                    let a = vec![
                        ("self".into(), Arg::Tensor(base_value)),
                        ("src".into(), Arg::Tensor(child_value.clone())),
                        ("dim".into(), Arg::Int(*dim)),
                        ("index".into(), Arg::Int(*index)),
                    ];
                    self.emit("aten.select_scatter.default", a, &v, origin);
                    v
                }
                ViewKind::Permute(perm) => {
                    let v = self.new_value(&view.base, base_ty);
                    let a = vec![("self".into(), Arg::Tensor(child_value.clone())), ("dims".into(), Arg::Ints(inverse(perm)))];
                    self.emit("aten.permute.default", a, &v, origin);
                    v
                }
                ViewKind::Opaque(what) => bail!(
                    "node '{}' writes in place into the result of {what} ('{}'), which aotc cannot write back to its base",
                    shown(&origin.name),
                    shown(&child)
                ),
            };
            self.current.insert(view.base.clone(), new_base.clone());
            chain.push(view.base.clone());
            child = view.base.clone();
            child_value = new_base;
        }
        let version = self.version.entry(child).or_insert(0);
        *version += 1;
        let version = *version;
        for t in chain {
            self.stamp.insert(t, version);
        }
        Ok(())
    }

    /// Records the views a node makes (by the names of its operands in the
    /// graph, so that writes reach the tensors they alias).
    fn note_views(&mut self, node: &Node, base: &str) {
        let Some(base_ty) = self.types.get(base).cloned() else { return };
        let base_root = self.base_of(base);
        let version = self.version.get(&base_root).copied().unwrap_or(0);
        for (k, out) in node.outputs.iter().enumerate() {
            let Some(out) = out else { continue };
            let Some(out_ty) = self.types.get(out).cloned() else { continue };
            if let Some(kind) = view_kind(node, k, &base_ty, &out_ty) {
                self.views.insert(out.clone(), View { base: base.to_string(), kind });
                self.stamp.insert(out.clone(), version);
            }
        }
    }

    fn node(&mut self, mut node: Node) -> Result<()> {
        for (_, arg) in &mut node.args {
            if let Arg::Graph(g) = arg {
                functionalize_subgraph(g)?;
            }
        }
        // the tensors the node names (before reads are rewritten to values)
        let logical = |arg: &str| {
            node.args.iter().find_map(|(n, a)| match a {
                Arg::Tensor(t) if n == arg => Some(t.clone()),
                _ => None,
            })
        };
        let logical_self = logical("self");
        let running_stats = [(logical("running_mean"), 3), (logical("running_var"), 4)];
        // reads see current values
        let mut names: Vec<String> = crate::graph::tensor_operands_mut(&mut node).into_iter().map(|t| t.clone()).collect();
        for name in &mut names {
            *name = self.read(name, &node)?;
        }
        for (slot, value) in crate::graph::tensor_operands_mut(&mut node).into_iter().zip(names) {
            *slot = value;
        }
        if node.target == FUNCTIONAL_BATCH_NORM {
            self.nodes.push(node.clone());
            for (written, k) in running_stats {
                if let (Some(written), Some(Some(result))) = (written, node.outputs.get(k)) {
                    self.write(&written, result.clone(), &node)?;
                }
            }
            return Ok(());
        }
        if is_in_place(&node.target) {
            if let (Some(written), Some(Some(result))) = (logical_self.clone(), node.outputs.first().cloned()) {
                node.target = functional_target(&node.target);
                self.nodes.push(node.clone());
                self.write(&written, result.clone(), &node)?;
                // the op's result is `self` under another name
                self.views.insert(result.clone(), View { base: written.clone(), kind: ViewKind::Identity });
                let base = self.base_of(&written);
                let version = self.version.get(&base).copied().unwrap_or(0);
                self.stamp.insert(result.clone(), version);
                self.current.insert(result.clone(), result);
                return Ok(());
            }
        }
        if let Some(base) = &logical_self {
            self.note_views(&node, base);
        }
        self.nodes.push(node);
        Ok(())
    }
}

/// `batch_norm` in training mode and `_native_batch_norm_legit` update their
/// running statistics in place (the default export keeps them so). Both
/// become `_native_batch_norm_legit_functional`, whose last two results are
/// the new statistics, written into the statistics' tensors.
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
                TensorType { dtype: DType::F32, shape: vec![channels] }
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

fn functionalizer(types: &mut std::collections::BTreeMap<String, TensorType>, capacity: usize) -> Functionalizer<'_> {
    Functionalizer {
        types,
        views: HashMap::new(),
        current: HashMap::new(),
        version: HashMap::new(),
        stamp: HashMap::new(),
        nodes: Vec::with_capacity(capacity),
        fresh: 0,
    }
}

/// The node reads of a subgraph's final values stand in for its outputs.
fn output_origin() -> Node {
    Node { name: "output".into(), target: String::new(), args: vec![], outputs: vec![], stack_trace: None, problem: None }
}

/// Functionalizes a higher-order op's subgraph on its own.
fn functionalize_subgraph(g: &mut Subgraph) -> Result<()> {
    let nodes = std::mem::take(&mut g.nodes);
    let mut f = functionalizer(&mut g.tensor_types, nodes.len());
    for node in nodes {
        f.node(node)?;
    }
    let origin = output_origin();
    let outputs = g.outputs.iter().map(|o| f.read(o, &origin)).collect::<Result<Vec<_>>>()?;
    g.nodes = f.nodes;
    g.outputs = outputs;
    Ok(())
}

/// Rewrites in-place ops and writes through views into values (see the
/// module comment). Fails, naming the node, on a write through a view that
/// cannot be written back (an expanded or diagonal view).
pub fn functionalize(program: &mut ExportedProgram) -> Result<()> {
    functional_batch_norms(program);
    let nodes = std::mem::take(&mut program.nodes);
    let mut f = functionalizer(&mut program.tensor_types, nodes.len());
    for node in nodes {
        f.node(node)?;
    }
    // user outputs read the final values of the tensors they name
    let origin = output_origin();
    for output in &mut program.outputs {
        output.name = f.read(&output.name, &origin)?;
    }
    // a written buffer's last value persists in the model handle
    let already: Vec<String> = program
        .outputs
        .iter()
        .filter_map(|o| match &o.kind {
            OutputKind::BufferMutation { fqn } => Some(fqn.clone()),
            OutputKind::User => None,
        })
        .collect();
    let mut mutations = Vec::new();
    for input in &program.inputs {
        let InputKind::Buffer { fqn, .. } = &input.kind else { continue };
        if already.contains(fqn) || !f.version.contains_key(&input.name) {
            continue;
        }
        let value = f.read(&input.name, &origin)?;
        let ty = f.types.get(&value).cloned().unwrap_or_else(|| input.ty.clone());
        mutations.push(GraphOutput { name: value, kind: OutputKind::BufferMutation { fqn: fqn.clone() }, ty });
    }
    program.outputs.extend(mutations);
    program.nodes = f.nodes;
    Ok(())
}
