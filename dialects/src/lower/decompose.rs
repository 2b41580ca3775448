//! Decompositions: ops outside the core set, rewritten into core ops, the
//! way `torch._decomp` does it in Python. A rule calls core ops through a
//! [`Builder`], which runs their lowering rules; the decomposition never
//! writes linalg itself. Adding an op here is one table entry in
//! [`super::RULES`] and a few lines.

use super::{rule_for, AtenOp, Attr, Emitter, Operand};
use crate::types::Ty;

/// A tensor value during a decomposition.
#[derive(Debug, Clone)]
pub struct Val {
    pub ssa: String,
    pub ty: Ty,
}

impl From<&Operand> for Val {
    fn from(o: &Operand) -> Val {
        Val { ssa: o.ssa.clone(), ty: o.ty.clone() }
    }
}

/// Calls core ops by name with tensor arguments, attributes and result types.
pub struct Builder<'a> {
    pub e: &'a mut Emitter,
    location: String,
}

impl<'a> Builder<'a> {
    pub fn new(e: &'a mut Emitter, op: &AtenOp) -> Self {
        Builder { e, location: op.location.clone() }
    }

    /// Lowers core op `name` (`aten.mul_tensor`) and returns its results.
    pub fn call(&mut self, name: &str, tensors: &[(&str, &Val)], attrs: &[(&str, Attr)], results: &[Ty]) -> Result<Vec<Val>, String> {
        let rule = rule_for(name).ok_or_else(|| format!("decomposition uses '{name}', which has no rule"))?;
        let op = AtenOp {
            name: name.to_string(),
            operands: tensors.iter().map(|(arg, v)| Operand { ssa: v.ssa.clone(), ty: v.ty.clone(), arg: arg.to_string() }).collect(),
            attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            results: results.to_vec(),
            results_used: vec![true; results.len()],
            result_channel_blocked: false,
            location: self.location.clone(),
        };
        let names = (rule.lower)(self.e, &op)?;
        Ok(names.into_iter().zip(results).map(|(ssa, ty)| Val { ssa, ty: ty.clone() }).collect())
    }

    /// A single-result call.
    pub fn call1(&mut self, name: &str, tensors: &[(&str, &Val)], attrs: &[(&str, Attr)], result: Ty) -> Result<Val, String> {
        Ok(self.call(name, tensors, attrs, &[result])?.remove(0))
    }

    pub fn unary(&mut self, name: &str, x: &Val) -> Result<Val, String> {
        self.call1(name, &[("self", x)], &[], x.ty.clone())
    }

    /// A binary op with broadcasting; the result dtype is `elem`.
    pub fn binary(&mut self, name: &str, a: &Val, b: &Val, elem: &str) -> Result<Val, String> {
        let ty = Ty::new(broadcast_shapes(&a.ty.shape, &b.ty.shape), elem);
        self.call1(name, &[("self", a), ("other", b)], &[], ty)
    }

    /// `x <op> scalar` for add/sub/mul/div.Scalar.
    pub fn scalar(&mut self, name: &str, x: &Val, v: f64) -> Result<Val, String> {
        self.call1(name, &[("self", x)], &[("other", Attr::Float(v))], x.ty.clone())
    }

    pub fn reshape(&mut self, x: &Val, shape: Vec<i64>) -> Result<Val, String> {
        let ty = x.ty.with_shape(shape.clone());
        self.call1("aten.view", &[("self", x)], &[("size", Attr::Ints(shape))], ty)
    }

    pub fn permute(&mut self, x: &Val, perm: &[usize]) -> Result<Val, String> {
        let ty = x.ty.with_shape(perm.iter().map(|&p| x.ty.shape[p]).collect());
        self.call1("aten.permute", &[("self", x)], &[("dims", Attr::Ints(perm.iter().map(|&p| p as i64).collect()))], ty)
    }

    pub fn matmul(&mut self, a: &Val, b: &Val) -> Result<Val, String> {
        let (ra, rb) = (a.ty.rank(), b.ty.rank());
        let mut shape = broadcast_shapes(&a.ty.shape[..ra - 2], &b.ty.shape[..rb - 2]);
        shape.push(a.ty.shape[ra - 2]);
        shape.push(b.ty.shape[rb - 1]);
        self.call1("aten.matmul", &[("self", a), ("other", b)], &[], a.ty.with_shape(shape))
    }

    pub fn convert(&mut self, x: &Val, elem: &str) -> Result<Val, String> {
        if x.ty.elem == elem {
            return Ok(x.clone());
        }
        self.call1("aten.to_copy", &[("self", x)], &[], x.ty.with_elem(elem))
    }
}

/// numpy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[i64], b: &[i64]) -> Vec<i64> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
            let x = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
            let y = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
            if x == 1 { y } else { x }
        })
        .collect()
}

fn only_result(v: Val) -> Result<Vec<String>, String> {
    Ok(vec![v.ssa])
}

/// silu(x) = x * sigmoid(x)
pub fn silu(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let s = b.unary("aten.sigmoid", &x)?;
    only_result(b.binary("aten.mul_tensor", &x, &s, &x.ty.elem)?)
}

/// hardsigmoid(x) = clamp(x + 3, 0, 6) / 6
pub fn hardsigmoid(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    only_result(hardsigmoid_of(&mut b, &x)?)
}

