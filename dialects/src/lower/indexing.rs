//! Indexing: gathers read through `tensor.extract` at computed positions;
//! scatters are reductions over the source positions, so each output
//! element is written once and the result is deterministic (the last write
//! wins, as in torch's CPU kernels for duplicate indices).

use super::elementwise::{convert, filled, generic};
use super::scalar::{self, constant};
use super::shape::{extract, index_const, indexed, normalize_dim};
use super::{AtenOp, Attr, Emitter, Operand};
use crate::types::Ty;

/// An integer index read from a tensor as an `index` value. Negative
/// values count from the end; out-of-range ones are clamped, because
/// compiled code has no way to raise torch's IndexError and must not read
/// outside the tensor.
fn to_index(e: &mut Emitter, v: &str, elem: &str, size: i64) -> String {
    let v = scalar::cast(e, v, elem, "i64");
    let zero = constant(e, 0.0, "i64");
    let n = constant(e, size as f64, "i64");
    let neg = scalar::compare(e, "lt", &v, &zero, "i64");
    let wrapped = e.assign(format!("arith.addi {v}, {n} : i64"));
    let v = scalar::select(e, &neg, &wrapped, &v, "i64");
    let last = constant(e, (size - 1).max(0) as f64, "i64");
    let v = e.assign(format!("arith.maxsi {v}, {zero} : i64"));
    let v = e.assign(format!("arith.minsi {v}, {last} : i64"));
    e.assign(format!("arith.index_cast {v} : i64 to index"))
}

/// embedding(weight, indices): out[i.., :] = weight[indices[i..], :]
pub fn embedding(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (w, idx) = (op.input("weight")?, op.input("indices")?);
    let out = op.result().clone();
    let r = indexed(e, &out, |e, i| {
        let (lead, last) = i.split_at(i.len() - 1);
        let k = extract(e, &idx.ssa, &idx.ty, lead);
        let row = to_index(e, &k, &idx.ty.elem, w.ty.shape[0]);
        extract(e, &w.ssa, &w.ty, &[row, last[0].clone()])
    });
    Ok(vec![r])
}

/// index_select(self, dim, index)
pub fn index_select(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (x, idx) = (op.input("self")?, op.input("index")?);
    let dim = normalize_dim(op.int("dim", 0)?, x.ty.rank())?;
    let out = op.result().clone();
    if x.ty.rank() == 0 {
        // a 0-d source has one element, which every (in-range) index selects
        return Ok(vec![super::elementwise::map(e, &[(&x.ssa, &x.ty)], &out, |_, a| a[0].clone())]);
    }
    if out.rank() != x.ty.rank() || idx.ty.rank() > 1 {
        return Err(format!("{}: a rank-{} result from a rank-{} source and a rank-{} index", op.name, out.rank(), x.ty.rank(), idx.ty.rank()));
    }
    let r = indexed(e, &out, |e, i| {
        let pos = if idx.ty.rank() == 0 { vec![] } else { vec![i[dim].clone()] };
        let k = extract(e, &idx.ssa, &idx.ty, &pos);
        let mut src = i.to_vec();
        src[dim] = to_index(e, &k, &idx.ty.elem, x.ty.shape[dim]);
        extract(e, &x.ssa, &x.ty, &src)
    });
    Ok(vec![r])
}

/// gather(self, dim, index): out[p] = self[p with p[dim] = index[p]]
pub fn gather(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (x, idx) = (op.input("self")?, op.input("index")?);
    let dim = normalize_dim(op.int("dim", 0)?, x.ty.rank())?;
    let out = op.result().clone();
    if x.ty.rank() == 0 {
        // a 0-d source has one element, which every (in-range) index gathers
        return Ok(vec![super::elementwise::map(e, &[(&x.ssa, &x.ty)], &out, |_, a| a[0].clone())]);
    }
    if out.shape != idx.ty.shape || idx.ty.rank() != x.ty.rank() {
        return Err(format!("{}: a {} index for a {} source gives {}", op.name, idx.ty, x.ty, out));
    }
    let r = indexed(e, &out, |e, i| {
        let k = extract(e, &idx.ssa, &idx.ty, i);
        let mut src = i.to_vec();
        src[dim] = to_index(e, &k, &idx.ty.elem, x.ty.shape[dim]);
        extract(e, &x.ssa, &x.ty, &src)
    });
    Ok(vec![r])
}

