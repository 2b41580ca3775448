//! Shape and view ops: reshapes become collapse/expand (views after
//! bufferization), permutations become `linalg.transpose`.

use super::{AtenOp, Emitter};
use crate::types::Ty;

fn group(range: std::ops::Range<usize>) -> String {
    format!("[{}]", range.map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Reshapes `value` from `from` to `to` (same element count) through a
/// rank-1 view: collapse everything, then expand.
pub fn reshape_value(e: &mut Emitter, value: &str, from: &Ty, to: &Ty) -> String {
    if from.shape == to.shape {
        return value.to_string();
    }
    let flat_ty = from.with_shape(vec![from.numel()]);
    let flat = match from.rank() {
        1 => value.to_string(),
        0 => e.assign(format!("tensor.expand_shape {value} [] output_shape [1] : {from} into {flat_ty}")),
        r => e.assign(format!("tensor.collapse_shape {value} [{}] : {from} into {flat_ty}", group(0..r))),
    };
    match to.rank() {
        1 => flat,
        0 => e.assign(format!("tensor.collapse_shape {flat} [] : {flat_ty} into {to}")),
        r => {
            let dims: Vec<String> = to.shape.iter().map(i64::to_string).collect();
            e.assign(format!(
                "tensor.expand_shape {flat} [{}] output_shape [{}] : {flat_ty} into {to}",
                group(0..r),
                dims.join(", ")
            ))
        }
    }
}

/// view, reshape, flatten, _unsafe_view: the result type says the shape.
pub fn reshape(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    Ok(vec![reshape_value(e, &x.ssa, &x.ty, op.result())])
}

/// Materializes `value` with its dims permuted (`out[i] = in[perm[i]]`).
pub fn transpose_value(e: &mut Emitter, value: &str, ty: &Ty, perm: &[usize]) -> String {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return value.to_string();
    }
    let out = ty.with_shape(perm.iter().map(|&p| ty.shape[p]).collect());
    let init = super::elementwise::empty(e, &out);
    let perm: Vec<String> = perm.iter().map(usize::to_string).collect();
    e.assign(format!(
        "linalg.transpose ins({value} : {ty}) outs({init} : {out}) permutation = [{}]",
        perm.join(", ")
    ))
}

/// permute(dims) and t().
pub fn permute(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let rank = x.ty.rank();
    let perm: Vec<usize> = if op.name == "aten.t" {
        if rank < 2 {
            (0..rank).collect()
        } else {
            vec![1, 0]
        }
    } else {
        op.ints("dims", rank, &[])?
            .iter()
            .map(|&d| normalize_dim(d, rank))
            .collect::<Result<_, _>>()?
    };
    if perm.len() != rank {
        return Err(format!("{}: {} dims for a rank-{rank} tensor", op.name, perm.len()));
    }
    Ok(vec![transpose_value(e, &x.ssa, &x.ty, &perm)])
}

/// A possibly negative dim index, checked against the rank.
pub fn normalize_dim(dim: i64, rank: usize) -> Result<usize, String> {
    let r = rank.max(1) as i64;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(format!("dim {dim} is out of range for rank {rank}"));
    }
    Ok(d as usize)
}

/// A tensor of type `out` whose element at each index is computed by
/// `body` from the index values (`index` type), usually with
/// `tensor.extract` from tensors defined outside: gathers, pads, upsampling.
pub fn indexed(e: &mut Emitter, out: &Ty, body: impl FnOnce(&mut Emitter, &[String]) -> String) -> String {
    let init = super::elementwise::empty(e, out);
    let iterators = vec!["parallel"; out.rank()];
    super::elementwise::generic(e, &[], &init, out, None, &iterators, "", |e, _| {
        let idx: Vec<String> = (0..out.rank()).map(|d| e.assign(format!("linalg.index {d} : index"))).collect();
        body(e, &idx)
    })
}

/// `tensor.extract %t[%i...]`.
pub fn extract(e: &mut Emitter, t: &str, ty: &Ty, idx: &[String]) -> String {
    e.assign(format!("tensor.extract {t}[{}] : {ty}", idx.join(", ")))
}