fn hardsigmoid_of(b: &mut Builder, x: &Val) -> Result<Val, String> {
    let shifted = b.scalar("aten.add_scalar", x, 3.0)?;
    let clamped =
        b.call1("aten.clamp", &[("self", &shifted)], &[("min", Attr::Float(0.0)), ("max", Attr::Float(6.0))], x.ty.clone())?;
    b.scalar("aten.div_scalar", &clamped, 6.0)
}

/// hardswish(x) = x * hardsigmoid(x)
pub fn hardswish(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let h = hardsigmoid_of(&mut b, &x)?;
    only_result(b.binary("aten.mul_tensor", &x, &h, &x.ty.elem)?)
}

/// relu6(x) = hardtanh(x, 0, 6)
pub fn relu6(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    only_result(b.call1(
        "aten.hardtanh",
        &[("self", &x)],
        &[("min_val", Attr::Float(0.0)), ("max_val", Attr::Float(6.0))],
        x.ty.clone(),
    )?)
}

/// softplus(x, beta, threshold) = x if beta*x > threshold else log1p(exp(beta*x)) / beta
pub fn softplus(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let (beta, threshold) = (op.float("beta", 1.0)?, op.float("threshold", 20.0)?);
    only_result(softplus_of(&mut b, &x, beta, threshold)?)
}

fn softplus_of(b: &mut Builder, x: &Val, beta: f64, threshold: f64) -> Result<Val, String> {
    let bx = b.scalar("aten.mul_scalar", x, beta)?;
    let ex = b.unary("aten.exp", &bx)?;
    let lp = b.unary("aten.log1p", &ex)?;
    let soft = b.scalar("aten.div_scalar", &lp, beta)?;
    let over = b.call1("aten.gt_scalar", &[("self", &bx)], &[("other", Attr::Float(threshold))], x.ty.with_elem("i1"))?;
    b.call1("aten.where_self", &[("condition", &over), ("self", x), ("other", &soft)], &[], x.ty.clone())
}

/// mish(x) = x * tanh(softplus(x))
pub fn mish(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let sp = softplus_of(&mut b, &x, 1.0, 20.0)?;
    let t = b.unary("aten.tanh", &sp)?;
    only_result(b.binary("aten.mul_tensor", &x, &t, &x.ty.elem)?)
}

/// log_sigmoid(x) = -softplus(-x)
pub fn log_sigmoid(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let nx = b.unary("aten.neg", &x)?;
    let sp = softplus_of(&mut b, &nx, 1.0, 20.0)?;
    only_result(b.unary("aten.neg", &sp)?)
}

/// Ops that only rename or view: the result type says everything
/// (contiguous, detach, alias, dropout in eval, view_as, unflatten, ...).
pub fn identity(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self").or_else(|_| op.input("input"))?;
    let mut b = Builder::new(e, op);
    let v: Val = x.into();
    let r = if v.ty.elem != op.result().elem { b.convert(&v, &op.result().elem)? } else { v };
    only_result(b.reshape(&r, op.result().shape.clone())?)
}

/// dropout(input, p, train) and native_dropout(input, p, train?): the
/// identity in evaluation; training-mode dropout is random.
pub fn dropout(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    if op.bool("train", false)? && op.float("p", 0.0)? > 0.0 {
        return Err(format!("{}: dropout in training mode is random; export the model in eval() mode", op.name));
    }
    let x: Val = op.input("input").or_else(|_| op.input("self"))?.into();
    let mut out = vec![x.ssa.clone()];
    if op.results.len() == 2 {
        let mut b = Builder::new(e, op);
        let mask = b.call1("aten.full", &[], &[("fill_value", Attr::Int(1))], op.results[1].clone())?;
        out.push(mask.ssa);
    }
    Ok(out)
}

/// layer_norm -> native_layer_norm
pub fn layer_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input")?;
    let n = op.ints("normalized_shape", 1, &[])?.len();
    let stats = stat_type(&x.ty, n);
    let mut b = Builder::new(e, op);
    let tensors = optional_tensors(op, &["input", "weight", "bias"]);
    let attrs = copy_attrs(op, &["normalized_shape", "eps"]);
    let refs: Vec<(&str, &Val)> = tensors.iter().map(|(n, v)| (*n, v)).collect();
    let r = b.call("aten.native_layer_norm", &refs, &attrs, &[op.result().clone(), stats.clone(), stats])?;
    only_result(r[0].clone())
}

/// [.., 1, 1] over the last `n` dims, in f32 at least.
fn stat_type(ty: &Ty, n: usize) -> Ty {
    let rank = ty.rank();
    let shape = ty.shape.iter().enumerate().map(|(d, &s)| if d >= rank - n { 1 } else { s }).collect();
    Ty::new(shape, super::scalar::compute_elem(&ty.elem))
}

fn optional_tensors<'a>(op: &AtenOp, names: &[&'a str]) -> Vec<(&'a str, Val)> {
    names.iter().filter_map(|n| op.opt_input(n).map(|o| (*n, Val::from(o)))).collect()
}

fn copy_attrs<'a>(op: &AtenOp, names: &[&'a str]) -> Vec<(&'a str, Attr)> {
    names.iter().filter_map(|n| op.attrs.get(*n).map(|a| (*n, a.clone()))).collect()
}

