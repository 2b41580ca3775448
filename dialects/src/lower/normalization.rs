//! Normalization: mean and variance over some dims (two passes, in f32 at
//! least), then `(x - mean) * rsqrt(var + eps) * weight + bias` with weight
//! and bias broadcast along their dims. Layer, batch, group, instance and
//! RMS norm differ only in which dims are reduced and how weight maps.
//! Evaluation-mode batch norm folds its statistics and parameters into a
//! per-channel scale and shift first: one FMA per element.

use super::elementwise::{dim_list, generic, identity_map};
use super::reduction::{mean_of, reduced_map, squared_deviation};
use super::scalar::{self, compute_elem, constant};
use super::shape::reshape_value;
use super::{AtenOp, Emitter, Operand};
use crate::types::Ty;

/// Normalizes `x` over `dims`, scaling by `weight`/`bias` indexed by the
/// dims `affine_dims` of x. Returns (out, mean, rstd) with mean and rstd
/// in `acc`, of the reduced shape (x's shape without `dims`).
#[allow(clippy::too_many_arguments)]
fn normalize(
    e: &mut Emitter,
    x: &Operand,
    dims: &[usize],
    stats: Option<(&str, &Ty, &str, &Ty)>,
    weight: Option<&Operand>,
    bias: Option<&Operand>,
    affine_dims: &[usize],
    eps: f64,
    out: &Ty,
) -> (String, String, String, Ty) {
    let acc = compute_elem(&out.elem).to_string();
    let reduced = Ty::new(x.ty.shape.iter().enumerate().filter(|(d, _)| !dims.contains(d)).map(|(_, &s)| s).collect(), &acc);
    // mean and variance: given (running stats) or computed over dims
    // the variance, or (with a count) the sum of squared deviations
    let (mean, var, count) = match stats {
        Some((m, m_ty, v, v_ty)) => {
            let m = super::elementwise::convert(e, m, m_ty, &acc);
            let m = reshape_value(e, &m, &m_ty.with_elem(&acc), &reduced);
            let v = super::elementwise::convert(e, v, v_ty, &acc);
            let v = reshape_value(e, &v, &v_ty.with_elem(&acc), &reduced);
            (m, v, None)
        }
        None => {
            let (ss, mean, _) = squared_deviation(e, &x.ssa, &x.ty, dims, &acc);
            let count: i64 = dims.iter().map(|&d| x.ty.shape[d]).product();
            (mean, ss, Some(count))
        }
    };
    let rstd = inverse_deviation(e, &var, &reduced, count, eps);
    let rank = x.ty.rank();
    let stat_map = reduced_map(rank, dims);
    let affine_map = format!(
        "affine_map<({}) -> ({})>",
        dim_list(rank),
        affine_dims.iter().map(|d| format!("d{d}")).collect::<Vec<_>>().join(", ")
    );
    let param_map = |t: &Operand| {
        if t.ty.rank() == affine_dims.len() { affine_map.clone() } else { super::elementwise::broadcast_map(&t.ty.shape, &x.ty.shape) }
    };
    let per_statistic = |t: &Option<&Operand>| t.is_none_or(|t| t.ty.shape == reduced.shape && param_map(t) == stat_map);
    if stats.is_some() && per_statistic(&weight) && per_statistic(&bias) {
        let r = fused_scale_and_shift(e, x, (&mean, &rstd, &reduced, &stat_map), weight, bias, &acc, out);
        return (r, mean, rstd, reduced);
    }
    let r = scale_and_shift(
        e,
        x,
        [(&mean, &reduced, stat_map.clone()), (&rstd, &reduced, stat_map)],
        [weight.map(|w| (w, param_map(w))), bias.map(|b| (b, param_map(b)))],
        &acc,
        out,
    );
    (r, mean, rstd, reduced)
}

/// rsqrt(var + eps), where var is `v`, or `v / count` when v is a sum of
/// squared deviations over `count` elements.
fn inverse_deviation(e: &mut Emitter, v: &str, ty: &Ty, count: Option<i64>, eps: f64) -> String {
    let a = ty.elem.clone();
    super::elementwise::map(e, &[(v, ty)], ty, |e, x| {
        let var = match count {
            Some(n) => {
                let n = constant(e, n as f64, &a);
                scalar::div(e, &x[0], &n, &a)
            }
            None => x[0].clone(),
        };
        let eps = constant(e, eps, &a);
        let s = scalar::add(e, &var, &eps, &a);
        scalar::math(e, "rsqrt", &[&s], &a)
    })
}