/// An index constant.
pub fn index_const(e: &mut Emitter, v: i64) -> String {
    e.assign(format!("arith.constant {v} : index"))
}

/// Emits `out[..] = x[map(..)]` for an affine map from output to input indices.
/// (Each source index is an `affine.apply` of the output index, read with
/// `tensor.extract`: an input map would let linalg infer the loop bounds
/// from the input, and reject views that read only part of it.)
pub fn affine_view(e: &mut Emitter, x: &str, ty: &Ty, out: &Ty, exprs: &[String]) -> String {
    let dims = super::elementwise::dim_list(out.rank());
    let (x, ty) = (x.to_string(), ty.clone());
    indexed(e, out, |e, idx| {
        let src: Vec<String> = exprs
            .iter()
            .map(|expr| e.assign(format!("affine.apply affine_map<({dims}) -> ({expr})>({})", idx.join(", "))))
            .collect();
        extract(e, &x, &ty, &src)
    })
}

/// torch's clamping of slice bounds: negative counts from the end, then
/// clamp to [0, size]; a missing end is the size.
fn slice_bound(v: Option<i64>, default: i64, size: i64) -> i64 {
    let v = v.unwrap_or(default);
    let v = if v < 0 { v + size } else { v };
    v.clamp(0, size)
}

/// `tensor.extract_slice` of one dim: [start, start + len*step) by step.
pub fn slice_dim(e: &mut Emitter, x: &str, ty: &Ty, dim: usize, start: i64, len: i64, step: i64) -> (String, Ty) {
    let out = ty.with_shape(ty.shape.iter().enumerate().map(|(d, &s)| if d == dim { len } else { s }).collect());
    if out.shape == ty.shape && start == 0 {
        return (x.to_string(), ty.clone());
    }
    if out.numel() == 0 {
        // an empty slice reads nothing (and its offset may be the dim's end)
        return (super::elementwise::empty(e, &out), out);
    }
    let offsets: Vec<String> = (0..ty.rank()).map(|d| if d == dim { start } else { 0 }.to_string()).collect();
    let sizes: Vec<String> = out.shape.iter().map(i64::to_string).collect();
    let strides: Vec<String> = (0..ty.rank()).map(|d| if d == dim { step } else { 1 }.to_string()).collect();
    let r = e.assign(format!(
        "tensor.extract_slice {x}[{}] [{}] [{}] : {ty} to {out}",
        offsets.join(", "),
        sizes.join(", "),
        strides.join(", ")
    ));
    (r, out)
}

/// slice.Tensor(self, dim, start?, end?, step)
pub fn slice(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dim = normalize_dim(op.int("dim", 0)?, x.ty.rank())?;
    let size = x.ty.shape[dim];
    let start = slice_bound(op.attrs.get("start").and_then(as_int), 0, size);
    let step = op.int("step", 1)?;
    if step < 1 {
        return Err(format!("{}: slice step must be positive, got {step}", op.name));
    }
    let len = op.result().shape[dim];
    let (r, r_ty) = slice_dim(e, &x.ssa, &x.ty, dim, start, len, step);
    Ok(vec![reshape_value(e, &r, &r_ty, op.result())])
}

fn as_int(a: &super::Attr) -> Option<i64> {
    match a {
        super::Attr::Int(v) => Some(*v),
        _ => None,
    }
}

/// select.int(self, dim, index): a slice of size 1 without the dim.
pub fn select(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dim = normalize_dim(op.int("dim", 0)?, x.ty.rank())?;
    let size = x.ty.shape[dim];
    let index = op.int("index", 0)?;
    let i = if index < 0 { index + size } else { index };
    if i < 0 || i >= size {
        return Err(format!("{}: index {index} is out of range for dim {dim} of size {size}", op.name));
    }
    let (r, r_ty) = slice_dim(e, &x.ssa, &x.ty, dim, i, 1, 1);
    Ok(vec![reshape_value(e, &r, &r_ty, op.result())])
}

