//! Attention written out by hand, `softmax(q @ k^T * c + mask) @ v`, is
//! rewritten into one `scaled_dot_product_attention` node, which lowers to
//! the tiled attention kernel (`aotc_dialects::lower::attention`): the
//! score matrix is then never held beyond one block of queries and keys.
//!
//! Matched in the default export's ops (a `run_decompositions()` export
//! has already turned both forms into `bmm`s around views):
//!
//! ```text
//! kt = transpose(k, -2, -1)          (or a permute of the last two dims)
//! s  = matmul(q, kt)
//! s  = s * c | s / c                 (optional, c a number)
//! s  = s + mask                      (optional, an f32 tensor)
//! p  = softmax(s, -1)
//! p  = dropout(p, train=False)       (optional)
//! o  = matmul(p, v)
//! ```
//!
//! Each value between `s` and `o` must feed only the next step, q, k and v
//! must be f32 with the same batch dims (no broadcasting by the matmuls),
//! and the mask broadcastable to the scores. The order of operations is
//! the pattern's (the product, then the scale, then the mask), so only the
//! softmax's summation order changes.
//!
//! Then [`heads_in_place`]: the heads of an attention are usually split
//! off its projections by `view(B, N, H, D).transpose(1, 2)` and merged
//! back by the same transpose, three or four copies of the activations per
//! layer. The attention node reads and writes the `[B, N, H, D]` layout
//! instead (its `heads_last` argument), and the transposes go.

use crate::graph::{producer, single_use_producer, uses};
use crate::program::{Arg, DType, ExportedProgram, Node, TensorType};

/// Whether `node` (a transpose or a permute) swaps dims `pair` of a
/// rank-`rank` tensor and moves no other.
fn swaps_dims(node: &Node, rank: usize, pair: [usize; 2]) -> bool {
    let dim = |d: i64| if d < 0 { d + rank as i64 } else { d };
    let mut swapped: Vec<i64> = (0..rank as i64).collect();
    swapped.swap(pair[0], pair[1]);
    match (node.target.as_str(), node.arg("dim0"), node.arg("dim1"), node.arg("dims")) {
        ("aten.transpose.int", Some(Arg::Int(a)), Some(Arg::Int(b)), _) => {
            let mut dims = [dim(*a), dim(*b)];
            dims.sort();
            dims == [pair[0] as i64, pair[1] as i64]
        }
        ("aten.permute.default", _, _, Some(Arg::Ints(p))) => p.iter().map(|&d| dim(d)).eq(swapped),
        _ => false,
    }
}

/// Whether `node` swaps the last two dims of a rank-`rank` tensor.
fn swaps_last_two(node: &Node, rank: usize) -> bool {
    rank >= 2 && swaps_dims(node, rank, [rank - 2, rank - 1])
}

/// The rewrite of the `matmul` node `o` (`p @ v`), if it ends the pattern:
/// the attention node's arguments.
fn attention_args(program: &ExportedProgram, o: &Node) -> Option<Vec<(String, Arg)>> {
    let (p, v) = (o.tensor_arg("self")?, o.tensor_arg("other")?);
    let mut p_node = single_use_producer(program, p, &["aten.dropout.default", "aten.softmax.int", "aten._softmax.default"])?;
    if p_node.target == "aten.dropout.default" {
        let off = p_node.arg("train") == Some(&Arg::Bool(false)) || p_node.arg("p") == Some(&Arg::Float(0.0));
        p_node = if off { single_use_producer(program, p_node.tensor_arg("input")?, &["aten.softmax.int", "aten._softmax.default"])? } else { return None };
    }
    let scores_ty = program.tensor_type(p_node.tensor_arg("self")?)?;
    let rank = scores_ty.shape.len();
    let last_dim = matches!(p_node.arg("dim"), Some(Arg::Int(d)) if *d == -1 || *d == rank as i64 - 1);
    let keeps_type = !matches!(p_node.arg("dtype"), Some(Arg::ScalarType(_))) && p_node.arg("half_to_float") != Some(&Arg::Bool(true));
    if !last_dim || !keeps_type || rank < 2 {
        return None;
    }
    let mut s = p_node.tensor_arg("self")?;
    let mut mask = None;
    let mut scale = 1.0;
    if let Some(add) = single_use_producer(program, s, &["aten.add.Tensor"]) {
        let alpha_one = matches!(add.arg("alpha"), None | Some(Arg::Int(1)));
        let m = add.tensor_arg("other")?;
        if !alpha_one || program.tensor_type(m)?.dtype != DType::F32 {
            return None;
        }
        mask = Some(m.to_string());
        s = add.tensor_arg("self")?;
    }
    if let Some(k) = single_use_producer(program, s, &["aten.mul.Tensor", "aten.div.Tensor"]) {
        let Some(Arg::Float(c)) = k.arg("other") else { return None };
        scale = if k.target == "aten.mul.Tensor" { *c } else { 1.0 / c };
        s = k.tensor_arg("self")?;
    }
    let product = single_use_producer(program, s, &["aten.matmul.default"])?;
    let (q, kt) = (product.tensor_arg("self")?, product.tensor_arg("other")?);
    let transpose = &program.nodes[producer(program, kt)?];
    if !swaps_last_two(transpose, rank) {
        return None;
    }
    let k = transpose.tensor_arg("self")?;
    let (q_ty, k_ty, v_ty) = (program.tensor_type(q)?, program.tensor_type(k)?, program.tensor_type(v)?);
    let batch = |t: &TensorType| t.shape.len() == rank && t.dtype == DType::F32;
    if !batch(q_ty) || !batch(k_ty) || !batch(v_ty) || !(scale.is_finite() && scale > 0.0) {
        return None;
    }
    // nothing broadcast: not the batch dims by a product, not the scores
    // by the mask
    let lead = &q_ty.shape[..rank - 2];
    let scores: Vec<i64> = lead.iter().copied().chain([q_ty.shape[rank - 2], k_ty.shape[rank - 2]]).collect();
    if [k_ty, v_ty].iter().any(|t| &t.shape[..rank - 2] != lead) || scores_ty.shape != scores {
        return None;
    }
    let mut args = vec![
        ("query".to_string(), Arg::Tensor(q.to_string())),
        ("key".to_string(), Arg::Tensor(k.to_string())),
        ("value".to_string(), Arg::Tensor(v.to_string())),
    ];
    if let Some(m) = mask {
        args.push(("attn_mask".to_string(), Arg::Tensor(m)));
    }
    args.push(("scale".to_string(), Arg::Float(scale)));
    Some(args)
}