/// With given statistics (evaluation-mode batch norm), as torch's CPU
/// inference kernel computes it: per statistic `scale = rstd * weight` and
/// `shift = bias - mean * scale`, then `x * scale + shift`, one FMA per
/// element where `scale_and_shift` does four ops. The per-element pass is
/// usually fused into the convolution before it (a depthwise convolution's
/// taps are FMA-bound, so its epilogue's cost counts).
fn fused_scale_and_shift(
    e: &mut Emitter,
    x: &Operand,
    (mean, rstd, reduced, stat_map): (&str, &str, &Ty, &str),
    weight: Option<&Operand>,
    bias: Option<&Operand>,
    acc: &str,
    out: &Ty,
) -> String {
    let mut scale_inputs = vec![(rstd, reduced)];
    scale_inputs.extend(weight.map(|w| (w.ssa.as_str(), &w.ty)));
    let w_elem = weight.map(|w| w.ty.elem.clone());
    let scale = super::elementwise::map(e, &scale_inputs, reduced, |e, v| match &w_elem {
        Some(elem) => {
            let w = scalar::cast(e, &v[1], elem, acc);
            scalar::mul(e, &v[0], &w, acc)
        }
        None => v[0].clone(),
    });
    let mut shift_inputs = vec![(mean, reduced), (scale.as_str(), reduced)];
    shift_inputs.extend(bias.map(|b| (b.ssa.as_str(), &b.ty)));
    let b_elem = bias.map(|b| b.ty.elem.clone());
    let shift = super::elementwise::map(e, &shift_inputs, reduced, |e, v| {
        let moved = scalar::mul(e, &v[0], &v[1], acc);
        match &b_elem {
            Some(elem) => {
                let b = scalar::cast(e, &v[2], elem, acc);
                scalar::sub(e, &b, &moved, acc)
            }
            None => {
                let zero = constant(e, 0.0, acc);
                scalar::sub(e, &zero, &moved, acc)
            }
        }
    });
    let rank = x.ty.rank();
    let inputs = vec![
        (x.ssa.clone(), x.ty.clone(), identity_map(rank)),
        (scale, reduced.clone(), stat_map.to_string()),
        (shift, reduced.clone(), stat_map.to_string()),
    ];
    let init = super::elementwise::empty(e, out);
    let (from, out_elem) = (x.ty.elem.clone(), out.elem.clone());
    let ty = crate::types::mlir_elem(acc).to_string();
    generic(e, &inputs, &init, out, None, &vec!["parallel"; rank], "", |e, v| {
        let xv = scalar::cast(e, &v[0], &from, acc);
        let y = e.assign(format!("math.fma {xv}, {}, {} : {ty}", v[1], v[2]));
        scalar::cast(e, &y, acc, &out_elem)
    })
}

/// `(x - mean) * rstd * weight + bias` computed in `acc`, each statistic and
/// parameter read through its own indexing map over `out`'s dims.
fn scale_and_shift(
    e: &mut Emitter,
    x: &Operand,
    stats: [(&String, &Ty, String); 2],
    params: [Option<(&Operand, String)>; 2],
    acc: &str,
    out: &Ty,
) -> String {
    let rank = x.ty.rank();
    let mut inputs = vec![(x.ssa.clone(), x.ty.clone(), identity_map(rank))];
    for (v, t, m) in stats {
        inputs.push((v.clone(), t.clone(), m));
    }
    let present: Vec<bool> = params.iter().map(Option::is_some).collect();
    for (t, m) in params.into_iter().flatten() {
        inputs.push((t.ssa.clone(), t.ty.clone(), m));
    }
    let init = super::elementwise::empty(e, out);
    let (from, out_elem) = (x.ty.elem.clone(), out.elem.clone());
    let types: Vec<String> = inputs.iter().map(|(_, t, _)| t.elem.clone()).collect();
    generic(e, &inputs, &init, out, None, &vec!["parallel"; rank], "", |e, v| {
        let xv = scalar::cast(e, &v[0], &from, acc);
        let c = scalar::sub(e, &xv, &v[1], acc);
        let mut y = scalar::mul(e, &c, &v[2], acc);
        let mut next = 3;
        for (k, here) in present.iter().enumerate() {
            if !here {
                continue;
            }
            let p = scalar::cast(e, &v[next], &types[next], acc);
            y = if k == 0 { scalar::mul(e, &y, &p, acc) } else { scalar::add(e, &y, &p, acc) };
            next += 1;
        }
        scalar::cast(e, &y, acc, &out_elem)
    })
}

