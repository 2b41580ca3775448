//! Reductions: one `linalg.generic` whose reduced dims are "reduction"
//! iterators, accumulating in [`compute_elem`] of the result (so float16
//! sums run in f32, as torch's CPU kernels do). keepdim is a reshape of
//! the result only: inside softmax, the norms and logsumexp, a reduced
//! statistic is read through [`reduced_map`], never reshaped, so that the
//! whole chain stays one family of generics that tile and fuse row by row.
//! Softmax, variance, argmax and cumsum are built from the same pieces.

use super::elementwise::{convert, dim_list, filled, generic, map, map_indexed};
use super::scalar::{self, compute_elem, constant, literal};
use super::shape::{normalize_dim, reshape_value};
use super::{AtenOp, Attr, Emitter};
use crate::types::{is_float, Ty};

/// The dims an op reduces: its `dim` argument (int or list, negative
/// allowed); none or an empty list means all of them.
pub fn reduced_dims(op: &AtenOp, rank: usize) -> Result<Vec<usize>, String> {
    let dims = match op.attrs.get("dim") {
        None => vec![],
        Some(Attr::Int(d)) => vec![*d],
        Some(Attr::Ints(d)) => d.clone(),
        Some(other) => return Err(format!("{}: dim should be an int or a list, is {other:?}", op.name)),
    };
    if dims.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut out: Vec<usize> = dims.iter().map(|&d| normalize_dim(d, rank)).collect::<Result<_, _>>()?;
    out.sort_unstable();
    out.dedup();
    // A 0-d tensor reduced over dim 0 or -1 has nothing to reduce.
    Ok(out.into_iter().filter(|&d| d < rank).collect())
}

/// `x` reduced over `dims` (dropped from the shape), accumulating in `acc`
/// from `init`. `combine(e, value, accumulator, acc)` returns the new
/// accumulator; the value is already converted to `acc`.
pub fn reduce(
    e: &mut Emitter,
    x: &str,
    ty: &Ty,
    dims: &[usize],
    acc: &str,
    init: f64,
    combine: impl FnOnce(&mut Emitter, &str, &str, &str) -> String,
) -> (String, Ty) {
    let kept: Vec<usize> = (0..ty.rank()).filter(|d| !dims.contains(d)).collect();
    let out = Ty::new(kept.iter().map(|&d| ty.shape[d]).collect(), acc);
    let init_value = filled(e, &out, &literal(init, acc));
    let out_map = reduced_map(ty.rank(), dims);
    let iterators: Vec<&str> =
        (0..ty.rank()).map(|d| if dims.contains(&d) { "reduction" } else { "parallel" }).collect();
    let from = ty.elem.clone();
    let acc_elem = acc.to_string();
    let r = generic(
        e,
        &[(x.to_string(), ty.clone(), super::elementwise::identity_map(ty.rank()))],
        &init_value,
        &out,
        Some(out_map),
        &iterators,
        "",
        |e, a| {
            let v = scalar::cast(e, &a[0], &from, &acc_elem);
            combine(e, &v, &a[1], &acc_elem)
        },
    );
    (r, out)
}

/// The map from a rank-`rank` iteration space to a tensor reduced over
/// `dims` (those dims dropped): how a statistic is read at every point.
pub fn reduced_map(rank: usize, dims: &[usize]) -> String {
    let kept: Vec<String> = (0..rank).filter(|d| !dims.contains(d)).map(|d| format!("d{d}")).collect();
    format!("affine_map<({}) -> ({})>", dim_list(rank), kept.join(", "))
}

/// Checks the declared result of a reduction of `input` over `dims`: the
/// kept dims, with the reduced ones as size 1 when `keepdim` is set.
fn check_reduced(op: &AtenOp, input: &Ty, dims: &[usize]) -> Result<(), String> {
    let keepdim = op.bool("keepdim", false)?;
    let shape: Vec<i64> = input
        .shape
        .iter()
        .enumerate()
        .filter_map(|(d, &s)| if !dims.contains(&d) { Some(s) } else if keepdim { Some(1) } else { None })
        .collect();
    op.expect_shape(0, &shape)
}

/// Converts a reduced value to the op's result dtype and shape (keepdim or not).
pub(super) fn finish(e: &mut Emitter, value: &str, ty: &Ty, result: &Ty) -> String {
    let v = convert(e, value, ty, &result.elem);
    reshape_value(e, &v, &ty.with_elem(&result.elem), result)
}

fn reduction_op(
    e: &mut Emitter,
    op: &AtenOp,
    init: impl Fn(&str) -> f64,
    combine: fn(&mut Emitter, &str, &str, &str) -> String,
) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dims = reduced_dims(op, x.ty.rank())?;
    check_reduced(op, &x.ty, &dims)?;
    let acc = compute_elem(&op.result().elem).to_string();
    let (r, r_ty) = reduce(e, &x.ssa, &x.ty, &dims, &acc, init(&acc), combine);
    Ok(vec![finish(e, &r, &r_ty, op.result())])
}

/// sum.dim_IntList and sum.default (the result dtype carries `dtype=`).
pub fn sum(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    reduction_op(e, op, |_| 0.0, scalar::add)
}

pub fn prod(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    reduction_op(e, op, |_| 1.0, scalar::mul)
}