/// split_with_sizes, split.Tensor, chunk, unbind, tensor_split: consecutive
/// slices along `dim`, their sizes read from the result types.
pub fn split(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let dim = normalize_dim(op.int("dim", 0)?, x.ty.rank())?;
    let unbind = op.name.starts_with("aten.unbind");
    let mut start = 0;
    let mut out = Vec::new();
    for r in &op.results {
        let len = if unbind { 1 } else { r.shape[dim] };
        let (s, s_ty) = slice_dim(e, &x.ssa, &x.ty, dim, start, len, 1);
        out.push(reshape_value(e, &s, &s_ty, r));
        start += len;
    }
    Ok(out)
}

/// expand(self, size): broadcast to the result shape.
pub fn expand(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let r = super::elementwise::map(e, &[(&x.ssa, &x.ty)], &out, |_, a| a[0].clone());
    Ok(vec![r])
}

/// transpose.int(self, dim0, dim1)
pub fn transpose(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let rank = x.ty.rank();
    if rank < 2 {
        return Ok(vec![x.ssa.clone()]);
    }
    let (a, b) = (normalize_dim(op.int("dim0", 0)?, rank)?, normalize_dim(op.int("dim1", 1)?, rank)?);
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(a, b);
    Ok(vec![transpose_value(e, &x.ssa, &x.ty, &perm)])
}

/// cat(tensors, dim): each input inserted at its offset (empty 1-D inputs,
/// which torch allows in any cat, are skipped).
pub fn cat(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let out = op.result().clone();
    let dim = normalize_dim(op.int("dim", 0)?, out.rank())?;
    let stack = op.name == "aten.stack";
    let mut acc = super::elementwise::empty(e, &out);
    let mut offset = 0;
    for t in op.operands.iter().filter(|o| o.arg == "tensors") {
        if !stack && t.ty.rank() == 1 && t.ty.shape[0] == 0 && out.rank() != 1 {
            continue;
        }
        if t.ty.numel() == 0 {
            // an empty piece adds nothing; its offset may be the dim's end
            offset += if stack { 1 } else { t.ty.shape.get(dim).copied().unwrap_or(0) };
            continue;
        }
        // stack inserts each input as a slice of size 1 along the new dim
        let piece_ty = if stack {
            let mut s = t.ty.shape.clone();
            s.insert(dim, 1);
            t.ty.with_shape(s)
        } else {
            t.ty.clone()
        };
        let piece = reshape_value(e, &t.ssa, &t.ty, &piece_ty);
        let piece = super::elementwise::convert(e, &piece, &piece_ty, &out.elem);
        let piece_ty = piece_ty.with_elem(&out.elem);
        let offsets: Vec<String> = (0..out.rank()).map(|d| if d == dim { offset } else { 0 }.to_string()).collect();
        let sizes: Vec<String> = piece_ty.shape.iter().map(i64::to_string).collect();
        let ones = vec!["1"; out.rank()].join(", ");
        acc = e.assign(format!(
            "tensor.insert_slice {piece} into {acc}[{}] [{}] [{ones}] : {piece_ty} into {out}",
            offsets.join(", "),
            sizes.join(", ")
        ));
        offset += piece_ty.shape[dim];
    }
    Ok(vec![acc])
}

/// repeat(self, repeats): out[i] = x[i mod size] (new leading dims dropped).
pub fn repeat(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let lead = out.rank() - x.ty.rank();
    let exprs: Vec<String> = x.ty.shape.iter().enumerate().map(|(i, &s)| format!("d{} mod {s}", i + lead)).collect();
    Ok(vec![affine_view(e, &x.ssa, &x.ty, &out, &exprs)])
}