/// native_layer_norm(input, normalized_shape, weight?, bias?, eps) -> (out, mean, rstd)
/// and layer_norm (out only).
pub fn layer_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input")?;
    let n = op.ints("normalized_shape", 1, &[])?.len();
    let rank = x.ty.rank();
    if n > rank {
        return Err(format!("{}: normalized_shape has {n} dims, input {}", op.name, x.ty));
    }
    let dims: Vec<usize> = (rank - n..rank).collect();
    let eps = op.float("eps", 1e-5)?;
    let (out, mean, rstd, kept) =
        normalize(e, x, &dims, None, op.opt_input("weight"), op.opt_input("bias"), &dims, eps, op.result());
    let mut results = vec![out];
    for r in op.results.iter().skip(1) {
        let v = if results.len() == 1 { &mean } else { &rstd };
        let c = super::elementwise::convert(e, v, &kept, &r.elem);
        results.push(reshape_value(e, &c, &kept.with_elem(&r.elem), r));
    }
    Ok(results)
}

/// The batch-norm family, channel dim 1:
/// _native_batch_norm_legit_no_training (running stats), batch_norm,
/// _native_batch_norm_legit (batch stats; `.no_stats` has no running
/// stats), instance_norm (stats per sample and channel).
pub fn batch_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input")?;
    let rank = x.ty.rank();
    if rank < 2 {
        return Err(format!("{}: input must have a channel dim, got {}", op.name, x.ty));
    }
    let eps = op.float("eps", 1e-5)?;
    let instance = op.name == "aten.instance_norm";
    let training = match op.name.as_str() {
        "aten.native_batch_norm_legit_no_training" => false,
        "aten.native_batch_norm_legit" | "aten.native_batch_norm_legit_no_stats" | "aten.native_batch_norm_legit_functional" => {
            op.bool("training", true)?
        }
        _ if instance => op.bool("use_input_stats", true)?,
        _ => op.bool("training", false)?,
    };
    let dims: Vec<usize> = if instance { (2..rank).collect() } else { (0..rank).filter(|&d| d != 1).collect() };
    let running = match (op.opt_input("running_mean"), op.opt_input("running_var")) {
        (Some(m), Some(v)) if !training => Some((m.ssa.as_str(), &m.ty, v.ssa.as_str(), &v.ty)),
        (_, _) if !training => return Err(format!("{}: evaluation needs running_mean and running_var", op.name)),
        _ => None,
    };
    let (out, mean, rstd, kept) =
        normalize(e, x, &dims, running, op.opt_input("weight"), op.opt_input("bias"), &[1], eps, op.result());
    let mut results = vec![out];
    // save_mean / save_invstd: [C] in training, empty in evaluation
    for (k, r) in op.results.iter().enumerate().skip(1).take(2) {
        if r.numel() == 0 {
            results.push(super::elementwise::empty(e, r));
            continue;
        }
        let v = if k == 1 { &mean } else { &rstd };
        let c = super::elementwise::convert(e, v, &kept, &r.elem);
        results.push(reshape_value(e, &c, &kept.with_elem(&r.elem), r));
    }
    if op.results.len() == 5 {
        // _native_batch_norm_legit_functional also returns the updated
        // running statistics (the variance with Bessel's correction)
        let (rm, rv) = (op.input("running_mean")?, op.input("running_var")?);
        let momentum = op.float("momentum", 0.1)?;
        let acc = kept.elem.clone();
        let (ss, _, _) = squared_deviation(e, &x.ssa, &x.ty, &dims, &acc);
        let count: i64 = dims.iter().map(|&d| x.ty.shape[d]).product();
        let rm_k = reshape_value(e, &rm.ssa, &rm.ty, &kept.with_elem(&rm.ty.elem));
        let rv_k = reshape_value(e, &rv.ssa, &rv.ty, &kept.with_elem(&rv.ty.elem));
        for (old, old_ty, stat, unbias, r) in [
            (&rm_k, &rm.ty, &mean, 1.0, &op.results[3]),
            (&rv_k, &rv.ty, &ss, 1.0 / (count - 1).max(1) as f64, &op.results[4]),
        ] {
            let old_kept = kept.with_elem(&old_ty.elem);
            let (from, a) = (old_ty.elem.clone(), acc.clone());
            let updated = super::elementwise::map(e, &[(old, &old_kept), (stat, &kept)], &kept, |e, v| {
                let o = scalar::cast(e, &v[0], &from, &a);
                let keep = constant(e, 1.0 - momentum, &a);
                let take = constant(e, momentum * unbias, &a);
                let o = scalar::mul(e, &o, &keep, &a);
                let s = scalar::mul(e, &v[1], &take, &a);
                scalar::add(e, &o, &s, &a)
            });
            let c = super::elementwise::convert(e, &updated, &kept, &r.elem);
            results.push(reshape_value(e, &c, &kept.with_elem(&r.elem), r));
        }
    }
    Ok(results)
}