/// batch_norm -> _native_batch_norm_legit_no_training (eval) or
/// _native_batch_norm_legit (training statistics).
pub fn batch_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input")?;
    let training = op.bool("training", false)?;
    let c = x.ty.shape.get(1).copied().unwrap_or(1);
    let stats = Ty::new(vec![if training { c } else { 0 }], super::scalar::compute_elem(&x.ty.elem));
    let mut b = Builder::new(e, op);
    let tensors = optional_tensors(op, &["input", "weight", "bias", "running_mean", "running_var"]);
    let refs: Vec<(&str, &Val)> = tensors.iter().map(|(n, v)| (*n, v)).collect();
    let (name, attrs) = if training {
        ("aten.native_batch_norm_legit_no_stats", copy_attrs(op, &["momentum", "eps", "training"]))
    } else {
        ("aten.native_batch_norm_legit_no_training", copy_attrs(op, &["momentum", "eps"]))
    };
    let refs: Vec<(&str, &Val)> = if training { refs.into_iter().filter(|(n, _)| !n.starts_with("running")).collect() } else { refs };
    let r = b.call(name, &refs, &attrs, &[op.result().clone(), stats.clone(), stats])?;
    only_result(r[0].clone())
}

/// group_norm -> native_group_norm
pub fn group_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input")?;
    let groups = op.int("num_groups", 1)?;
    let n = x.ty.shape[0];
    let stats = Ty::new(vec![n, groups], super::scalar::compute_elem(&x.ty.elem));
    let mut b = Builder::new(e, op);
    let tensors = optional_tensors(op, &["input", "weight", "bias"]);
    let refs: Vec<(&str, &Val)> = tensors.iter().map(|(n, v)| (*n, v)).collect();
    let mut attrs = copy_attrs(op, &["eps"]);
    attrs.push(("group", Attr::Int(groups)));
    let r = b.call("aten.native_group_norm", &refs, &attrs, &[op.result().clone(), stats.clone(), stats])?;
    only_result(r[0].clone())
}

/// softmax.int / log_softmax.int -> _softmax / _log_softmax (in the result dtype).
pub fn softmax(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let x = b.convert(&x, &op.result().elem)?;
    let name = if op.name.contains("log_softmax") { "aten.log_softmax" } else { "aten.softmax" };
    only_result(b.call1(name, &[("self", &x)], &copy_attrs(op, &["dim"]), op.result().clone())?)
}

/// std -> sqrt(var)
pub fn std(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let v = b.call1("aten.var_correction", &[("self", &x)], &copy_attrs(op, &["dim", "correction", "keepdim", "unbiased"]), op.result().clone())?;
    only_result(b.unary("aten.sqrt", &v)?)
}

/// clamp_min / clamp_max -> clamp
pub fn clamp_bound(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let bound = if op.name.contains("clamp_min") { "min" } else { "max" };
    let mut tensors = vec![("self", x)];
    if let Some(t) = op.opt_input(bound) {
        tensors.push((bound, t.into()));
    }
    let refs: Vec<(&str, &Val)> = tensors.iter().map(|(n, v)| (*n, v)).collect();
    let name = if tensors.len() == 2 { "aten.clamp_tensor" } else { "aten.clamp" };
    only_result(b.call1(name, &refs, &copy_attrs(op, &[bound]), op.result().clone())?)
}