/// flip(self, dims)
pub fn flip(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let rank = x.ty.rank();
    let dims: Vec<usize> = op.ints("dims", rank, &[])?.iter().map(|&d| normalize_dim(d, rank)).collect::<Result<_, _>>()?;
    let exprs: Vec<String> = (0..rank)
        .map(|d| if dims.contains(&d) { format!("{} - d{d}", x.ty.shape[d] - 1) } else { format!("d{d}") })
        .collect();
    Ok(vec![affine_view(e, &x.ssa, &x.ty, op.result(), &exprs)])
}

/// roll(self, shifts, dims): out[i] = x[(i - shift) mod size]; no dims rolls the flat tensor.
pub fn roll(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let rank = x.ty.rank();
    let shifts = op.ints("shifts", 1, &[])?;
    let dims = op.ints("dims", 1, &[])?;
    if dims.is_empty() {
        let flat = x.ty.with_shape(vec![x.ty.numel()]);
        let f = reshape_value(e, &x.ssa, &x.ty, &flat);
        let n = flat.shape[0].max(1);
        let s = shifts.first().copied().unwrap_or(0).rem_euclid(n);
        let r = affine_view(e, &f, &flat, &flat, &[format!("(d0 + {}) mod {n}", n - s)]);
        return Ok(vec![reshape_value(e, &r, &flat, op.result())]);
    }
    let mut exprs: Vec<String> = (0..rank).map(|d| format!("d{d}")).collect();
    for (s, d) in shifts.iter().zip(&dims) {
        let d = normalize_dim(*d, rank)?;
        let n = x.ty.shape[d].max(1);
        exprs[d] = format!("(d{d} + {}) mod {n}", n - s.rem_euclid(n));
    }
    Ok(vec![affine_view(e, &x.ssa, &x.ty, op.result(), &exprs)])
}

/// as_strided(self, size, stride, storage_offset) over the contiguous storage of self.
pub fn as_strided(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let stride = op.ints("stride", out.rank(), &[])?;
    let offset = op.int("storage_offset", 0)?;
    let numel = x.ty.numel();
    let last: i64 = offset + out.shape.iter().zip(&stride).map(|(&s, &st)| (s - 1).max(0) * st).sum::<i64>();
    if out.numel() > 0 && (last >= numel || offset < 0 || stride.iter().any(|&s| s < 0)) {
        return Err(format!("{}: the view reaches element {last} of a {numel}-element tensor", op.name));
    }
    let flat = x.ty.with_shape(vec![numel]);
    let f = reshape_value(e, &x.ssa, &x.ty, &flat);
    let mut expr = offset.to_string();
    for (d, st) in stride.iter().enumerate() {
        expr += &format!(" + d{d} * {st}");
    }
    Ok(vec![affine_view(e, &f, &flat, &out, &[expr])])
}

/// diagonal(self, offset, dim1=0, dim2=1) and linalg_diagonal(A, offset,
/// dim1=-2, dim2=-1): the other dims, then the diagonal.
pub fn diagonal(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let linalg = op.name == "aten.linalg_diagonal";
    let x = op.input(if linalg { "A" } else { "self" })?;
    let rank = x.ty.rank();
    let (first, second) = if linalg { (-2, -1) } else { (0, 1) };
    let (d1, d2) = (normalize_dim(op.int("dim1", first)?, rank)?, normalize_dim(op.int("dim2", second)?, rank)?);
    if d1 == d2 {
        return Err(format!("{}: dim1 and dim2 are both {d1}", op.name));
    }
    let offset = op.int("offset", 0)?;
    let out = op.result().clone();
    let diag = out.rank() - 1;
    let mut other = 0;
    let exprs: Vec<String> = (0..rank)
        .map(|d| {
            if d == d1 {
                format!("d{diag} + {}", (-offset).max(0))
            } else if d == d2 {
                format!("d{diag} + {}", offset.max(0))
            } else {
                other += 1;
                format!("d{}", other - 1)
            }
        })
        .collect();
    Ok(vec![affine_view(e, &x.ssa, &x.ty, &out, &exprs)])
}