/// The index tensors of index.Tensor / index_put: one entry per indexed
/// dim, `None` where the list had None.
fn index_list(op: &AtenOp) -> Result<Vec<Option<&Operand>>, String> {
    let present: Vec<&Operand> = op.operands.iter().filter(|o| o.arg == "indices").collect();
    let nones = match op.attrs.get("indices_none") {
        Some(Attr::Ints(v)) => v.clone(),
        _ => vec![],
    };
    let mut list = Vec::new();
    let mut it = present.into_iter();
    for pos in 0..(nones.len() + op.operands.iter().filter(|o| o.arg == "indices").count()) {
        if nones.contains(&(pos as i64)) {
            list.push(None);
        } else {
            let t = it.next().ok_or("index list is inconsistent")?;
            if t.ty.elem == "i1" {
                return Err("indexing with a boolean mask gives a data-dependent shape: not supported".into());
            }
            list.push(Some(t));
        }
    }
    Ok(list)
}

/// Where advanced indexing puts the broadcast index dims: at the first
/// indexed dim when the indexed dims are adjacent, else in front.
struct AdvancedIndex<'a> {
    list: Vec<Option<&'a Operand>>,
    broadcast: Vec<i64>,
    /// Output position of the first broadcast dim.
    at: usize,
}

impl<'a> AdvancedIndex<'a> {
    fn new(op: &'a AtenOp, x_rank: usize) -> Result<Self, String> {
        let list = index_list(op)?;
        if list.len() > x_rank {
            return Err(format!("{}: {} indices for a rank-{x_rank} tensor", op.name, list.len()));
        }
        let mut broadcast: Vec<i64> = vec![];
        for t in list.iter().flatten() {
            let s = &t.ty.shape;
            let rank = broadcast.len().max(s.len());
            let mut b = vec![1; rank];
            for i in 0..rank {
                let a = if i + broadcast.len() >= rank { broadcast[i + broadcast.len() - rank] } else { 1 };
                let c = if i + s.len() >= rank { s[i + s.len() - rank] } else { 1 };
                b[i] = if a == 1 { c } else { a };
            }
            broadcast = b;
        }
        let positions: Vec<usize> = list.iter().enumerate().filter(|(_, t)| t.is_some()).map(|(i, _)| i).collect();
        let adjacent = positions.windows(2).all(|w| w[1] == w[0] + 1);
        let at = if adjacent { positions.first().copied().unwrap_or(0) } else { 0 };
        Ok(AdvancedIndex { list, broadcast, at })
    }

    /// The source index of `x` for output (or values) index `i`.
    fn source(&self, e: &mut Emitter, x: &Ty, i: &[String]) -> Vec<String> {
        let nb = self.broadcast.len();
        let b_idx = &i[self.at..self.at + nb];
        let mut rest = i[..self.at].iter().chain(&i[self.at + nb..]);
        (0..x.rank())
            .map(|d| match self.list.get(d).copied().flatten() {
                Some(t) => {
                    // the index tensor broadcast into the broadcast dims
                    let off = nb - t.ty.rank();
                    let pos: Vec<String> = t
                        .ty
                        .shape
                        .iter()
                        .enumerate()
                        .map(|(k, &s)| if s == 1 { index_const(e, 0) } else { b_idx[off + k].clone() })
                        .collect();
                    let v = extract(e, &t.ssa, &t.ty, &pos);
                    to_index(e, &v, &t.ty.elem, x.shape[d])
                }
                None => rest.next().expect("one output dim per unindexed dim").clone(),
            })
            .collect()
    }
}

/// index.Tensor(self, indices): advanced indexing with integer index tensors.
pub fn index(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let adv = AdvancedIndex::new(op, x.ty.rank())?;
    let out = op.result().clone();
    let r = indexed(e, &out, |e, i| {
        let src = adv.source(e, &x.ty, i);
        extract(e, &x.ssa, &x.ty, &src)
    });
    Ok(vec![r])
}