/// scaled_dot_product_attention(q, k, v, attn_mask?, dropout_p, is_causal, scale?, enable_gqa)
/// = softmax(q @ k^T * scale + mask) @ v
pub fn scaled_dot_product_attention(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    if op.float("dropout_p", 0.0)? > 0.0 {
        return Err(format!("{}: dropout_p > 0 is random; export with dropout_p=0", op.name));
    }
    let mut b = Builder::new(e, op);
    // [B, N, H, D] operands and result (heads in place, see the compiler's
    // `attention_pattern::heads_in_place`): the tiled kernel reads and
    // writes them so; other paths see them as [B, H, N, D]
    let heads_last: Vec<bool> = op.ints("heads_last", 4, &[0; 4])?.iter().map(|&x| x != 0).collect();
    let q: Val = op.input("query")?.into();
    let mut k: Val = op.input("key")?.into();
    let mut v: Val = op.input("value")?.into();
    let rank = q.ty.rank();
    if rank < 2 {
        return Err(format!("{}: query must have at least 2 dims", op.name));
    }
    if heads_last.iter().any(|&h| h) {
        if rank != 4 {
            return Err(format!("{}: heads in place need rank-4 operands", op.name));
        }
        let operands = [(&q, heads_last[0]), (&k, heads_last[1]), (&v, heads_last[2])];
        if let Some(out) = tiled_attention(&mut b, op, operands, heads_last[3])? {
            return Ok(vec![out]);
        }
    }
    let swap = [0, 2, 1, 3];
    let logical = |b: &mut Builder, x: Val, last: bool| if last { b.permute(&x, &swap) } else { Ok(x) };
    let q = logical(&mut b, q, heads_last[0])?;
    k = logical(&mut b, k, heads_last[1])?;
    v = logical(&mut b, v, heads_last[2])?;
    let out_ty = if heads_last[3] { super::attention::heads_swapped(op.result()) } else { op.result().clone() };
    let (l, d) = (q.ty.shape[rank - 2], q.ty.shape[rank - 1]);
    let s = k.ty.shape[rank - 2];
    // grouped-query attention: repeat each key/value head for its query heads
    if rank >= 3 && k.ty.shape[rank - 3] != q.ty.shape[rank - 3] {
        let (hq, hk) = (q.ty.shape[rank - 3], k.ty.shape[rank - 3]);
        if hk == 0 || hq % hk != 0 {
            return Err(format!("{}: {hq} query heads do not group over {hk} key heads", op.name));
        }
        k = repeat_heads(&mut b, &k, hq / hk)?;
        v = repeat_heads(&mut b, &v, hq / hk)?;
    }
    let in_layout = |out: Val, b: &mut Builder| if heads_last[3] { b.permute(&out, &swap) } else { Ok(out) };
    // the common case as one tiled kernel that never holds more than a
    // block of the scores (see `attention`)
    if let Some(out) = tiled_attention(&mut b, op, [(&q, false), (&k, false), (&v, false)], false)? {
        let out = Val { ssa: out, ty: out_ty.clone() };
        return only_result(in_layout(out, &mut b)?);
    }
    let scale = attention_scale(op, d);
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    let kt = b.permute(&k, &perm)?;
    let scores = b.matmul(&q, &kt)?;
    // A positive scale commutes with the max and with -inf masks, so the
    // softmax applies it where it subtracts the max (no pass of its own);
    // an additive mask is added to scaled scores.
    let additive_mask = op.opt_input("attn_mask").is_some_and(|m| m.ty.elem != "i1");
    let scale_in_softmax = scale > 0.0 && !additive_mask;
    let mut scores = if scale_in_softmax { scores } else { b.scalar("aten.mul_scalar", &scores, scale)? };
    let elem = scores.ty.elem.clone();
    if op.bool("is_causal", false)? {
        // -inf above the diagonal (keys after the query)
        let ones = b.call1("aten.full", &[], &[("fill_value", Attr::Int(1))], Ty::new(vec![l, s], "i1"))?;
        let keep = b.call1("aten.tril", &[("self", &ones)], &[("diagonal", Attr::Int(0))], ones.ty.clone())?;
        let blocked = not(&mut b, &keep)?;
        let inf = Attr::Float(f64::NEG_INFINITY);
        scores = b.call1("aten.masked_fill_scalar", &[("self", &scores), ("mask", &blocked)], &[("value", inf)], scores.ty.clone())?;
    }
    if let Some(mask) = op.opt_input("attn_mask") {
        let m: Val = mask.into();
        scores = if m.ty.elem == "i1" {
            let blocked = not(&mut b, &m)?;
            let shape = broadcast_shapes(&scores.ty.shape, &m.ty.shape);
            b.call1(
                "aten.masked_fill_scalar",
                &[("self", &scores), ("mask", &blocked)],
                &[("value", Attr::Float(f64::NEG_INFINITY))],
                scores.ty.with_shape(shape),
            )?
        } else {
            b.binary("aten.add_tensor", &scores, &m, &elem)?
        };
    }
    let last = (scores.ty.rank() - 1) as i64;
    let mut softmax_attrs = vec![("dim", Attr::Int(last))];
    if scale_in_softmax {
        softmax_attrs.push(("scale", Attr::Float(scale)));
    }
    let probs = b.call1("aten.softmax", &[("self", &scores)], &softmax_attrs, scores.ty.clone())?;
    let out = b.matmul(&probs, &v)?;
    let out = b.reshape(&out, out_ty.shape.clone())?;
    only_result(in_layout(out, &mut b)?)
}

/// sdpa as the tiled kernel (`super::attention`) when it takes the op's
/// operands: `(value, heads last)` for q, k and v; f32, the same batch
/// dims (no grouped heads), no dim 0, a positive scale and a mask it
/// takes. The result is `[B, L, H, Dv]` with `out_heads_last` (the op's
/// result type), else `[.., L, Dv]`.
fn tiled_attention(b: &mut Builder, op: &AtenOp, operands: [(&Val, bool); 3], out_heads_last: bool) -> Result<Option<String>, String> {
    use super::attention::{attention, Tensor};
    let [q, k, v] = operands.map(|(x, heads_last)| Tensor { ssa: &x.ssa, ty: &x.ty, heads_last });
    let (q_ty, k_ty, v_ty) = (q.logical_type(), k.logical_type(), v.logical_type());
    let out_ty = if out_heads_last { super::attention::heads_swapped(op.result()) } else { op.result().clone() };
    let rank = q_ty.rank();
    let (l, s, d, dv) = (q_ty.shape[rank - 2], k_ty.shape[rank - 2], q_ty.shape[rank - 1], v_ty.shape[rank - 1]);
    let scale = attention_scale(op, d);
    let f32s = [&q_ty, &k_ty, &v_ty, &out_ty].iter().all(|t| t.elem == "f32");
    let same_batch = k_ty.shape[..rank - 2] == q_ty.shape[..rank - 2] && v_ty.shape[..rank - 2] == q_ty.shape[..rank - 2];
    let sizes = [l, s, d, dv].iter().all(|&n| n > 0) && q_ty.numel() > 0;
    let mask = op.opt_input("attn_mask");
    if !(f32s && same_batch && sizes && scale > 0.0 && mask.is_none_or(|m| mask_fits(&m.ty, &q_ty.shape, l, s))) {
        return Ok(None);
    }
    let causal = op.bool("is_causal", false)?;
    let mask = mask.map(|m| Tensor { ssa: &m.ssa, ty: &m.ty, heads_last: false });
    let result = if out_heads_last { op.result().clone() } else { q_ty.with_shape([&q_ty.shape[..rank - 2], &[l, dv][..]].concat()) };
    Ok(Some(attention(b.e, q, k, v, mask, scale, causal, &result, out_heads_last)))
}

/// sdpa's `scale`, by default 1 / sqrt(D) for queries of `d` features.
fn attention_scale(op: &AtenOp, d: i64) -> f64 {
    match op.attrs.get("scale") {
        Some(Attr::Float(s)) => *s,
        _ => 1.0 / (d as f64).sqrt(),
    }
}