/// Rewrites every hand-written attention (see the module comment) into a
/// `scaled_dot_product_attention` node; returns how many. The nodes it
/// replaces are left for dead-code removal.
pub fn fuse_attention(program: &mut ExportedProgram) -> usize {
    let mut fused = 0;
    for i in 0..program.nodes.len() {
        if program.nodes[i].target != "aten.matmul.default" {
            continue;
        }
        let Some(args) = attention_args(program, &program.nodes[i]) else { continue };
        let node = &mut program.nodes[i];
        node.target = "aten.scaled_dot_product_attention.default".to_string();
        node.args = args;
        fused += 1;
    }
    fused
}

/// Whether `node` swaps dims 1 and 2 of a rank-4 tensor (heads and
/// tokens).
fn swaps_heads(node: &Node) -> bool {
    swaps_dims(node, 4, [1, 2])
}

/// The node that alone reads `name`, once.
fn single_user(program: &ExportedProgram, name: &str) -> Option<usize> {
    if uses(program, name) != 1 {
        return None;
    }
    program.nodes.iter().position(|n| crate::graph::tensor_operands(n).contains(&name))
}

/// The transpose that swaps the heads back after the attention's result
/// `o` (possibly through a reshape to the same shape), if it alone reads
/// `o`: the nodes to remove (the reshape, then the transpose).
fn heads_merge(program: &ExportedProgram, o: &str) -> Option<Vec<usize>> {
    let mut user = single_user(program, o)?;
    let mut chain = Vec::new();
    let node = &program.nodes[user];
    if node.target == "aten.reshape.default" || node.target == "aten.view.default" {
        let out = node.outputs.first()?.as_deref()?;
        if program.tensor_type(out)?.shape != program.tensor_type(o)?.shape {
            return None;
        }
        chain.push(user);
        user = single_user(program, out)?;
    }
    swaps_heads(&program.nodes[user]).then(|| {
        chain.push(user);
        chain
    })
}

/// Makes every `scaled_dot_product_attention` of rank-4 f32 operands read
/// its query, key and value in the layout they were transposed from when
/// each is a transpose of dims 1 and 2 that nothing else reads, and write
/// its result so when all that reads it is such a transpose (see the
/// module comment): the argument `heads_last` (ints: query, key, value,
/// result) says which. The transposes it reads through are left for
/// dead-code removal; the ones after it are removed (the attention node
/// takes over their result). Returns how many attention nodes changed.
pub fn heads_in_place(program: &mut ExportedProgram) -> usize {
    let mut changed = 0;
    let mut removed = Vec::new();
    for i in 0..program.nodes.len() {
        let node = &program.nodes[i];
        if node.target != "aten.scaled_dot_product_attention.default" || node.arg("heads_last").is_some() {
            continue;
        }
        let f32_rank4 = |name: &str| program.tensor_type(name).is_some_and(|t| t.shape.len() == 4 && t.dtype == DType::F32);
        let mut heads_last = vec![0i64; 4];
        let mut args = node.args.clone();
        for (slot, operand) in ["query", "key", "value"].iter().enumerate() {
            let Some(x) = node.tensor_arg(operand) else { continue };
            let Some(split) = single_use_producer(program, x, &["aten.transpose.int", "aten.permute.default"]) else { continue };
            let Some(source) = split.tensor_arg("self") else { continue };
            if f32_rank4(x) && swaps_heads(split) && f32_rank4(source) {
                heads_last[slot] = 1;
                let arg = args.iter_mut().find(|(n, _)| n == operand).expect("the operand is an argument");
                arg.1 = Arg::Tensor(source.to_string());
            }
        }
        let Some(Some(o)) = node.outputs.first().cloned() else { continue };
        let merge = f32_rank4(&o).then(|| heads_merge(program, &o)).flatten();
        let mut outputs = node.outputs.clone();
        if let Some(chain) = &merge {
            heads_last[3] = 1;
            outputs = program.nodes[*chain.last().expect("a transpose")].outputs.clone();
            removed.extend(chain.iter().copied());
        }
        if heads_last.iter().all(|&h| h == 0) {
            continue;
        }
        args.push(("heads_last".to_string(), Arg::Ints(heads_last)));
        let node = &mut program.nodes[i];
        node.args = args;
        node.outputs = outputs;
        changed += 1;
    }
    removed.sort_unstable();
    for i in removed.into_iter().rev() {
        program.nodes.remove(i);
    }
    changed
}