/// index_put(self, indices, values, accumulate): a reduction over the
/// positions of the (broadcast) values.
pub fn index_put(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (x, values) = (op.input("self")?, op.input("values")?);
    let adv = AdvancedIndex::new(op, x.ty.rank())?;
    let accumulate = op.bool("accumulate", false)?;
    let out = op.result().clone();
    // The values are indexed like the result of x[indices].
    let mut vshape: Vec<i64> = Vec::new();
    let unindexed: Vec<i64> =
        (0..x.ty.rank()).filter(|&d| adv.list.get(d).copied().flatten().is_none()).map(|d| x.ty.shape[d]).collect();
    vshape.extend(&unindexed[..adv.at]);
    vshape.extend(&adv.broadcast);
    vshape.extend(&unindexed[adv.at..]);
    let v_ty = values.ty.with_shape(vshape.clone());
    let v = super::elementwise::map(e, &[(&values.ssa, &values.ty)], &v_ty, |_, a| a[0].clone());
    let v = convert(e, &v, &v_ty, &out.elem);
    let v_ty = v_ty.with_elem(&out.elem);
    // iteration space: out dims, then the values dims (reduction)
    let (ro, rv) = (out.rank(), vshape.len());
    let all = super::elementwise::dim_list(ro + rv);
    let out_map = format!("affine_map<({all}) -> ({})>", super::elementwise::dim_list(ro));
    let v_exprs: Vec<String> = (0..rv).map(|k| format!("d{}", ro + k)).collect();
    let v_map = format!("affine_map<({all}) -> ({})>", v_exprs.join(", "));
    let mut iterators = vec!["parallel"; ro];
    iterators.extend(vec!["reduction"; rv]);
    let init = super::elementwise::map(e, &[(&x.ssa, &x.ty)], &out, |_, a| a[0].clone());
    let elem = out.elem.clone();
    let xt = x.ty.clone();
    let r = generic(e, &[(v, v_ty, v_map)], &init, &out, Some(out_map), &iterators, "", |e, a| {
        let q: Vec<String> = (0..ro).map(|d| e.assign(format!("linalg.index {d} : index"))).collect();
        let p: Vec<String> = (0..rv).map(|d| e.assign(format!("linalg.index {} : index", ro + d))).collect();
        let src = adv.source(e, &xt, &p);
        // the position this value goes to must be q
        let mut hit = constant(e, 1.0, "i1");
        for d in 0..ro {
            let eq = e.assign(format!("arith.cmpi eq, {}, {} : index", src[d], q[d]));
            hit = e.assign(format!("arith.andi {hit}, {eq} : i1"));
        }
        let new = if accumulate { scalar::add(e, &a[1], &a[0], &elem) } else { a[0].clone() };
        scalar::select(e, &hit, &new, &a[1], &elem)
    });
    Ok(vec![r])
}