/// native_group_norm(input, weight?, bias?, N, C, HxW, group, eps) -> (out, mean, rstd)
/// and group_norm(input, num_groups, weight?, bias?, eps).
pub fn group_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input")?;
    let groups = if op.attrs.contains_key("group") { op.int("group", 1)? } else { op.int("num_groups", 1)? };
    let (n, c) = (x.ty.shape[0], x.ty.shape[1]);
    if groups <= 0 || c % groups != 0 {
        return Err(format!("{}: {c} channels do not split into {groups} groups", op.name));
    }
    // [N, C, *] viewed as [N, G, C/G * rest]; stats per (N, G)
    let grouped_ty = x.ty.with_shape(vec![n, groups, x.ty.numel() / (n * groups).max(1)]);
    let grouped = reshape_value(e, &x.ssa, &x.ty, &grouped_ty);
    let acc = compute_elem(&op.result().elem).to_string();
    let g = Operand { ssa: grouped, ty: grouped_ty.clone(), arg: "input".into() };
    let (ss, mean2, stat_ty) = squared_deviation(e, &g.ssa, &g.ty, &[2], &acc);
    let rstd2 = inverse_deviation(e, &ss, &stat_ty, Some(grouped_ty.shape[2]), op.float("eps", 1e-5)?);
    // Broadcast the [N, G] stats back over [N, C, *] by the channel's group.
    let rank = x.ty.rank();
    let per_group = c / groups;
    let stat_map = format!("affine_map<({}) -> (d0, d1 floordiv {per_group})>", dim_list(rank));
    let channel_map = format!("affine_map<({}) -> (d1)>", dim_list(rank));
    let (w, b) = (op.opt_input("weight"), op.opt_input("bias"));
    let r = scale_and_shift(
        e,
        x,
        [(&mean2, &stat_ty, stat_map.clone()), (&rstd2, &stat_ty, stat_map)],
        [w.map(|w| (w, channel_map.clone())), b.map(|b| (b, channel_map.clone()))],
        &acc,
        op.result(),
    );
    let mut results = vec![r];
    for (k, rt) in op.results.iter().enumerate().skip(1) {
        let v = if k == 1 { &mean2 } else { &rstd2 };
        let c = super::elementwise::convert(e, v, &stat_ty, &rt.elem);
        results.push(reshape_value(e, &c, &stat_ty.with_elem(&rt.elem), rt));
    }
    Ok(results)
}

/// rms_norm(input, normalized_shape, weight?, eps?): x * rsqrt(mean(x^2) + eps) * weight.
pub fn rms_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input")?;
    let n = op.ints("normalized_shape", 1, &[])?.len();
    let rank = x.ty.rank();
    let dims: Vec<usize> = (rank - n..rank).collect();
    let out = op.result().clone();
    let acc = compute_elem(&out.elem).to_string();
    // torch's default eps is the dtype's machine epsilon
    let eps = match op.attrs.get("eps") {
        Some(_) => op.float("eps", 0.0)?,
        None if out.elem == "f64" => f64::EPSILON,
        None if out.elem == "f16" => 0.0009765625,
        None if out.elem == "bf16" => 0.0078125,
        None => f32::EPSILON as f64,
    };
    let wide = x.ty.with_elem(&acc);
    let (from, a) = (x.ty.elem.clone(), acc.clone());
    let squares = super::elementwise::map(e, &[(&x.ssa, &x.ty)], &wide, |e, v| {
        let xv = scalar::cast(e, &v[0], &from, &a);
        scalar::mul(e, &xv, &xv, &a)
    });
    let (ms, reduced) = mean_of(e, &squares, &wide, &dims, &acc);
    let rstd = inverse_deviation(e, &ms, &reduced, None, eps);
    let identity = super::elementwise::identity_map(rank);
    let mut inputs: Vec<(&str, &Ty, String)> = vec![(&x.ssa, &x.ty, identity), (&rstd, &reduced, reduced_map(rank, &dims))];
    let w = op.opt_input("weight");
    if let Some(w) = w {
        inputs.push((&w.ssa, &w.ty, super::elementwise::broadcast_map(&w.ty.shape, &out.shape)));
    }
    let (from, out_elem) = (x.ty.elem.clone(), out.elem.clone());
    let w_elem = w.map(|w| w.ty.elem.clone());
    let r = super::elementwise::map_indexed(e, &inputs, &out, |e, v| {
        let xv = scalar::cast(e, &v[0], &from, &acc);
        let mut y = scalar::mul(e, &xv, &v[1], &acc);
        if let Some(we) = &w_elem {
            // torch rounds the normalized value to the input dtype before the weight
            let yr = scalar::cast(e, &y, &acc, &from);
            let yr = scalar::cast(e, &yr, &from, &acc);
            let wv = scalar::cast(e, &v[2], we, &acc);
            y = scalar::mul(e, &yr, &wv, &acc);
        }
        scalar::cast(e, &y, &acc, &out_elem)
    });
    Ok(vec![r])
}