pub fn amax(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    reduction_op(e, op, scalar::lowest, scalar::max)
}

pub fn amin(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    reduction_op(e, op, scalar::highest, scalar::min)
}

/// any/all: reduce `!= 0` with or/and.
pub fn any_all(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dims = reduced_dims(op, x.ty.rank())?;
    let all = op.name.starts_with("aten.all");
    let (r, r_ty) = reduce(e, &x.ssa, &x.ty, &dims, "i1", if all { 1.0 } else { 0.0 }, move |e, v, a, _| {
        e.assign(format!("{} {v}, {a} : i1", if all { "arith.andi" } else { "arith.ori" }))
    });
    Ok(vec![finish(e, &r, &r_ty, op.result())])
}

/// The mean over `dims` in `acc` (reduced shape).
pub fn mean_of(e: &mut Emitter, x: &str, ty: &Ty, dims: &[usize], acc: &str) -> (String, Ty) {
    let (s, s_ty) = reduce(e, x, ty, dims, acc, 0.0, scalar::add);
    let count: i64 = dims.iter().map(|&d| ty.shape[d]).product();
    let acc_elem = acc.to_string();
    let m = map(e, &[(&s, &s_ty)], &s_ty, |e, a| {
        let n = constant(e, count as f64, &acc_elem);
        scalar::div(e, &a[0], &n, &acc_elem)
    });
    (m, s_ty)
}

/// mean.dim and mean.default.
pub fn mean(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dims = reduced_dims(op, x.ty.rank())?;
    let acc = compute_elem(&op.result().elem).to_string();
    let (m, m_ty) = mean_of(e, &x.ssa, &x.ty, &dims, &acc);
    Ok(vec![finish(e, &m, &m_ty, op.result())])
}

/// The sum of squared deviations from the mean over `dims`, and the mean
/// (both reduced shape, in `acc`).
pub fn squared_deviation(e: &mut Emitter, x: &str, ty: &Ty, dims: &[usize], acc: &str) -> (String, String, Ty) {
    let (mean, mean_ty) = mean_of(e, x, ty, dims, acc);
    let wide = ty.with_elem(acc);
    let from = ty.elem.clone();
    let acc_elem = acc.to_string();
    let identity = super::elementwise::identity_map(ty.rank());
    let centered = map_indexed(e, &[(x, ty, identity), (&mean, &mean_ty, reduced_map(ty.rank(), dims))], &wide, |e, a| {
        let v = scalar::cast(e, &a[0], &from, &acc_elem);
        let d = scalar::sub(e, &v, &a[1], &acc_elem);
        scalar::mul(e, &d, &d, &acc_elem)
    });
    let (ss, _) = reduce(e, &centered, &wide, dims, acc, 0.0, scalar::add);
    (ss, mean, mean_ty)
}

/// var.correction and var.dim (`unbiased`); std decomposes into sqrt(var).
pub fn var(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dims = reduced_dims(op, x.ty.rank())?;
    let correction = match op.attrs.get("correction") {
        Some(_) => op.float("correction", 1.0)?,
        None => op.bool("unbiased", true)? as i64 as f64,
    };
    let acc = compute_elem(&op.result().elem).to_string();
    let (ss, _, reduced) = squared_deviation(e, &x.ssa, &x.ty, &dims, &acc);
    let count: i64 = dims.iter().map(|&d| x.ty.shape[d]).product();
    let divisor = (count as f64 - correction).max(0.0);
    let acc_elem = acc.clone();
    let v = map(e, &[(&ss, &reduced)], &reduced, |e, a| {
        let n = constant(e, divisor, &acc_elem);
        scalar::div(e, &a[0], &n, &acc_elem)
    });
    Ok(vec![finish(e, &v, &reduced, op.result())])
}