/// triu/tril(self, diagonal): zero below/above the diagonal of the last two dims.
pub fn triangle(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let k = op.int("diagonal", 0)?;
    let upper = op.name == "aten.triu";
    let out = op.result().clone();
    let rank = out.rank();
    if rank < 2 {
        return Err(format!("{}: needs at least 2 dims, got {}", op.name, x.ty));
    }
    let elem = out.elem.clone();
    let init = super::elementwise::empty(e, &out);
    let iterators = vec!["parallel"; rank];
    let r = super::elementwise::generic(
        e,
        &[(x.ssa.clone(), x.ty.clone(), super::elementwise::identity_map(rank))],
        &init,
        &out,
        None,
        &iterators,
        "",
        |e, a| {
            let i = e.assign(format!("linalg.index {} : index", rank - 2));
            let j = e.assign(format!("linalg.index {} : index", rank - 1));
            let i = e.assign(format!("arith.index_cast {i} : index to i64"));
            let j = e.assign(format!("arith.index_cast {j} : index to i64"));
            let d = e.assign(format!("arith.subi {j}, {i} : i64"));
            let kc = super::scalar::constant(e, k as f64, "i64");
            // triu keeps j - i >= k, tril keeps j - i <= k
            let keep = super::scalar::compare(e, if upper { "ge" } else { "le" }, &d, &kc, "i64");
            let zero = super::scalar::constant(e, 0.0, &elem);
            super::scalar::select(e, &keep, &a[0], &zero, &elem)
        },
    );
    Ok(vec![r])
}

/// constant_pad_nd(self, pad, value): pairs (low, high) from the last dim
/// backwards; negative amounts crop.
pub fn constant_pad(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let pad = op.ints("pad", 1, &[])?;
    let value = op.float("value", 0.0)?;
    let (low, high) = pad_amounts(&pad, x.ty.rank(), &op.name)?;
    // crop first (negative pads), then pad
    let mut v = x.ssa.clone();
    let mut ty = x.ty.clone();
    for d in 0..ty.rank() {
        let (lo, hi) = (low[d].min(0), high[d].min(0));
        if lo < 0 || hi < 0 {
            let len = ty.shape[d] + lo + hi;
            (v, ty) = slice_dim(e, &v, &ty, d, -lo, len, 1);
        }
    }
    let low: Vec<i64> = low.iter().map(|&p| p.max(0)).collect();
    let high: Vec<i64> = high.iter().map(|&p| p.max(0)).collect();
    Ok(vec![pad_value(e, &v, &ty, &low, &high, &super::scalar::literal(value, &ty.elem))])
}

/// Per-dim (low, high) amounts from torch's pad list (last dim first).
pub fn pad_amounts(pad: &[i64], rank: usize, op: &str) -> Result<(Vec<i64>, Vec<i64>), String> {
    if pad.len() % 2 != 0 || pad.len() / 2 > rank {
        return Err(format!("{op}: pad list {pad:?} does not fit a rank-{rank} tensor"));
    }
    let mut low = vec![0; rank];
    let mut high = vec![0; rank];
    for (i, pair) in pad.chunks(2).enumerate() {
        low[rank - 1 - i] = pair[0];
        high[rank - 1 - i] = pair[1];
    }
    Ok((low, high))
}

/// The type of `ty` padded by `low` and `high` elements per dim.
pub fn padded_ty(ty: &Ty, low: &[i64], high: &[i64]) -> Ty {
    ty.with_shape(ty.shape.iter().enumerate().map(|(d, &s)| s + low[d] + high[d]).collect())
}

/// `tensor.pad` with a constant (an MLIR literal of the element type).
pub fn pad_value(e: &mut Emitter, x: &str, ty: &Ty, low: &[i64], high: &[i64], value: &str) -> String {
    if low.iter().chain(high).all(|&p| p == 0) {
        return x.to_string();
    }
    let out = padded_ty(ty, low, high);
    let elem = crate::types::mlir_elem(&ty.elem);
    let c = e.assign(format!("arith.constant {value} : {elem}"));
    let r = e.fresh();
    let idx: Vec<String> = (0..ty.rank()).map(|_| e.fresh()).collect();
    let join = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    e.line(format!("{r} = tensor.pad {x} low[{}] high[{}] {{", join(low), join(high)));
    e.line(format!("^bb0({}):", idx.iter().map(|i| format!("{i}: index")).collect::<Vec<_>>().join(", ")));
    e.indented(|e| e.line(format!("tensor.yield {c} : {elem}")));
    e.line(format!("}} : {ty} to {out}"));
    r
}