/// scatter.src / scatter.value / scatter_add / scatter_reduce.two:
/// out[q] combines every src[p] with p[d] = k and index[p] = q[d], p = q elsewhere.
pub fn scatter(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    if op.result().rank() == 0 {
        return as_rank_one(e, op, scatter);
    }
    let (x, idx) = (op.input("self")?, op.input("index")?);
    let dim = normalize_dim(op.int("dim", 0)?, x.ty.rank())?;
    let out = op.result().clone();
    let elem = out.elem.clone();
    let reduce = match op.attrs.get("reduce") {
        Some(Attr::Str(s)) => s.clone(),
        _ if op.name == "aten.scatter_add" => "sum".into(),
        _ => "none".into(),
    };
    let include_self = op.bool("include_self", true)?;
    if !["none", "sum", "prod", "amax", "amin", "mean", "add", "multiply"].contains(&reduce.as_str()) {
        return Err(format!("{}: reduce='{reduce}' is not supported", op.name));
    }
    let src: Option<&Operand> = op.opt_input("src");
    let value = op.float("value", 0.0).unwrap_or(0.0);
    let rank = x.ty.rank().max(1);
    let k_len = if idx.ty.rank() == 0 { 1 } else { idx.ty.shape[dim] };
    let base = if include_self || reduce == "none" {
        super::elementwise::map(e, &[(&x.ssa, &x.ty)], &out, |_, a| a[0].clone())
    } else {
        let identity = match reduce.as_str() {
            "prod" | "multiply" => 1.0,
            "amax" => scalar::lowest(&elem),
            "amin" => scalar::highest(&elem),
            _ => 0.0,
        };
        filled(e, &out, &scalar::literal(identity, &elem))
    };
    // counts for mean: how many sources land on each element
    let all = super::elementwise::dim_list(rank + 1);
    let out_map = format!("affine_map<({all}) -> ({})>", super::elementwise::dim_list(rank));
    let mut iterators = vec!["parallel"; rank];
    iterators.push("reduction");
    let combine = reduce.clone();
    let (it, xt) = (idx.clone(), x.ty.clone());
    let body_src = src.cloned();
    let contribution = move |e: &mut Emitter, acc: &str, elem: &str, counting: bool| -> String {
        let q: Vec<String> = (0..rank).map(|d| e.assign(format!("linalg.index {d} : index"))).collect();
        let k = e.assign(format!("linalg.index {rank} : index"));
        // p = q with p[dim] = k; valid only inside the index tensor
        let mut p = q.clone();
        p[dim] = k;
        let mut valid = constant(e, 1.0, "i1");
        for (d, &s) in it.ty.shape.iter().enumerate() {
            let n = index_const(e, s);
            let inside = e.assign(format!("arith.cmpi ult, {}, {n} : index", p[d]));
            valid = e.assign(format!("arith.andi {valid}, {inside} : i1"));
        }
        let zero = index_const(e, 0);
        let safe: Vec<String> = p.iter().map(|v| e.assign(format!("arith.select {valid}, {v}, {zero} : index"))).collect();
        let target = extract(e, &it.ssa, &it.ty, &safe[..it.ty.rank()]);
        let target = to_index(e, &target, &it.ty.elem, xt.shape.get(dim).copied().unwrap_or(1));
        let eq = e.assign(format!("arith.cmpi eq, {target}, {} : index", q[dim]));
        let hit = e.assign(format!("arith.andi {valid}, {eq} : i1"));
        if counting {
            let one = constant(e, 1.0, elem);
            let inc = scalar::add(e, acc, &one, elem);
            return scalar::select(e, &hit, &inc, acc, elem);
        }
        let v = match &body_src {
            Some(s) => {
                let v = extract(e, &s.ssa, &s.ty, &safe[..s.ty.rank()]);
                scalar::cast(e, &v, &s.ty.elem, elem)
            }
            None => constant(e, value, elem),
        };
        let new = match combine.as_str() {
            "sum" | "add" | "mean" => scalar::add(e, acc, &v, elem),
            "prod" | "multiply" => scalar::mul(e, acc, &v, elem),
            "amax" => scalar::max(e, acc, &v, elem),
            "amin" => scalar::min(e, acc, &v, elem),
            _ => v,
        };
        scalar::select(e, &hit, &new, acc, elem)
    };
    let k_ty = Ty::new(vec![k_len], "i1");
    let k_dummy = filled(e, &k_ty, "0");
    let k_map = format!("affine_map<({all}) -> (d{rank})>");
    let c2 = contribution.clone();
    let el = elem.clone();
    let summed = generic(e, &[(k_dummy.clone(), k_ty.clone(), k_map.clone())], &base, &out, Some(out_map.clone()), &iterators, "", move |e, a| {
        contribution(e, &a[1], &el, false)
    });
    if reduce != "mean" && (include_self || reduce == "none") {
        return Ok(vec![summed]);
    }
    // How many sources land on each element: the mean's divisor, and where
    // include_self=False found none, the element keeps self's value.
    let count_ty = out.with_elem(&elem);
    let zeros = filled(e, &count_ty, &scalar::literal(0.0, &elem));
    let el = elem.clone();
    let counts = generic(e, &[(k_dummy, k_ty, k_map)], &zeros, &count_ty, Some(out_map), &iterators, "", move |e, a| {
        c2(e, &a[1], &el, true)
    });
    let el = elem.clone();
    let mean = reduce == "mean";
    let r = super::elementwise::map(e, &[(&summed, &out), (&counts, &count_ty), (&x.ssa, &x.ty)], &out, |e, a| {
        let one = constant(e, 1.0, &el);
        let zero = constant(e, 0.0, &el);
        let n = if include_self { scalar::add(e, &a[1], &one, &el) } else { a[1].clone() };
        let value = if mean {
            let c = scalar::max(e, &n, &one, &el);
            if crate::types::is_float(&el) {
                scalar::div(e, &a[0], &c, &el)
            } else {
                e.assign(format!("arith.floordivsi {}, {c} : {el}", a[0]))
            }
        } else {
            a[0].clone()
        };
        let none = scalar::compare(e, "eq", &n, &zero, &el);
        scalar::select(e, &none, &a[2], &value, &el)
    });
    Ok(vec![r])
}