/// argmax/argmin (one result) and max.dim/min.dim (values, indices).
/// NaN counts as the extreme value; ties keep the first index, as in torch.
pub fn arg_extreme(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let is_max = op.name.contains("max");
    let with_values = op.results.len() == 2;
    let (value, ty, dim) = match op.attrs.get("dim") {
        Some(Attr::Int(d)) => (x.ssa.clone(), x.ty.clone(), normalize_dim(*d, x.ty.rank())?),
        _ => {
            let flat = x.ty.with_shape(vec![x.ty.numel()]);
            (reshape_value(e, &x.ssa, &x.ty, &flat), flat, 0)
        }
    };
    let dim = if ty.rank() == 0 { None } else { Some(dim) };
    let kept: Vec<usize> = (0..ty.rank()).filter(|&d| Some(d) != dim).collect();
    let elem = ty.elem.clone();
    let out_shape: Vec<i64> = kept.iter().map(|&d| ty.shape[d]).collect();
    let val_ty = Ty::new(out_shape.clone(), &elem);
    let idx_ty = Ty::new(out_shape, "i64");
    let init_v = filled(e, &val_ty, &literal(if is_max { scalar::lowest(&elem) } else { scalar::highest(&elem) }, &elem));
    let init_i = filled(e, &idx_ty, "0");
    let rank = ty.rank();
    let out_map = format!(
        "affine_map<({}) -> ({})>",
        dim_list(rank),
        kept.iter().map(|d| format!("d{d}")).collect::<Vec<_>>().join(", ")
    );
    let iterators: Vec<String> =
        (0..rank).map(|d| if Some(d) == dim { "\"reduction\"" } else { "\"parallel\"" }.to_string()).collect();
    let rv = e.fresh();
    let (a, v, i) = (e.fresh(), e.fresh(), e.fresh());
    e.line(format!(
        "{rv}:2 = linalg.generic {{indexing_maps = [{}, {out_map}, {out_map}], iterator_types = [{}]}} ins({value} : {ty}) outs({init_v}, {init_i} : {val_ty}, {idx_ty}) {{",
        super::elementwise::identity_map(rank),
        iterators.join(", ")
    ));
    let t = crate::types::mlir_elem(&elem).to_string();
    e.line(format!("^bb0({a}: {t}, {v}: {t}, {i}: i64):"));
    e.indented(|e| {
        let k = match dim {
            Some(d) => {
                let k = e.assign(format!("linalg.index {d} : index"));
                e.assign(format!("arith.index_cast {k} : index to i64"))
            }
            None => constant(e, 0.0, "i64"),
        };
        let better = scalar::compare(e, if is_max { "gt" } else { "lt" }, &a, &v, &elem);
        let take = if is_float(&elem) {
            // a NaN beats everything but an earlier NaN
            let a_nan = scalar::is_nan(e, &a, &elem);
            let v_nan = scalar::is_nan(e, &v, &elem);
            let t = constant(e, 1.0, "i1");
            let v_num = e.assign(format!("arith.xori {v_nan}, {t} : i1"));
            let nan_first = e.assign(format!("arith.andi {a_nan}, {v_num} : i1"));
            let ordered_better = e.assign(format!("arith.andi {better}, {v_num} : i1"));
            e.assign(format!("arith.ori {nan_first}, {ordered_better} : i1"))
        } else {
            better
        };
        let nv = scalar::select(e, &take, &a, &v, &elem);
        let ni = scalar::select(e, &take, &k, &i, "i64");
        e.line(format!("linalg.yield {nv}, {ni} : {t}, i64"));
    });
    e.line(format!("}} -> ({val_ty}, {idx_ty})"));
    // keepdim or not, the result types say the final shapes.
    let indices = reshape_value(e, &format!("{rv}#1"), &idx_ty, op.results.last().expect("one result"));
    if with_values {
        let values = reshape_value(e, &format!("{rv}#0"), &val_ty, &op.results[0]);
        Ok(vec![values, indices])
    } else {
        Ok(vec![indices])
    }
}

/// softmax / log_softmax along `dim`, computed in f32 at least. An
/// internal `scale` attribute (> 0, from attention's decomposition) gives
/// softmax(scale * x), computed as exp(scale * (x - max x)) / sum.
pub fn softmax(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let scale = op.float("scale", 1.0)?;
    if scale <= 0.0 {
        return Err(format!("{}: the scale must be positive, is {scale}", op.name));
    }
    let dim = normalize_dim(op.int("dim", -1)?, x.ty.rank())?;
    let out = op.result().clone();
    let acc = compute_elem(&out.elem).to_string();
    let log = op.name.contains("log_softmax");
    let rank = x.ty.rank();
    let dims: Vec<usize> = if rank == 0 { vec![] } else { vec![dim] };
    let (identity, stat) = (super::elementwise::identity_map(rank), reduced_map(rank, &dims));
    let (m, m_ty) = reduce(e, &x.ssa, &x.ty, &dims, &acc, f64::NEG_INFINITY, scalar::max_of_finite);
    let wide = x.ty.with_elem(&acc);
    let from = x.ty.elem.clone();
    let a = acc.clone();
    // exp(x - max); a row of -inf gives NaN, as in torch
    let shifted = map_indexed(e, &[(&x.ssa, &x.ty, identity.clone()), (&m, &m_ty, stat.clone())], &wide, |e, v| {
        let xv = scalar::cast(e, &v[0], &from, &a);
        let d = scalar::sub(e, &xv, &v[1], &a);
        if scale == 1.0 {
            return d;
        }
        let s = constant(e, scale, &a);
        scalar::mul(e, &d, &s, &a)
    });
    let a = acc.clone();
    // x - max x <= 0 (scale > 0), or NaN
    let exps = map(e, &[(&shifted, &wide)], &wide, |e, v| scalar::exp_of_nonpositive(e, &v[0], &a));
    let (s, s_ty) = reduce(e, &exps, &wide, &dims, &acc, 0.0, scalar::add);
    let a = acc.clone();
    let out_elem = out.elem.clone();
    let r = if log {
        map_indexed(e, &[(&shifted, &wide, identity), (&s, &s_ty, stat)], &out, |e, v| {
            let l = scalar::math(e, "log", &[&v[1]], &a);
            let r = scalar::sub(e, &v[0], &l, &a);
            scalar::cast(e, &r, &a, &out_elem)
        })
    } else {
        // one division per row, then a multiply per element (as torch's
        // CPU kernel does): a vector division costs several multiplies
        let inverse = map(e, &[(&s, &s_ty)], &s_ty, |e, v| {
            let one = constant(e, 1.0, &a);
            scalar::div(e, &one, &v[0], &a)
        });
        let a = acc.clone();
        map_indexed(e, &[(&exps, &wide, identity), (&inverse, &s_ty, stat)], &out, |e, v| {
            let r = scalar::mul(e, &v[0], &v[1], &a);
            scalar::cast(e, &r, &a, &out_elem)
        })
    };
    Ok(vec![r])
}