/// Whether the tiled kernel takes `mask`: bool or f32, of rank 2 or more,
/// broadcastable to the scores [.., L, S] of a query of shape `query`.
fn mask_fits(mask: &Ty, query: &[i64], l: i64, s: i64) -> bool {
    let (r, mr) = (query.len(), mask.rank());
    let broadcasts = |dims: &[i64], to: &[i64]| dims.iter().zip(to).all(|(&a, &b)| a == 1 || a == b);
    (mask.elem == "i1" || mask.elem == "f32")
        && (2..=r).contains(&mr)
        && broadcasts(&mask.shape[..mr - 2], &query[r - mr..r - 2])
        && broadcasts(&mask.shape[mr - 2..], &[l, s])
}

fn not(b: &mut Builder, x: &Val) -> Result<Val, String> {
    b.call1("aten.logical_not", &[("self", x)], &[], x.ty.with_elem("i1"))
}

/// [.., H, S, D] -> [.., H*n, S, D], each head repeated n times in place.
fn repeat_heads(b: &mut Builder, x: &Val, n: i64) -> Result<Val, String> {
    let rank = x.ty.rank();
    let mut shape = x.ty.shape.clone();
    shape.insert(rank - 2, 1);
    let u = b.reshape(x, shape.clone())?;
    shape[rank - 2] = n;
    let ex = b.call1("aten.expand", &[("self", &u)], &[("size", Attr::Ints(shape.clone()))], u.ty.with_shape(shape.clone()))?;
    let mut merged = x.ty.shape.clone();
    merged[rank - 3] *= n;
    b.reshape(&ex, merged)
}

/// einsum(equation, tensors): each operand's labels are permuted into
/// (batch, free, contracted) order, multiplied with bmm, then permuted to
/// the output order. One or two operands; repeated labels within one
/// operand (traces) are not supported.
pub fn einsum(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let Some(Attr::Str(eq)) = op.attrs.get("equation") else { return Err("einsum: missing equation".into()) };
    let eq = eq.replace(' ', "");
    let (lhs, rhs) = eq.split_once("->").ok_or("einsum: only equations with '->' are supported")?;
    let inputs: Vec<&str> = lhs.split(',').collect();
    let tensors: Vec<Val> = op.operands.iter().filter(|o| o.arg == "tensors").map(Val::from).collect();
    if inputs.len() != tensors.len() || inputs.iter().any(|s| s.contains('.')) {
        return Err(format!("einsum '{eq}': ellipsis and operand-count mismatches are not supported"));
    }
    for (s, t) in inputs.iter().zip(&tensors) {
        let labels: Vec<char> = s.chars().collect();
        if labels.len() != t.ty.rank() || (1..labels.len()).any(|i| labels[..i].contains(&labels[i])) {
            return Err(format!("einsum '{eq}': operand '{s}' does not match {} or repeats a label", t.ty));
        }
    }
    let mut b = Builder::new(e, op);
    let out_labels: Vec<char> = rhs.chars().collect();
    let size_of = |c: char| -> i64 {
        for (s, t) in inputs.iter().zip(&tensors) {
            if let Some(p) = s.chars().position(|x| x == c) {
                return t.ty.shape[p];
            }
        }
        1
    };
    // sum out labels that appear in one operand only and not in the output
    let mut operands: Vec<(Vec<char>, Val)> = Vec::new();
    for (i, (s, t)) in inputs.iter().zip(&tensors).enumerate() {
        let labels: Vec<char> = s.chars().collect();
        let others: String = inputs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| *s).collect();
        let lonely: Vec<usize> =
            (0..labels.len()).filter(|&p| !out_labels.contains(&labels[p]) && !others.contains(labels[p])).collect();
        if lonely.is_empty() {
            operands.push((labels, t.clone()));
            continue;
        }
        let kept: Vec<char> = labels.iter().enumerate().filter(|(p, _)| !lonely.contains(p)).map(|(_, &c)| c).collect();
        let shape: Vec<i64> = kept.iter().map(|&c| size_of(c)).collect();
        let dims = Attr::Ints(lonely.iter().map(|&p| p as i64).collect());
        let summed = b.call1("aten.sum_dim_intlist", &[("self", t)], &[("dim", dims)], t.ty.with_shape(shape))?;
        operands.push((kept, summed));
    }
    let (labels, value) = if operands.len() == 1 {
        operands.remove(0)
    } else if operands.len() == 2 {
        let (la, a) = operands.remove(0);
        let (lb, bv) = operands.remove(0);
        let batch: Vec<char> = la.iter().copied().filter(|c| lb.contains(c) && out_labels.contains(c)).collect();
        let contracted: Vec<char> = la.iter().copied().filter(|c| lb.contains(c) && !out_labels.contains(c)).collect();
        let free_a: Vec<char> = la.iter().copied().filter(|c| !lb.contains(c)).collect();
        let free_b: Vec<char> = lb.iter().copied().filter(|c| !la.contains(c)).collect();
        let order = |labels: &[char], groups: &[&[char]]| -> Vec<usize> {
            groups.iter().flat_map(|g| g.iter().map(|c| labels.iter().position(|x| x == c).unwrap())).collect()
        };
        let prod = |g: &[char]| g.iter().map(|&c| size_of(c)).product::<i64>();
        let (nb, nm, nn, nk) = (prod(&batch), prod(&free_a), prod(&free_b), prod(&contracted));
        let pa = b.permute(&a, &order(&la, &[&batch, &free_a, &contracted]))?;
        let pa = b.reshape(&pa, vec![nb, nm, nk])?;
        let pb = b.permute(&bv, &order(&lb, &[&batch, &contracted, &free_b]))?;
        let pb = b.reshape(&pb, vec![nb, nk, nn])?;
        let elem = op.result().elem.clone();
        let pa = b.convert(&pa, &elem)?;
        let pb = b.convert(&pb, &elem)?;
        let mm = b.call1("aten.bmm", &[("self", &pa), ("mat2", &pb)], &[], Ty::new(vec![nb, nm, nn], &elem))?;
        let labels: Vec<char> = batch.iter().chain(&free_a).chain(&free_b).copied().collect();
        let shape: Vec<i64> = labels.iter().map(|&c| size_of(c)).collect();
        (labels.clone(), b.reshape(&mm, shape)?)
    } else {
        return Err(format!("einsum '{eq}': more than two operands are not supported"));
    };
    let perm: Vec<usize> = out_labels
        .iter()
        .map(|c| labels.iter().position(|x| x == c).ok_or(format!("einsum '{eq}': output label '{c}' has no source")))
        .collect::<Result<_, _>>()?;
    let r = b.permute(&value, &perm)?;
    let r = b.convert(&r, &op.result().elem)?;
    only_result(r)
}