/// masked_scatter(self, mask, source): the elements of self where mask is
/// true are replaced, in order, by consecutive elements of source. The
/// position in source is the number of true mask elements before (a
/// triangular count, quadratic in the element count).
pub fn masked_scatter(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (x, m, src) = (op.input("self")?, op.input("mask")?, op.input("source")?);
    let out = op.result().clone();
    let n = out.numel();
    let mask_full_ty = out.with_elem(&m.ty.elem);
    let mask_full = super::elementwise::map(e, &[(&m.ssa, &m.ty)], &mask_full_ty, |_, a| a[0].clone());
    let flat_mask_ty = mask_full_ty.with_shape(vec![n]);
    let flat_mask = super::shape::reshape_value(e, &mask_full, &mask_full_ty, &flat_mask_ty);
    let count_ty = Ty::new(vec![n], "i64");
    let zeros = filled(e, &count_ty, "0");
    let before = generic(
        e,
        &[(flat_mask.clone(), flat_mask_ty.clone(), "affine_map<(d0, d1) -> (d1)>".into())],
        &zeros,
        &count_ty,
        Some("affine_map<(d0, d1) -> (d0)>".into()),
        &["parallel", "reduction"],
        "",
        |e, a| {
            let (q, j) = (e.assign("linalg.index 0 : index"), e.assign("linalg.index 1 : index"));
            let earlier = e.assign(format!("arith.cmpi ult, {j}, {q} : index"));
            let set = scalar::cast(e, &a[0], &m.ty.elem, "i1");
            let counts = e.assign(format!("arith.andi {earlier}, {set} : i1"));
            let inc = scalar::cast(e, &counts, "i1", "i64");
            e.assign(format!("arith.addi {}, {inc} : i64", a[1]))
        },
    );
    // self broadcast to the result (mask and self broadcast together)
    let x_full_ty = out.with_elem(&x.ty.elem);
    let x_full = super::elementwise::map(e, &[(&x.ssa, &x.ty)], &x_full_ty, |_, a| a[0].clone());
    let flat_x_ty = x.ty.with_shape(vec![n]);
    let flat_x = super::shape::reshape_value(e, &x_full, &x_full_ty, &flat_x_ty);
    let src_flat_ty = src.ty.with_shape(vec![src.ty.numel()]);
    let src_flat = super::shape::reshape_value(e, &src.ssa, &src.ty, &src_flat_ty);
    let flat_out = out.with_shape(vec![n]);
    let (se, oe) = (src.ty.elem.clone(), out.elem.clone());
    let r = super::elementwise::map(e, &[(&flat_x, &flat_x_ty), (&flat_mask, &flat_mask_ty), (&before, &count_ty)], &flat_out, |e, a| {
        let pos = to_index(e, &a[2], "i64", src_flat_ty.numel());
        let v = extract(e, &src_flat, &src_flat_ty, &[pos]);
        let v = scalar::cast(e, &v, &se, &oe);
        let set = scalar::cast(e, &a[1], &m.ty.elem, "i1");
        scalar::select(e, &set, &v, &a[0], &oe)
    });
    Ok(vec![super::shape::reshape_value(e, &r, &flat_out, &out)])
}