/// logsumexp(self, dim, keepdim): max + log(sum(exp(x - max))).
pub fn logsumexp(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dims = reduced_dims(op, x.ty.rank())?;
    let acc = compute_elem(&op.result().elem).to_string();
    let rank = x.ty.rank();
    let (m, m_ty) = reduce(e, &x.ssa, &x.ty, &dims, &acc, f64::NEG_INFINITY, scalar::max_of_finite);
    // an infinite max (a row of -inf) is replaced by 0, so the result is
    // -inf (or inf), not NaN
    let a = acc.clone();
    let m = map(e, &[(&m, &m_ty)], &m_ty, |e, v| {
        let inf = constant(e, f64::INFINITY, &a);
        let ma = scalar::math(e, "absf", &[&v[0]], &a);
        let is_inf = scalar::compare(e, "eq", &ma, &inf, &a);
        let zero = constant(e, 0.0, &a);
        scalar::select(e, &is_inf, &zero, &v[0], &a)
    });
    let wide = x.ty.with_elem(&acc);
    let from = x.ty.elem.clone();
    let a = acc.clone();
    let identity = super::elementwise::identity_map(rank);
    let exps = map_indexed(e, &[(&x.ssa, &x.ty, identity), (&m, &m_ty, reduced_map(rank, &dims))], &wide, |e, v| {
        let xv = scalar::cast(e, &v[0], &from, &a);
        let d = scalar::sub(e, &xv, &v[1], &a);
        scalar::math(e, "exp", &[&d], &a)
    });
    let (s, s_ty) = reduce(e, &exps, &wide, &dims, &acc, 0.0, scalar::add);
    let a = acc.clone();
    let r = map(e, &[(&s, &s_ty), (&m, &m_ty)], &s_ty, |e, v| {
        let l = scalar::math(e, "log", &[&v[0]], &a);
        scalar::add(e, &l, &v[1], &a)
    });
    Ok(vec![finish(e, &r, &s_ty, op.result())])
}

/// cumsum(self, dim): a scan, one `scf.for` step per position along dim:
/// out[.., i, ..] = out[.., i - 1, ..] + x[.., i, ..], in the accumulator dtype.
pub fn cumsum(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let acc = compute_elem(&out.elem).to_string();
    let wide = convert(e, &x.ssa, &x.ty, &acc);
    let acc_ty = out.with_elem(&acc);
    if x.ty.rank() == 0 || x.ty.shape[normalize_dim(op.int("dim", 0)?, x.ty.rank())?] <= 1 {
        return Ok(vec![convert(e, &wide, &acc_ty, &out.elem)]);
    }
    let dim = normalize_dim(op.int("dim", 0)?, x.ty.rank())?;
    let r = scan(e, &wide, &acc_ty, dim, scalar::add);
    Ok(vec![convert(e, &r, &acc_ty, &out.elem)])
}

/// An inclusive scan of `x` along `dim` with `combine`. The running value
/// is carried in its own slice-sized tensor: reading the previous slice of
/// the result while writing the next would make bufferization copy (it
/// cannot prove that slices i - 1 and i do not overlap).
fn scan(e: &mut Emitter, x: &str, ty: &Ty, dim: usize, combine: fn(&mut Emitter, &str, &str, &str) -> String) -> String {
    let rank = ty.rank();
    let slice_ty = ty.with_shape(ty.shape.iter().enumerate().map(|(d, &s)| if d == dim { 1 } else { s }).collect());
    let sizes = slice_ty.shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let ones = vec!["1"; rank].join(", ");
    let at = |i: &str| -> String { (0..rank).map(|d| if d == dim { i.to_string() } else { "0".into() }).collect::<Vec<_>>().join(", ") };
    let iterators = vec!["parallel"; rank];
    let identity = super::elementwise::identity_map(rank);
    let copy_into = |e: &mut Emitter, from: &str, into: &str| {
        generic(e, &[(from.to_string(), slice_ty.clone(), identity.clone())], into, &slice_ty, None, &iterators, "", |_, v| v[0].clone())
    };
    let first = e.assign(format!("tensor.extract_slice {x}[{}] [{sizes}] [{ones}] : {ty} to {slice_ty}", at("0")));
    let carry_init = super::elementwise::empty(e, &slice_ty);
    let carry_init = copy_into(e, &first, &carry_init);
    let one = super::shape::index_const(e, 1);
    let n = super::shape::index_const(e, ty.shape[dim]);
    let (r, i, acc_arg, carry) = (e.fresh(), e.fresh(), e.fresh(), e.fresh());
    e.line(format!(
        "{r}:2 = scf.for {i} = {one} to {n} step {one} iter_args({acc_arg} = {x}, {carry} = {carry_init}) -> ({ty}, {slice_ty}) {{"
    ));
    e.indented(|e| {
        let cur = e.assign(format!("tensor.extract_slice {acc_arg}[{}] [{sizes}] [{ones}] : {ty} to {slice_ty}", at(&i)));
        let elem = ty.elem.clone();
        // the carry is updated in place, then copied into the result's slice:
        // no allocation inside the loop
        let next_carry = generic(e, &[(cur, slice_ty.clone(), identity.clone())], &carry, &slice_ty, None, &iterators, "", |e, v| {
            combine(e, &v[1], &v[0], &elem)
        });
        let next = e.assign(format!("tensor.insert_slice {next_carry} into {acc_arg}[{}] [{sizes}] [{ones}] : {slice_ty} into {ty}", at(&i)));
        e.line(format!("scf.yield {next}, {next_carry} : {ty}, {slice_ty}"));
    });
    e.line("}");
    format!("{r}#0")
}