/// reflection_pad{1,2,3}d, replication_pad{1,2,3}d and _pad_circular: each
/// padded dim reads a reflected, clamped or wrapped-around source index.
pub fn edge_pad(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let reflect = op.name.contains("reflection");
    let circular = op.name.contains("circular");
    let pad = if op.attrs.contains_key("padding") { op.ints("padding", 1, &[])? } else { op.ints("pad", 1, &[])? };
    let (mut low, high) = pad_amounts(&pad, x.ty.rank(), &op.name)?;
    let out = op.result().clone();
    let (mut xs, mut xt) = (x.ssa.clone(), x.ty.clone());
    // negative amounts of circular padding crop first: it wraps within what
    // is left (reflection and replication read the whole input)
    for d in 0..xt.rank() {
        if circular && (low[d] < 0 || high[d] < 0) {
            let len = xt.shape[d] + low[d].min(0) + high[d].min(0);
            if len < 0 {
                return Err(format!("{}: padding {pad:?} crops more than {}", op.name, x.ty));
            }
            (xs, xt) = slice_dim(e, &xs, &xt, d, -low[d].min(0), len, 1);
            low[d] = low[d].max(0);
        }
    }
    let r = indexed(e, &out, |e, idx| {
        let src: Vec<String> = idx
            .iter()
            .enumerate()
            .map(|(d, i)| {
                if low[d] == 0 && out.shape[d] == xt.shape[d] {
                    return i.clone();
                }
                let n = xt.shape[d];
                let i64v = e.assign(format!("arith.index_cast {i} : index to i64"));
                let lo = super::scalar::constant(e, low[d] as f64, "i64");
                let j = e.assign(format!("arith.subi {i64v}, {lo} : i64"));
                let zero = super::scalar::constant(e, 0.0, "i64");
                let last = super::scalar::constant(e, (n - 1) as f64, "i64");
                let s = if circular {
                    // (j mod n + n) mod n: the source wraps around
                    let nc = super::scalar::constant(e, n as f64, "i64");
                    let r = e.assign(format!("arith.remsi {j}, {nc} : i64"));
                    let r = e.assign(format!("arith.addi {r}, {nc} : i64"));
                    e.assign(format!("arith.remsi {r}, {nc} : i64"))
                } else if reflect {
                    // |j|, then mirror what passes the end: 2(n-1) - j
                    let a = e.assign(format!("math.absi {j} : i64"));
                    let two_last = super::scalar::constant(e, (2 * (n - 1)) as f64, "i64");
                    let m = e.assign(format!("arith.subi {two_last}, {a} : i64"));
                    e.assign(format!("arith.minsi {a}, {m} : i64"))
                } else {
                    let lo_clamped = e.assign(format!("arith.maxsi {j}, {zero} : i64"));
                    e.assign(format!("arith.minsi {lo_clamped}, {last} : i64"))
                };
                e.assign(format!("arith.index_cast {s} : i64 to index"))
            })
            .collect();
        extract(e, &xs, &xt, &src)
    });
    Ok(vec![r])
}

/// copy(self, src): src broadcast to self's shape and converted to its dtype.
pub fn copy(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let src = op.input("src")?;
    let out = op.result().clone();
    let from = src.ty.elem.clone();
    let to = out.elem.clone();
    Ok(vec![super::elementwise::map(e, &[(&src.ssa, &src.ty)], &out, |e, a| {
        super::scalar::cast(e, &a[0], &from, &to)
    })])
}