/// pad(self, pad, mode, value): constant, reflect, replicate and circular.
pub fn pad(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mode = match op.attrs.get("mode") {
        Some(Attr::Str(m)) => m.clone(),
        _ => "constant".into(),
    };
    let x: Val = op.input("self")?.into();
    let pads = op.ints("pad", 1, &[])?;
    let mut b = Builder::new(e, op);
    let k = pads.len() / 2;
    let name = match mode.as_str() {
        "constant" => {
            let value = Attr::Float(op.float("value", 0.0).unwrap_or(0.0));
            return only_result(b.call1("aten.constant_pad_nd", &[("self", &x)], &[("pad", Attr::Ints(pads)), ("value", value)], op.result().clone())?);
        }
        "reflect" => format!("aten.reflection_pad{k}d"),
        "replicate" => format!("aten.replication_pad{k}d"),
        "circular" => "aten.pad_circular".to_string(),
        m => return Err(format!("{}: mode '{m}' is not supported", op.name)),
    };
    only_result(b.call1(&name, &[("self", &x)], &[("padding", Attr::Ints(pads))], op.result().clone())?)
}


/// rsub(self, other, alpha) = other - alpha * self
pub fn rsub(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let alpha = op.float("alpha", 1.0)?;
    let out = op.result().clone();
    let scaled = if alpha != 1.0 { b.scalar("aten.mul_scalar", &x, alpha)? } else { x };
    let neg = b.call1("aten.neg", &[("self", &scaled)], &[], scaled.ty.with_elem(&out.elem))?;
    let r = match op.opt_input("other") {
        Some(o) => b.binary("aten.add_tensor", &neg, &o.into(), &out.elem)?,
        None => b.call1("aten.add_scalar", &[("self", &neg)], &copy_attrs(op, &["other"]), out)?,
    };
    only_result(r)
}

/// floor_divide(self, other) = div(self, other, rounding_mode='floor')
pub fn floor_divide(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let (x, y): (Val, Val) = (op.input("self")?.into(), op.input("other")?.into());
    only_result(b.call1(
        "aten.div_tensor_mode",
        &[("self", &x), ("other", &y)],
        &[("rounding_mode", Attr::Str("floor".into()))],
        op.result().clone(),
    )?)
}

/// narrow(self, dim, start, length) = slice(self, dim, start, start + length)
pub fn narrow(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let x: Val = op.input("self")?.into();
    let (start, length) = (op.int("start", 0)?, op.int("length", 0)?);
    let start = if start < 0 { start + x.ty.shape[super::shape::normalize_dim(op.int("dim", 0)?, x.ty.rank())?] } else { start };
    only_result(b.call1(
        "aten.slice_tensor",
        &[("self", &x)],
        &[("dim", Attr::Int(op.int("dim", 0)?)), ("start", Attr::Int(start)), ("end", Attr::Int(start + length)), ("step", Attr::Int(1))],
        op.result().clone(),
    )?)
}

/// A slice of one dim: x[.., start:start+len, ..].
fn slice(b: &mut Builder, x: &Val, dim: usize, start: i64, len: i64) -> Result<Val, String> {
    let mut shape = x.ty.shape.clone();
    shape[dim] = len;
    let attrs = [("dim", Attr::Int(dim as i64)), ("start", Attr::Int(start)), ("end", Attr::Int(start + len)), ("step", Attr::Int(1))];
    b.call1("aten.slice_tensor", &[("self", x)], &attrs, x.ty.with_shape(shape))
}

/// x[.., i, ..] without the dim.
fn select(b: &mut Builder, x: &Val, dim: usize, i: i64) -> Result<Val, String> {
    let mut shape = x.ty.shape.clone();
    shape.remove(dim);
    b.call1("aten.select_int", &[("self", x)], &[("dim", Attr::Int(dim as i64)), ("index", Attr::Int(i))], x.ty.with_shape(shape))
}