/// linalg_vector_norm(self, ord, dim, keepdim): (sum |x|^p)^(1/p), max |x|
/// for inf, min |x| for -inf, count of nonzeros for 0.
pub fn vector_norm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dims = reduced_dims(op, x.ty.rank())?;
    let p = op.float("ord", 2.0)?;
    let acc = compute_elem(&op.result().elem).to_string();
    let wide = x.ty.with_elem(&acc);
    let from = x.ty.elem.clone();
    let a = acc.clone();
    let abs = map(e, &[(&x.ssa, &x.ty)], &wide, |e, v| {
        let xv = scalar::cast(e, &v[0], &from, &a);
        scalar::math(e, "absf", &[&xv], &a)
    });
    let (r, r_ty) = if p == f64::INFINITY {
        reduce(e, &abs, &wide, &dims, &acc, 0.0, scalar::max)
    } else if p == f64::NEG_INFINITY {
        reduce(e, &abs, &wide, &dims, &acc, f64::INFINITY, scalar::min)
    } else {
        let (s, s_ty) = reduce(e, &abs, &wide, &dims, &acc, 0.0, move |e, v, acc_v, t| {
            let term = if p == 0.0 {
                let zero = constant(e, 0.0, t);
                let nz = scalar::compare(e, "ne", v, &zero, t);
                scalar::cast(e, &nz, "i1", t)
            } else if p == 1.0 {
                v.to_string()
            } else if p == 2.0 {
                scalar::mul(e, v, v, t)
            } else {
                let pc = constant(e, p, t);
                scalar::math(e, "powf", &[v, &pc], t)
            };
            scalar::add(e, acc_v, &term, t)
        });
        let a = acc.clone();
        let root = map(e, &[(&s, &s_ty)], &s_ty, |e, v| {
            if p == 0.0 || p == 1.0 {
                v[0].clone()
            } else if p == 2.0 {
                scalar::math(e, "sqrt", &[&v[0]], &a)
            } else {
                let inv = constant(e, 1.0 / p, &a);
                scalar::math(e, "powf", &[&v[0], &inv], &a)
            }
        });
        (root, s_ty)
    };
    Ok(vec![finish(e, &r, &r_ty, op.result())])
}