/// slice_scatter(self, src, dim, start, end, step) and select_scatter(self,
/// src, dim, index): self with src written into the slice.
pub fn slice_scatter(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let src = op.input("src")?;
    let rank = x.ty.rank();
    let dim = normalize_dim(op.int("dim", 0)?, rank)?;
    let size = x.ty.shape[dim];
    let (start, step) = if op.name == "aten.select_scatter" {
        let i = op.int("index", 0)?;
        (if i < 0 { i + size } else { i }, 1)
    } else {
        (slice_bound(op.attrs.get("start").and_then(as_int), 0, size), op.int("step", 1)?)
    };
    if src.ty.numel() == 0 {
        return Ok(vec![x.ssa.clone()]);
    }
    let mut piece_shape = x.ty.shape.clone();
    piece_shape[dim] = if op.name == "aten.select_scatter" { 1 } else { src.ty.shape[dim] };
    let piece_ty = src.ty.with_shape(piece_shape);
    let piece = reshape_value(e, &src.ssa, &src.ty, &piece_ty);
    let piece = super::elementwise::convert(e, &piece, &piece_ty, &x.ty.elem);
    let piece_ty = piece_ty.with_elem(&x.ty.elem);
    let offsets: Vec<String> = (0..rank).map(|d| if d == dim { start } else { 0 }.to_string()).collect();
    let strides: Vec<String> = (0..rank).map(|d| if d == dim { step } else { 1 }.to_string()).collect();
    let sizes: Vec<String> = piece_ty.shape.iter().map(i64::to_string).collect();
    let r = e.assign(format!(
        "tensor.insert_slice {piece} into {}[{}] [{}] [{}] : {piece_ty} into {}",
        x.ssa,
        offsets.join(", "),
        sizes.join(", "),
        strides.join(", "),
        x.ty
    ));
    Ok(vec![r])
}

/// pixel_shuffle(self [*, C*r*r, H, W], upscale_factor r) -> [*, C, H*r, W*r] and
/// pixel_unshuffle(self [*, C, H*r, W*r], downscale_factor r) -> [*, C*r*r, H, W]:
/// a view that splits the dims, a permutation, and a view that merges them.
pub fn pixel_shuffle(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let rank = x.ty.rank();
    if rank < 3 {
        return Err(format!("{}: needs at least 3 dims, got {}", op.name, x.ty));
    }
    let lead: Vec<i64> = x.ty.shape[..rank - 3].to_vec();
    let n = lead.len();
    let shuffle = op.name == "aten.pixel_shuffle";
    let r = op.int(if shuffle { "upscale_factor" } else { "downscale_factor" }, 1)?;
    let [c, h, w] = [x.ty.shape[rank - 3], x.ty.shape[rank - 2], x.ty.shape[rank - 1]];
    if r < 1 || (shuffle && c % (r * r) != 0) || (!shuffle && (h % r != 0 || w % r != 0)) {
        return Err(format!("{}: factor {r} does not divide {}", op.name, x.ty));
    }
    // split: shuffle [*, C', r, r, H, W], unshuffle [*, C, H', r, W', r]
    let split = if shuffle { [c / (r * r), r, r, h, w, 1] } else { [c, h / r, r, w / r, r, 1] };
    let mut split_shape = lead.clone();
    split_shape.extend(&split[..5]);
    let split_ty = x.ty.with_shape(split_shape);
    let v = reshape_value(e, &x.ssa, &x.ty, &split_ty);
    // shuffle -> [*, C', H, r, W, r]; unshuffle -> [*, C, r, r, H', W']
    let order: [usize; 5] = if shuffle { [0, 3, 1, 4, 2] } else { [0, 2, 4, 1, 3] };
    let mut perm: Vec<usize> = (0..n).collect();
    perm.extend(order.iter().map(|&d| n + d));
    let t = transpose_value(e, &v, &split_ty, &perm);
    let t_ty = split_ty.with_shape(perm.iter().map(|&p| split_ty.shape[p]).collect());
    Ok(vec![reshape_value(e, &t, &t_ty, &out)])
}