fn cat(b: &mut Builder, parts: &[Val], dim: usize) -> Result<Val, String> {
    let mut shape = parts[0].ty.shape.clone();
    shape[dim] = parts.iter().map(|p| p.ty.shape[dim]).sum();
    let tensors: Vec<(&str, &Val)> = parts.iter().map(|p| ("tensors", p)).collect();
    b.call1("aten.cat", &tensors, &[("dim", Attr::Int(dim as i64))], parts[0].ty.with_shape(shape))
}

fn stack(b: &mut Builder, parts: &[Val], dim: usize) -> Result<Val, String> {
    let mut shape = parts[0].ty.shape.clone();
    shape.insert(dim, parts.len() as i64);
    let tensors: Vec<(&str, &Val)> = parts.iter().map(|p| ("tensors", p)).collect();
    b.call1("aten.stack", &tensors, &[("dim", Attr::Int(dim as i64))], parts[0].ty.with_shape(shape))
}

/// x @ w^T + bias for x: [B, K], w: [N, K].
fn linear(b: &mut Builder, x: &Val, w: &Val, bias: Option<&Val>) -> Result<Val, String> {
    let ty = x.ty.with_shape(vec![x.ty.shape[0], w.ty.shape[0]]);
    let mut tensors = vec![("input", x), ("weight", w)];
    if let Some(bias) = bias {
        tensors.push(("bias", bias));
    }
    b.call1("aten.linear", &tensors, &[], ty)
}

/// diff(self, n, dim, prepend?, append?): x[1:] - x[:-1] along dim, n times.
pub fn diff(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut b = Builder::new(e, op);
    let mut x: Val = op.input("self")?.into();
    let dim = super::shape::normalize_dim(op.int("dim", -1)?, x.ty.rank())?;
    let mut parts = Vec::new();
    if let Some(p) = op.opt_input("prepend") {
        parts.push(Val::from(p));
    }
    parts.push(x.clone());
    if let Some(a) = op.opt_input("append") {
        parts.push(Val::from(a));
    }
    if parts.len() > 1 {
        x = cat(&mut b, &parts, dim)?;
    }
    for _ in 0..op.int("n", 1)? {
        let len = x.ty.shape[dim] - 1;
        let hi = slice(&mut b, &x, dim, 1, len)?;
        let lo = slice(&mut b, &x, dim, 0, len)?;
        x = if x.ty.elem == "i1" {
            b.binary("aten.ne_tensor", &hi, &lo, "i1")?
        } else {
            b.binary("aten.sub_tensor", &hi, &lo, &x.ty.elem)?
        };
    }
    only_result(x)
}

/// The recurrent layers' shared structure: params per layer and direction,
/// the time loop, layer stacking, bidirectional concatenation.
struct Recurrence {
    layers: usize,
    directions: usize,
    batch_first: bool,
    has_biases: bool,
}

impl Recurrence {
    fn of(op: &AtenOp) -> Result<Self, String> {
        if op.bool("train", false)? && op.float("dropout", 0.0)? > 0.0 {
            return Err(format!("{}: dropout between layers in training mode is random", op.name));
        }
        Ok(Recurrence {
            layers: op.int("num_layers", 1)? as usize,
            directions: if op.bool("bidirectional", false)? { 2 } else { 1 },
            batch_first: op.bool("batch_first", false)?,
            has_biases: op.bool("has_biases", true)?,
        })
    }

    /// (w_ih, w_hh, b_ih?, b_hh?) of a layer and direction.
    fn weights(&self, params: &[Val], layer: usize, dir: usize) -> Result<(Val, Val, Option<Val>, Option<Val>), String> {
        let per = if self.has_biases { 4 } else { 2 };
        let base = (layer * self.directions + dir) * per;
        let p = |i: usize| params.get(base + i).cloned().ok_or_else(|| "recurrent layer: too few parameters".to_string());
        Ok(if self.has_biases { (p(0)?, p(1)?, Some(p(2)?), Some(p(3)?)) } else { (p(0)?, p(1)?, None, None) })
    }

    /// Runs every layer; `step(b, x_t, state, weights) -> state` where the
    /// state's first element is h. Returns (output, final states per layer*dir).
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        b: &mut Builder,
        input: &Val,
        params: &[Val],
        initial: &dyn Fn(&mut Builder, usize) -> Result<Vec<Val>, String>,
        step: &dyn Fn(&mut Builder, &Val, &[Val], &(Val, Val, Option<Val>, Option<Val>)) -> Result<Vec<Val>, String>,
    ) -> Result<(Val, Vec<Vec<Val>>), String> {
        let time_dim = if self.batch_first { 1 } else { 0 };
        let steps = input.ty.shape[time_dim];
        let mut x = input.clone();
        let mut finals = Vec::new();
        for layer in 0..self.layers {
            let mut outputs = Vec::new();
            for dir in 0..self.directions {
                let w = self.weights(params, layer, dir)?;
                let mut state = initial(b, layer * self.directions + dir)?;
                let mut hs = vec![None; steps as usize];
                let order: Vec<i64> = if dir == 0 { (0..steps).collect() } else { (0..steps).rev().collect() };
                for t in order {
                    let xt = select(b, &x, time_dim, t)?;
                    state = step(b, &xt, &state, &w)?;
                    hs[t as usize] = Some(state[0].clone());
                }
                let hs: Vec<Val> = hs.into_iter().map(|h| h.expect("every step ran")).collect();
                outputs.push(stack(b, &hs, time_dim)?);
                finals.push(state);
            }
            x = if outputs.len() == 1 { outputs.remove(0) } else { cat(b, &outputs, 2)? };
        }
        Ok((x, finals))
    }
}