/// The first k elements of `x` (sorted dim last) in sort order, by k passes
/// of an argmax-like reduction, each taking the best element after the one
/// the previous pass found: O(n k) instead of the rank method's O(n^2).
/// The passes are unrolled (k is small when this is used).
fn select_top(e: &mut Emitter, x: &str, ty: &Ty, k: i64, descending: bool) -> (String, String) {
    let rank = ty.rank();
    let elem = ty.elem.clone();
    let t = crate::types::mlir_elem(&elem).to_string();
    let lead_ty = ty.with_shape(ty.shape[..rank - 1].to_vec());
    let lead_idx = Ty::new(lead_ty.shape.clone(), "i64");
    let worst = literal(if descending { scalar::lowest(&elem) } else { scalar::highest(&elem) }, &elem);
    let all = dim_list(rank);
    let by_lead = format!("affine_map<({all}) -> ({})>", dim_list(rank - 1));
    let mut iterators: Vec<String> = (0..rank - 1).map(|_| "\"parallel\"".to_string()).collect();
    iterators.push("\"reduction\"".into());
    let mut passes: Vec<(String, String)> = Vec::new();
    for _ in 0..k {
        let (init_v, init_i) = (filled(e, &lead_ty, &worst), filled(e, &lead_idx, "-1"));
        let r = e.fresh();
        let (xa, acc_v, acc_i) = (e.fresh(), e.fresh(), e.fresh());
        let prev = passes.last().cloned();
        let (ins, types, maps, prev_args) = match &prev {
            Some((pv, pi)) => {
                let (a, b) = (e.fresh(), e.fresh());
                (format!("{x}, {pv}, {pi}"), format!("{ty}, {lead_ty}, {lead_idx}"), format!("{by_lead}, {by_lead}, "), Some((a, b)))
            }
            None => (x.to_string(), ty.to_string(), String::new(), None),
        };
        e.line(format!(
            "{r}:2 = linalg.generic {{indexing_maps = [affine_map<({all}) -> ({all})>, {maps}{by_lead}, {by_lead}], iterator_types = [{}]}} ins({ins} : {types}) outs({init_v}, {init_i} : {lead_ty}, {lead_idx}) {{",
            iterators.join(", ")
        ));
        let block_args = match &prev_args {
            Some((a, b)) => format!("{xa}: {t}, {a}: {t}, {b}: i64, {acc_v}: {t}, {acc_i}: i64"),
            None => format!("{xa}: {t}, {acc_v}: {t}, {acc_i}: i64"),
        };
        e.line(format!("^bb0({block_args}):"));
        e.indented(|e| {
            let j = e.assign(format!("linalg.index {} : index", rank - 1));
            let j = e.assign(format!("arith.index_cast {j} : index to i64"));
            let zero64 = constant(e, 0.0, "i64");
            let empty = scalar::compare(e, "lt", &acc_i, &zero64, "i64");
            let better = precedes(e, (&xa, &j), (&acc_v, &acc_i), &elem, descending);
            let mut take = e.assign(format!("arith.ori {empty}, {better} : i1"));
            if let Some((pv, pi)) = &prev_args {
                // only elements after the previous pass's
                let after = precedes(e, (pv, pi), (&xa, &j), &elem, descending);
                take = e.assign(format!("arith.andi {take}, {after} : i1"));
            }
            let v = scalar::select(e, &take, &xa, &acc_v, &elem);
            let i = scalar::select(e, &take, &j, &acc_i, "i64");
            e.line(format!("linalg.yield {v}, {i} : {t}, i64"));
        });
        e.line(format!("}} -> ({lead_ty}, {lead_idx})"));
        passes.push((format!("{r}#0"), format!("{r}#1")));
    }
    // the passes side by side along the last dim
    let mut slot_shape = lead_ty.shape.clone();
    slot_shape.push(1);
    let gather = |e: &mut Emitter, which: usize, lt: &Ty| -> String {
        let slot = lt.with_shape(slot_shape.clone());
        let parts: Vec<String> = passes.iter().map(|p| super::shape::reshape_value(e, if which == 0 { &p.0 } else { &p.1 }, lt, &slot)).collect();
        let mut out_shape = slot_shape.clone();
        out_shape[rank - 1] = k;
        let out = lt.with_shape(out_shape);
        let mut acc = super::elementwise::empty(e, &out);
        let sizes = slot_shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let ones = vec!["1"; rank].join(", ");
        for (c, part) in parts.iter().enumerate() {
            let at = (0..rank).map(|d| if d == rank - 1 { c.to_string() } else { "0".into() }).collect::<Vec<_>>().join(", ");
            acc = e.assign(format!("tensor.insert_slice {part} into {acc}[{at}] [{sizes}] [{ones}] : {slot} into {out}"));
        }
        acc
    };
    let values = gather(e, 0, &lead_ty);
    let indices = gather(e, 1, &lead_idx);
    (values, indices)
}

/// Whether element (value a, index ia) comes before (b, ib) in torch's
/// sort order: by value (NaN as the largest), ties by index.
fn precedes(e: &mut Emitter, (a, ia): (&str, &str), (b, ib): (&str, &str), elem: &str, descending: bool) -> String {
    let better = scalar::compare(e, if descending { "gt" } else { "lt" }, a, b, elem);
    let (better, equal) = if is_float(elem) {
        let (na, nb) = (scalar::is_nan(e, a, elem), scalar::is_nan(e, b, elem));
        let one = constant(e, 1.0, "i1");
        let (big, small) = if descending { (&na, &nb) } else { (&nb, &na) };
        let not_small = e.assign(format!("arith.xori {small}, {one} : i1"));
        let nan_order = e.assign(format!("arith.andi {big}, {not_small} : i1"));
        let better = e.assign(format!("arith.ori {better}, {nan_order} : i1"));
        let both_nan = e.assign(format!("arith.andi {na}, {nb} : i1"));
        let eq = scalar::compare(e, "eq", a, b, elem);
        (better, e.assign(format!("arith.ori {eq}, {both_nan} : i1")))
    } else {
        (better, scalar::compare(e, "eq", a, b, elem))
    };
    let earlier = scalar::compare(e, "lt", ia, ib, "i64");
    let tie = e.assign(format!("arith.andi {equal}, {earlier} : i1"));
    e.assign(format!("arith.ori {better}, {tie} : i1"))
}