/// _embedding_bag(weight, indices, offsets, ..., mode, ..., per_sample_weights?,
/// include_last_offset, padding_idx): bag b reduces the rows
/// indices[offsets[b] .. offsets[b+1]] (sum, mean or max). Only the first
/// result is computed; the other three serve the backward pass.
pub fn embedding_bag(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (w, idx, offsets) = (op.input("weight")?, op.input("indices")?, op.input("offsets")?);
    if op.results_used.iter().skip(1).any(|&u| u) {
        return Err(format!("{}: only the bag values (result 0) are supported, not the backward bookkeeping", op.name));
    }
    let mode = op.int("mode", 0)?;
    let padding_idx = op.int("padding_idx", -1)?;
    let weights = op.opt_input("per_sample_weights");
    let out = op.result().clone();
    let (bags, n) = (out.shape[0], idx.ty.numel());
    let acc = super::scalar::compute_elem(&out.elem).to_string();
    let acc_ty = out.with_elem(&acc);
    let init = if mode == 2 { scalar::lowest(&acc) } else { 0.0 };
    let sums = filled(e, &acc_ty, &scalar::literal(init, &acc));
    let counts_ty = Ty::new(vec![bags], &acc);
    let k_ty = Ty::new(vec![n], "i1");
    let k = filled(e, &k_ty, "0");
    let (wt, it, ot) = (w.clone(), idx.clone(), offsets.clone());
    let n_offsets = offsets.ty.numel();
    let we = w.ty.elem.clone();
    let psw = weights.cloned();
    // in_bag(b, i): offsets[b] <= i < (b + 1 < len(offsets) ? offsets[b + 1] : n)
    let in_bag = move |e: &mut Emitter, b: &str, i: &str| -> String {
        let start = extract(e, &ot.ssa, &ot.ty, &[b.to_string()]);
        let start = scalar::cast(e, &start, &ot.ty.elem, "i64");
        let one = super::shape::index_const(e, 1);
        let next = e.assign(format!("arith.addi {b}, {one} : index"));
        let len = super::shape::index_const(e, n_offsets);
        let has_next = e.assign(format!("arith.cmpi ult, {next}, {len} : index"));
        let last = super::shape::index_const(e, n_offsets - 1);
        let safe = e.assign(format!("arith.minui {next}, {last} : index"));
        let end = extract(e, &ot.ssa, &ot.ty, &[safe]);
        let end = scalar::cast(e, &end, &ot.ty.elem, "i64");
        let total = constant(e, n as f64, "i64");
        let end = scalar::select(e, &has_next, &end, &total, "i64");
        let i = e.assign(format!("arith.index_cast {i} : index to i64"));
        let after_start = scalar::compare(e, "ge", &i, &start, "i64");
        let before_end = scalar::compare(e, "lt", &i, &end, "i64");
        e.assign(format!("arith.andi {after_start}, {before_end} : i1"))
    };
    let in_bag2 = in_bag.clone();
    let a = acc.clone();
    let reduced = generic(
        e,
        &[(k.clone(), k_ty.clone(), "affine_map<(d0, d1, d2) -> (d2)>".into())],
        &sums,
        &acc_ty,
        Some("affine_map<(d0, d1, d2) -> (d0, d1)>".into()),
        &["parallel", "parallel", "reduction"],
        "",
        move |e, v| {
            let (b, d, i) = (e.assign("linalg.index 0 : index"), e.assign("linalg.index 1 : index"), e.assign("linalg.index 2 : index"));
            let inside = in_bag(e, &b, &i);
            let row = extract(e, &it.ssa, &it.ty, &[i.clone()]);
            let row64 = scalar::cast(e, &row, &it.ty.elem, "i64");
            let pad = constant(e, padding_idx as f64, "i64");
            let not_pad = scalar::compare(e, "ne", &row64, &pad, "i64");
            let take = e.assign(format!("arith.andi {inside}, {not_pad} : i1"));
            let r = to_index(e, &row, &it.ty.elem, wt.ty.shape[0]);
            let x = extract(e, &wt.ssa, &wt.ty, &[r, d]);
            let mut x = scalar::cast(e, &x, &we, &a);
            if let Some(p) = &psw {
                let s = extract(e, &p.ssa, &p.ty, &[i]);
                let s = scalar::cast(e, &s, &p.ty.elem, &a);
                x = scalar::mul(e, &x, &s, &a);
            }
            let combined = if mode == 2 { scalar::max(e, &v[1], &x, &a) } else { scalar::add(e, &v[1], &x, &a) };
            scalar::select(e, &take, &combined, &v[1], &a)
        },
    );
    let result = if mode == 1 {
        // mean: divide by the bag's size (empty bags stay 0)
        let zeros = filled(e, &counts_ty, &scalar::literal(0.0, &acc));
        let a = acc.clone();
        let it = idx.clone();
        let counts = generic(
            e,
            &[(k, k_ty, "affine_map<(d0, d1) -> (d1)>".into())],
            &zeros,
            &counts_ty,
            Some("affine_map<(d0, d1) -> (d0)>".into()),
            &["parallel", "reduction"],
            "",
            move |e, v| {
                let (b, i) = (e.assign("linalg.index 0 : index"), e.assign("linalg.index 1 : index"));
                let inside = in_bag2(e, &b, &i);
                let row = extract(e, &it.ssa, &it.ty, &[i]);
                let row = scalar::cast(e, &row, &it.ty.elem, "i64");
                let pad = constant(e, padding_idx as f64, "i64");
                let not_pad = scalar::compare(e, "ne", &row, &pad, "i64");
                let take = e.assign(format!("arith.andi {inside}, {not_pad} : i1"));
                let one = constant(e, 1.0, &a);
                let inc = scalar::add(e, &v[1], &one, &a);
                scalar::select(e, &take, &inc, &v[1], &a)
            },
        );
        let a = acc.clone();
        let init = super::elementwise::empty(e, &acc_ty);
        super::elementwise::generic(
            e,
            &[(reduced.clone(), acc_ty.clone(), super::elementwise::identity_map(2)), (counts, counts_ty, "affine_map<(d0, d1) -> (d0)>".into())],
            &init,
            &acc_ty,
            None,
            &["parallel", "parallel"],
            "",
            |e, v| {
                let one = constant(e, 1.0, &a);
                let c = scalar::max(e, &v[1], &one, &a);
                scalar::div(e, &v[0], &c, &a)
            },
        )
    } else if mode == 2 {
        // an empty bag gives 0, not -inf
        let a = acc.clone();
        super::elementwise::map(e, &[(&reduced, &acc_ty)], &acc_ty, |e, v| {
            let lowest = constant(e, scalar::lowest(&a), &a);
            let empty = scalar::compare(e, "eq", &v[0], &lowest, &a);
            let zero = constant(e, 0.0, &a);
            scalar::select(e, &empty, &zero, &v[0], &a)
        })
    } else {
        reduced
    };
    let mut results = vec![convert(e, &result, &acc_ty, &out.elem)];
    results.extend(std::iter::repeat_n(super::UNUSED_RESULT.to_string(), op.results.len() - 1));
    Ok(results)
}

/// A rule applied to an op whose tensors are all 0-d, as the same op on
/// tensors of one element (dim 0), then viewed as 0-d again.
fn as_rank_one(e: &mut Emitter, op: &AtenOp, rule: super::LowerFn) -> Result<Vec<String>, String> {
    let mut one = op.clone();
    for operand in &mut one.operands {
        if operand.ty.rank() == 0 {
            let ty = operand.ty.with_shape(vec![1]);
            operand.ssa = super::shape::reshape_value(e, &operand.ssa, &operand.ty, &ty);
            operand.ty = ty;
        }
    }
    for r in &mut one.results {
        *r = r.with_shape(vec![1]);
    }
    one.attrs.insert("dim".into(), Attr::Int(0));
    let results = rule(e, &one)?;
    Ok(results.iter().zip(&op.results).map(|(v, ty)| super::shape::reshape_value(e, v, &ty.with_shape(vec![1]), ty)).collect())
}