fn gate(b: &mut Builder, gates: &Val, k: i64, hidden: i64) -> Result<Val, String> {
    slice(b, gates, 1, k * hidden, hidden)
}

/// `activation(gates[:, k*hidden:(k+1)*hidden])`
fn activated_gate(b: &mut Builder, gates: &Val, k: i64, hidden: i64, activation: &str) -> Result<Val, String> {
    let g = gate(b, gates, k, hidden)?;
    b.unary(activation, &g)
}

/// lstm.input(input, hx=[h0, c0], params, has_biases, num_layers, dropout,
/// train, bidirectional, batch_first) -> (output, h_n, c_n), unrolled over time.
pub fn lstm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let r = Recurrence::of(op)?;
    let mut b = Builder::new(e, op);
    let input: Val = op.input("input")?.into();
    let hx: Vec<Val> = op.operands.iter().filter(|o| o.arg == "hx").map(Val::from).collect();
    let params: Vec<Val> = op.operands.iter().filter(|o| o.arg == "params").map(Val::from).collect();
    let [h0, c0] = hx.as_slice() else { return Err("lstm: expected hx = [h0, c0]".into()) };
    let initial = |b: &mut Builder, i: usize| Ok(vec![select(b, h0, 0, i as i64)?, select(b, c0, 0, i as i64)?]);
    let step = |b: &mut Builder, x: &Val, s: &[Val], w: &(Val, Val, Option<Val>, Option<Val>)| {
        let hidden = s[0].ty.shape[1];
        let gi = linear(b, x, &w.0, w.2.as_ref())?;
        let gh = linear(b, &s[0], &w.1, w.3.as_ref())?;
        let g = b.binary("aten.add_tensor", &gi, &gh, &gi.ty.elem)?;
        let i = activated_gate(b, &g, 0, hidden, "aten.sigmoid")?;
        let f = activated_gate(b, &g, 1, hidden, "aten.sigmoid")?;
        let c_in = activated_gate(b, &g, 2, hidden, "aten.tanh")?;
        let o = activated_gate(b, &g, 3, hidden, "aten.sigmoid")?;
        let elem = g.ty.elem.clone();
        let fc = b.binary("aten.mul_tensor", &f, &s[1], &elem)?;
        let ic = b.binary("aten.mul_tensor", &i, &c_in, &elem)?;
        let c = b.binary("aten.add_tensor", &fc, &ic, &elem)?;
        let tc = b.unary("aten.tanh", &c)?;
        let h = b.binary("aten.mul_tensor", &o, &tc, &elem)?;
        Ok(vec![h, c])
    };
    let (out, finals) = r.run(&mut b, &input, &params, &initial, &step)?;
    let hn: Vec<Val> = finals.iter().map(|s| s[0].clone()).collect();
    let cn: Vec<Val> = finals.iter().map(|s| s[1].clone()).collect();
    let hn = stack(&mut b, &hn, 0)?;
    let cn = stack(&mut b, &cn, 0)?;
    Ok(vec![out.ssa, hn.ssa, cn.ssa])
}

/// gru.input(input, hx, params, has_biases, num_layers, dropout, train,
/// bidirectional, batch_first) -> (output, h_n), unrolled over time.
pub fn gru(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let r = Recurrence::of(op)?;
    let mut b = Builder::new(e, op);
    let input: Val = op.input("input")?.into();
    let h0: Val = op.input("hx")?.into();
    let params: Vec<Val> = op.operands.iter().filter(|o| o.arg == "params").map(Val::from).collect();
    let initial = |b: &mut Builder, i: usize| Ok(vec![select(b, &h0, 0, i as i64)?]);
    let step = |b: &mut Builder, x: &Val, s: &[Val], w: &(Val, Val, Option<Val>, Option<Val>)| {
        let hidden = s[0].ty.shape[1];
        let gi = linear(b, x, &w.0, w.2.as_ref())?;
        let gh = linear(b, &s[0], &w.1, w.3.as_ref())?;
        let elem = gi.ty.elem.clone();
        let (ir, iz, in_) = (gate(b, &gi, 0, hidden)?, gate(b, &gi, 1, hidden)?, gate(b, &gi, 2, hidden)?);
        let (hr, hz, hn) = (gate(b, &gh, 0, hidden)?, gate(b, &gh, 1, hidden)?, gate(b, &gh, 2, hidden)?);
        let rs = b.binary("aten.add_tensor", &ir, &hr, &elem)?;
        let zs = b.binary("aten.add_tensor", &iz, &hz, &elem)?;
        let rg = b.unary("aten.sigmoid", &rs)?;
        let z = b.unary("aten.sigmoid", &zs)?;
        let hn = b.binary("aten.mul_tensor", &rg, &hn, &elem)?;
        let ns = b.binary("aten.add_tensor", &in_, &hn, &elem)?;
        let n = b.unary("aten.tanh", &ns)?;
        // h' = n + z * (h - n)
        let d = b.binary("aten.sub_tensor", &s[0], &n, &elem)?;
        let zd = b.binary("aten.mul_tensor", &z, &d, &elem)?;
        Ok(vec![b.binary("aten.add_tensor", &n, &zd, &elem)?])
    };
    let (out, finals) = r.run(&mut b, &input, &params, &initial, &step)?;
    let hn: Vec<Val> = finals.iter().map(|s| s[0].clone()).collect();
    let hn = stack(&mut b, &hn, 0)?;
    Ok(vec![out.ssa, hn.ssa])
}