/// sort(self, dim, descending) and topk(self, k, dim, largest, sorted):
/// each element's rank is the number of elements ordered before it (ties
/// by index, NaN as the largest value, as torch orders them), and output
/// position r takes the element of rank r. Quadratic in the sorted dim.
pub fn sort(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let rank = x.ty.rank();
    if rank == 0 {
        let zero = filled(e, &op.results[1], "0");
        return Ok(vec![x.ssa.clone(), zero]);
    }
    let dim = normalize_dim(op.int("dim", -1)?, rank)?;
    let topk = op.name == "aten.topk";
    let descending = if topk { op.bool("largest", true)? } else { op.bool("descending", false)? };
    // work with the sorted dim last
    let mut perm: Vec<usize> = (0..rank).filter(|&d| d != dim).collect();
    perm.push(dim);
    let inverse: Vec<usize> = (0..rank).map(|d| perm.iter().position(|&p| p == d).unwrap()).collect();
    let xt = super::shape::transpose_value(e, &x.ssa, &x.ty, &perm);
    let xt_ty = x.ty.with_shape(perm.iter().map(|&p| x.ty.shape[p]).collect());
    let n = xt_ty.shape[rank - 1];
    let k = if topk { op.int("k", n)? } else { n };
    let elem = x.ty.elem.clone();
    if k * 8 <= n && k <= 64 {
        // a few out of many (top-k over a vocabulary): k selection passes
        let (values, indices) = select_top(e, &xt, &xt_ty, k, descending);
        let mut shape = xt_ty.shape.clone();
        shape[rank - 1] = k;
        let values = super::shape::transpose_value(e, &values, &xt_ty.with_shape(shape.clone()), &inverse);
        let indices = super::shape::transpose_value(e, &indices, &Ty::new(shape, "i64"), &inverse);
        return Ok(vec![values, indices]);
    }
    let lead = dim_list(rank - 1);
    let sep = if rank > 1 { ", " } else { "" };
    // ranks: iteration (lead.., i, j)
    let rank_ty = xt_ty.with_elem("i64");
    let zeros = filled(e, &rank_ty, "0");
    let all = dim_list(rank + 1);
    let xi = format!("affine_map<({all}) -> ({lead}{sep}d{})>", rank - 1);
    let xj = format!("affine_map<({all}) -> ({lead}{sep}d{rank})>");
    let mut iterators = vec!["parallel"; rank];
    iterators.push("reduction");
    let el = elem.clone();
    let ranks = generic(
        e,
        &[(xt.clone(), xt_ty.clone(), xi.clone()), (xt.clone(), xt_ty.clone(), xj)],
        &zeros,
        &rank_ty,
        Some(xi.clone()),
        &iterators,
        "",
        |e, a| {
            let (vi, vj) = (&a[0], &a[1]);
            let i = e.assign(format!("linalg.index {} : index", rank - 1));
            let j = e.assign(format!("linalg.index {rank} : index"));
            let i = e.assign(format!("arith.index_cast {i} : index to i64"));
            let j = e.assign(format!("arith.index_cast {j} : index to i64"));
            let counts = precedes(e, (vj, &j), (vi, &i), &el, descending);
            let one = constant(e, 1.0, "i64");
            let inc = e.assign(format!("arith.addi {}, {one} : i64", a[2]));
            scalar::select(e, &counts, &inc, &a[2], "i64")
        },
    );
    // gather: iteration (lead.., r, i) with reduction over i
    let mut out_shape = xt_ty.shape.clone();
    out_shape[rank - 1] = k;
    let val_ty = xt_ty.with_shape(out_shape.clone());
    let idx_ty = rank_ty.with_shape(out_shape);
    let init_v = filled(e, &val_ty, &literal(0.0, &elem));
    let init_i = filled(e, &idx_ty, "0");
    let by_i = format!("affine_map<({all}) -> ({lead}{sep}d{rank})>");
    let by_r = format!("affine_map<({all}) -> ({lead}{sep}d{})>", rank - 1);
    let r = e.fresh();
    let (av, ar, ov, oi) = (e.fresh(), e.fresh(), e.fresh(), e.fresh());
    let t = crate::types::mlir_elem(&elem).to_string();
    e.line(format!(
        "{r}:2 = linalg.generic {{indexing_maps = [{by_i}, {by_i}, {by_r}, {by_r}], iterator_types = [{}]}} ins({xt}, {ranks} : {xt_ty}, {rank_ty}) outs({init_v}, {init_i} : {val_ty}, {idx_ty}) {{",
        iterators.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ")
    ));
    e.line(format!("^bb0({av}: {t}, {ar}: i64, {ov}: {t}, {oi}: i64):"));
    e.indented(|e| {
        let pos = e.assign(format!("linalg.index {} : index", rank - 1));
        let pos = e.assign(format!("arith.index_cast {pos} : index to i64"));
        let i = e.assign(format!("linalg.index {rank} : index"));
        let i = e.assign(format!("arith.index_cast {i} : index to i64"));
        let hit = scalar::compare(e, "eq", &ar, &pos, "i64");
        let v = scalar::select(e, &hit, &av, &ov, &elem);
        let idx = scalar::select(e, &hit, &i, &oi, "i64");
        e.line(format!("linalg.yield {v}, {idx} : {t}, i64"));
    });
    e.line(format!("}} -> ({val_ty}, {idx_ty})"));
    let values = super::shape::transpose_value(e, &format!("{r}#0"), &val_ty, &inverse);
    let indices = super::shape::transpose_value(e, &format!("{r}#1"), &idx_ty, &inverse);
    Ok(vec![values, indices])
}

/// The p-norm of a difference, reduced over the last iteration dim:
/// sum |d|^p then ^(1/p); p = inf is max |d|, p = 0 counts nonzeros.
fn distance_step(e: &mut Emitter, a: &str, b: &str, acc_v: &str, p: f64, t: &str) -> String {
    let d = scalar::sub(e, a, b, t);
    let ad = scalar::math(e, "absf", &[&d], t);
    if p == f64::INFINITY {
        return scalar::max(e, acc_v, &ad, t);
    }
    let term = if p == 0.0 {
        let zero = constant(e, 0.0, t);
        let nz = scalar::compare(e, "ne", &ad, &zero, t);
        scalar::cast(e, &nz, "i1", t)
    } else if p == 1.0 {
        ad
    } else if p == 2.0 {
        scalar::mul(e, &ad, &ad, t)
    } else {
        let pc = constant(e, p, t);
        scalar::math(e, "powf", &[&ad, &pc], t)
    };
    scalar::add(e, acc_v, &term, t)
}

fn distance_root(e: &mut Emitter, s: &str, p: f64, t: &str) -> String {
    if p == 0.0 || p == 1.0 || p == f64::INFINITY {
        s.to_string()
    } else if p == 2.0 {
        scalar::math(e, "sqrt", &[s], t)
    } else {
        let inv = constant(e, 1.0 / p, t);
        scalar::math(e, "powf", &[s, &inv], t)
    }
}

/// _cdist_forward(x1 [.., P, M], x2 [.., R, M], p, compute_mode) -> [.., P, R]
pub fn cdist(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (a, b) = (op.input("x1")?, op.input("x2")?);
    let p = op.float("p", 2.0)?;
    let out = op.result().clone();
    let acc = compute_elem(&out.elem).to_string();
    let rank = out.rank();
    let sep = if rank > 2 { ", " } else { "" };
    let all = dim_list(rank + 1);
    let (i, j, m) = (rank - 2, rank - 1, rank);
    // batch dims broadcast: a batch dim of size 1 reads index 0
    let batch = |t: &Ty| -> String {
        (0..rank - 2).map(|d| if t.shape[d] == 1 && out.shape[d] != 1 { "0".to_string() } else { format!("d{d}") }).collect::<Vec<_>>().join(", ")
    };
    let a_map = format!("affine_map<({all}) -> ({}{sep}d{i}, d{m})>", batch(&a.ty));
    let b_map = format!("affine_map<({all}) -> ({}{sep}d{j}, d{m})>", batch(&b.ty));
    let acc_ty = out.with_elem(&acc);
    let init = filled(e, &acc_ty, &literal(0.0, &acc));
    let mut iterators = vec!["parallel"; rank];
    iterators.push("reduction");
    let (ae, be, t) = (a.ty.elem.clone(), b.ty.elem.clone(), acc.clone());
    let s = generic(
        e,
        &[(a.ssa.clone(), a.ty.clone(), a_map), (b.ssa.clone(), b.ty.clone(), b_map)],
        &init,
        &acc_ty,
        Some(format!("affine_map<({all}) -> ({})>", dim_list(rank))),
        &iterators,
        "",
        |e, v| {
            let x = scalar::cast(e, &v[0], &ae, &t);
            let y = scalar::cast(e, &v[1], &be, &t);
            distance_step(e, &x, &y, &v[2], p, &t)
        },
    );
    let t = acc.clone();
    let out_elem = out.elem.clone();
    Ok(vec![map(e, &[(&s, &acc_ty)], &out, |e, v| {
        let r = distance_root(e, &v[0], p, &t);
        scalar::cast(e, &r, &t, &out_elem)
    })])
}

/// _pdist_forward(self [N, M], p) -> [N(N-1)/2]: distances of row pairs
/// i < j in row-major order; the pairs are tables computed here.
pub fn pdist(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let p = op.float("p", 2.0)?;
    let out = op.result().clone();
    let n = x.ty.shape[0];
    let acc = compute_elem(&out.elem).to_string();
    let pairs: Vec<(i64, i64)> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect();
    let table = |e: &mut Emitter, v: Vec<i64>| {
        let items: Vec<String> = v.iter().map(i64::to_string).collect();
        e.assign(format!("arith.constant dense<[{}]> : tensor<{}xi64>", items.join(", "), v.len()))
    };
    let acc_ty = out.with_elem(&acc);
    if pairs.is_empty() {
        return Ok(vec![super::elementwise::empty(e, &out)]);
    }
    let ti = table(e, pairs.iter().map(|p| p.0).collect());
    let tj = table(e, pairs.iter().map(|p| p.1).collect());
    let pt = Ty::new(vec![pairs.len() as i64], "i64");
    let m = x.ty.shape[1];
    let (xs, xt, t) = (x.ssa.clone(), x.ty.clone(), acc.clone());
    let out_elem = out.elem.clone();
    let r = super::shape::indexed(e, &acc_ty, |e, k| {
        let i = super::shape::extract(e, &ti, &pt, &[k[0].clone()]);
        let j = super::shape::extract(e, &tj, &pt, &[k[0].clone()]);
        let i = e.assign(format!("arith.index_cast {i} : i64 to index"));
        let j = e.assign(format!("arith.index_cast {j} : i64 to index"));
        let mut s = constant(e, 0.0, &t);
        for c in 0..m {
            let cc = super::shape::index_const(e, c);
            let a = super::shape::extract(e, &xs, &xt, &[i.clone(), cc.clone()]);
            let b = super::shape::extract(e, &xs, &xt, &[j.clone(), cc]);
            let a = scalar::cast(e, &a, &xt.elem, &t);
            let b = scalar::cast(e, &b, &xt.elem, &t);
            s = distance_step(e, &a, &b, &s, p, &t);
        }
        distance_root(e, &s, p, &t)
    });
    Ok(vec![convert(e, &r, &acc_ty, &out_elem)])
}
