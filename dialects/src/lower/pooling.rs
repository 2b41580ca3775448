//! Pooling over the last 1, 2 or 3 dims, as a windowed reduction
//! `linalg.generic` over (leading dims, output dims, window dims). The
//! output size comes from torch's result type, so ceil_mode only changes
//! how much padding the window needs on the high side. Averages divide by a
//! per-position divisor computed here (shapes are static). Adaptive pools
//! use windows of the largest size with a mask; upsampling reads source
//! indices and weights computed here with torch's formulas.

use super::elementwise::{dim_list, empty, filled, generic, identity_map};
use super::scalar::{self, compute_elem, constant, literal};
use super::shape::{extract, indexed, pad_value, padded_ty, reshape_value};
use super::{AtenOp, Attr, Emitter};
use crate::types::Ty;

/// The number of pooled dims: from the op name (`..1d`, `..2d`, `..3d`), else 2.
fn spatial_rank(op: &AtenOp) -> usize {
    if op.name.contains("1d") {
        1
    } else if op.name.contains("3d") {
        3
    } else {
        2
    }
}

struct Window {
    kernel: Vec<i64>,
    stride: Vec<i64>,
    padding: Vec<i64>,
    dilation: Vec<i64>,
}

fn window(op: &AtenOp, k: usize) -> Result<Window, String> {
    use super::MAX_WINDOW as MAX;
    let kernel = op.ints_in("kernel_size", k, &[], 1, MAX)?;
    if kernel.len() != k {
        return Err(format!("{}: kernel_size must have {k} entries", op.name));
    }
    let stride = op.ints_in("stride", k, &kernel, 1, MAX)?;
    let w = Window {
        stride,
        padding: op.ints_in("padding", k, &vec![0; k], 0, MAX)?,
        dilation: op.ints_in("dilation", k, &vec![1; k], 1, MAX)?,
        kernel,
    };
    if [&w.stride, &w.padding, &w.dilation].iter().any(|v| v.len() != k) {
        return Err(format!("{}: stride, padding and dilation must have {k} entries", op.name));
    }
    Ok(w)
}

/// Pads the pooled dims so that every window lies inside; returns the
/// padded input.
fn padded(e: &mut Emitter, x: &str, ty: &Ty, w: &Window, out: &Ty, value: f64) -> (String, Ty) {
    let k = w.kernel.len();
    let lead = ty.rank() - k;
    let mut low = vec![0; ty.rank()];
    let mut high = vec![0; ty.rank()];
    for d in 0..k {
        let needed = (out.shape[lead + d] - 1) * w.stride[d] + (w.kernel[d] - 1) * w.dilation[d] + 1;
        low[lead + d] = w.padding[d];
        high[lead + d] = (needed - ty.shape[lead + d] - w.padding[d]).max(0);
    }
    (pad_value(e, x, ty, &low, &high, &literal(value, &ty.elem)), padded_ty(ty, &low, &high))
}

/// Maps of a window reduction over (lead.., out.., window..): the padded
/// input at `out * stride + window * dilation`, the window shape, the output.
fn window_maps(rank: usize, w: &Window) -> (String, String, String, Vec<&'static str>) {
    let k = w.kernel.len();
    let lead = rank - k;
    let all = dim_list(rank + k);
    let mut x = Vec::new();
    for d in 0..lead {
        x.push(format!("d{d}"));
    }
    for d in 0..k {
        x.push(format!("d{} * {} + d{} * {}", lead + d, w.stride[d], rank + d, w.dilation[d]));
    }
    let win: Vec<String> = (0..k).map(|d| format!("d{}", rank + d)).collect();
    let mut iterators = vec!["parallel"; rank];
    iterators.extend(vec!["reduction"; k]);
    (
        format!("affine_map<({all}) -> ({})>", x.join(", ")),
        format!("affine_map<({all}) -> ({})>", win.join(", ")),
        format!("affine_map<({all}) -> ({})>", dim_list(rank)),
        iterators,
    )
}

/// max_pool{1,2,3}d and max_pool{2,3}d_with_indices.
pub fn max_pool(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let k = spatial_rank(op);
    let w = window(op, k)?;
    let x = op.input("self")?;
    let out = op.result().clone();
    let rank = x.ty.rank();
    if rank < k + 1 {
        return Err(format!("{}: input {} has too few dims", op.name, x.ty));
    }
    let elem = out.elem.clone();
    let lowest = scalar::lowest(&elem);
    let with_indices = op.results.len() == 2 && op.results_used[1];
    if !with_indices && is_separable(&w, rank, &elem) {
        return Ok(with_unused_indices(op, separable_max(e, &x.ssa, &x.ty, &w, &out, lowest)));
    }
    let (xp, xp_ty) = padded(e, &x.ssa, &x.ty, &w, &out, lowest);
    let (x_map, win_map, out_map, iterators) = window_maps(rank, &w);
    let win_ty = Ty::new(w.kernel.clone(), "i1");
    let win = empty(e, &win_ty);
    let init = filled(e, &out, &literal(lowest, &elem));
    if !with_indices {
        let r = generic(e, &[(xp, xp_ty, x_map), (win, win_ty, win_map)], &init, &out, Some(out_map), &iterators, "", |e, a| {
            scalar::max(e, &a[0], &a[2], &elem)
        });
        return Ok(with_unused_indices(op, r));
    }
    let idx_ty = op.results[1].clone();
    let init_idx = filled(e, &idx_ty, "-1");
    let lead = rank - k;
    let in_shape: Vec<i64> = x.ty.shape[lead..].to_vec();
    let r = e.fresh();
    let (a, wv, acc, acc_i) = (e.fresh(), e.fresh(), e.fresh(), e.fresh());
    e.line(format!(
        "{r}:2 = linalg.generic {{indexing_maps = [{x_map}, {win_map}, {out_map}, {out_map}], iterator_types = [{}]}} ins({xp}, {win} : {xp_ty}, {win_ty}) outs({init}, {init_idx} : {out}, {idx_ty}) {{",
        iterators.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ")
    ));
    let t = crate::types::mlir_elem(&elem);
    e.line(format!("^bb0({a}: {t}, {wv}: i1, {acc}: {t}, {acc_i}: i64):"));
    e.indented(|e| {
        // flat index of the input element within its pooled plane
        let mut flat = constant(e, 0.0, "i64");
        for d in 0..k {
            let o = e.assign(format!("linalg.index {} : index", lead + d));
            let t = e.assign(format!("linalg.index {} : index", rank + d));
            let o = e.assign(format!("arith.index_cast {o} : index to i64"));
            let t = e.assign(format!("arith.index_cast {t} : index to i64"));
            let s = constant(e, w.stride[d] as f64, "i64");
            let dl = constant(e, w.dilation[d] as f64, "i64");
            let p = constant(e, w.padding[d] as f64, "i64");
            let os = scalar::mul(e, &o, &s, "i64");
            let td = scalar::mul(e, &t, &dl, "i64");
            let c = scalar::add(e, &os, &td, "i64");
            let c = scalar::sub(e, &c, &p, "i64");
            let n = constant(e, in_shape[d] as f64, "i64");
            let f = scalar::mul(e, &flat, &n, "i64");
            flat = scalar::add(e, &f, &c, "i64");
        }
        let zero = constant(e, 0.0, "i64");
        let first = scalar::compare(e, "lt", &acc_i, &zero, "i64");
        // a later NaN replaces the maximum, as in torch's kernel
        let gt = scalar::compare(e, "gt", &a, &acc, &elem);
        let nan = scalar::is_nan(e, &a, &elem);
        let any = e.assign(format!("arith.ori {gt}, {nan} : i1"));
        let take = e.assign(format!("arith.ori {any}, {first} : i1"));
        let v = scalar::select(e, &take, &a, &acc, &elem);
        let i = scalar::select(e, &take, &flat, &acc_i, "i64");
        e.line(format!("linalg.yield {v}, {i} : {t}, i64"));
    });
    e.line(format!("}} -> ({out}, {idx_ty})"));
    Ok(vec![format!("{r}#0"), format!("{r}#1")])
}

/// The maximum `r` and, when the op has an indices result (the core form
/// always asks for them; most programs drop them), a placeholder for it.
fn with_unused_indices(op: &AtenOp, r: String) -> Vec<String> {
    let mut results = vec![r];
    if op.results.len() == 2 {
        results.push(super::UNUSED_RESULT.to_string());
    }
    results
}

/// Whether a max pool is taken separably, over phase windows
/// ([`separable_max`]): 2-d over [N, C, H, W] floats, strided, undilated.
fn is_separable(w: &Window, rank: usize, elem: &str) -> bool {
    w.kernel.len() == 2 && rank == 4 && crate::types::is_float(elem) && w.stride.iter().any(|&s| s > 1) && w.dilation.iter().all(|&d| d == 1)
}

/// A strided max pool, separably: the maxima over each window's rows
/// first, made straight into the stride phases of their columns, then the
/// maxima over the window's columns, each tap's a contiguous slice of one
/// phase, so that every read is of whole rows, vectorized (the windowed
/// reduction over a strided input stays a scalar loop: resnet18's 3x3
/// stride-2 pool took 0.45 ms of 22 at 1 thread). The copy into the
/// phases (a transpose of each row's pairs, shuffled in registers) is of
/// the rows' maxima, half the input, where the phases of the input itself
/// were all of it, written once more and read by every tap: squeezenet's
/// stem pool (64 maps of 111x111, 3x3 stride 2) 175 -> 87 us, resnet18's
/// (64 of 112x112, padded) 222 -> 132 us at 1 thread
/// (`tools/kernel_times.py`, with the compiler's `contiguous_transfers`).
///
/// Padding rows are never read: the output rows whose windows reach them
/// are made apart, from the taps that stay inside ([`row_pieces`]); padding
/// columns are the phases' own padding (`conv::windows_of_phases`). The
/// maximum (`arith.maximumf`, NaN-propagating) does not depend on the
/// order of the taps, but for the sign of a zero.
fn separable_max(e: &mut Emitter, x: &str, x_ty: &Ty, w: &Window, out: &Ty, lowest: f64) -> String {
    let fill = literal(lowest, &x_ty.elem);
    let (h, width) = (x_ty.shape[2], x_ty.shape[3]);
    let (sw, pw, kw) = (w.stride[1], w.padding[1], w.kernel[1]);
    let rows_ty = x_ty.with_shape(vec![x_ty.shape[0], x_ty.shape[1], out.shape[2], width]);
    let pieces = [row_pieces(h, out.shape[2], w), super::conv::whole_and_partial_group(width, sw)];
    let (phases, phases_ty) = super::conv::phases_in_pieces(e, &rows_ty, &[1, sw], &fill, &pieces, |e, starts, part_ty| {
        rows_max(e, x, x_ty, w, starts, part_ty, &fill)
    });
    let columns = super::conv::WindowParams { stride: &[1, sw], padding: &[0, pw], kernel: &[1, kw], dilation: &[1, 1] };
    let windows = super::conv::windows_of_phases(e, &phases, &phases_ty, &columns, out, &fill);
    maximum_of(e, &windows, out)
}

/// The elementwise maximum of `inputs` (each of `out`'s shape) as `out`.
fn maximum_of(e: &mut Emitter, inputs: &[(String, Ty)], out: &Ty) -> String {
    let init = empty(e, out);
    let elem = out.elem.clone();
    let identity = identity_map(out.rank());
    let inputs: Vec<(String, Ty, String)> = inputs.iter().map(|(value, ty)| (value.clone(), ty.clone(), identity.clone())).collect();
    generic(e, &inputs, &init, out, None, &vec!["parallel"; out.rank()], "", |e, a| {
        (1..inputs.len()).fold(a[0].clone(), |acc, t| scalar::max(e, &a[t], &acc, &elem))
    })
}

/// The window taps `first..last` (rows of the window) that stay inside
/// the `h` input rows for output row `o`.
fn rows_inside(o: i64, h: i64, w: &Window) -> (i64, i64) {
    let top = w.stride[0] * o - w.padding[0];
    ((-top).max(0), (h - top).min(w.kernel[0]))
}

/// The output rows in runs (first row, rows) whose windows keep the same
/// taps inside the input: the border rows that reach into the padding (or
/// past the end, with ceil_mode) and the rows between them.
fn row_pieces(h: i64, out_rows: i64, w: &Window) -> Vec<(i64, i64)> {
    let mut pieces: Vec<(i64, i64)> = Vec::new();
    for o in 0..out_rows {
        match pieces.last_mut() {
            Some((first, n)) if rows_inside(*first, h, w) == rows_inside(o, h, w) => *n += 1,
            _ => pieces.push((o, 1)),
        }
    }
    pieces
}

/// The maxima over the window rows of output rows `starts[0]..` (one run
/// of [`row_pieces`]) for input columns `starts[1]..`, as `part_ty`
/// [N, C, rows, columns]: the elementwise maximum of one strided slice of
/// the input per tap inside.
fn rows_max(e: &mut Emitter, x: &str, x_ty: &Ty, w: &Window, starts: &[i64], part_ty: &Ty, fill: &str) -> String {
    let (o, column) = (starts[0], starts[1]);
    let (first, last) = rows_inside(o, x_ty.shape[2], w);
    let sizes: Vec<String> = part_ty.shape.iter().map(i64::to_string).collect();
    let slices: Vec<(String, Ty)> = (first..last)
        .map(|tap| {
            let row = w.stride[0] * o + tap - w.padding[0];
            let slice = e.assign(format!(
                "tensor.extract_slice {x}[0, 0, {row}, {column}] [{}] [1, 1, {}, 1] : {x_ty} to {part_ty}",
                sizes.join(", "),
                w.stride[0]
            ));
            (slice, part_ty.clone())
        })
        .collect();
    match slices.len() {
        0 => filled(e, part_ty, fill),
        1 => slices[0].0.clone(),
        _ => maximum_of(e, &slices, part_ty),
    }
}

/// A dense constant tensor of f64 values in `elem`.
fn dense(e: &mut Emitter, values: &[f64], ty: &Ty) -> String {
    let items: Vec<String> = values.iter().map(|&v| literal(v, &ty.elem)).collect();
    e.assign(format!("arith.constant dense<[{}]> : {}", items.join(", "), ty.with_shape(vec![values.len() as i64])))
}

/// avg_pool{1,2,3}d(self, kernel_size, stride, padding, ceil_mode,
/// count_include_pad, divisor_override)
pub fn avg_pool(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let k = spatial_rank(op);
    let mut w = window(op, k)?;
    w.dilation = vec![1; k];
    let x = op.input("self")?;
    let out = op.result().clone();
    let rank = x.ty.rank();
    let lead = rank - k;
    let count_include_pad = op.bool("count_include_pad", true)?;
    let divisor_override = match op.attrs.get("divisor_override") {
        Some(Attr::Int(d)) if *d != 0 => Some(*d),
        _ => None,
    };
    let acc = compute_elem(&out.elem).to_string();
    let (xp, xp_ty) = padded(e, &x.ssa, &x.ty, &w, &out, 0.0);
    let (x_map, win_map, out_map, iterators) = window_maps(rank, &w);
    let win_ty = Ty::new(w.kernel.clone(), "i1");
    let win = empty(e, &win_ty);
    let sum_ty = out.with_elem(&acc);
    let init = filled(e, &sum_ty, &literal(0.0, &acc));
    let from = x.ty.elem.clone();
    let a = acc.clone();
    let sums = generic(e, &[(xp, xp_ty, x_map), (win, win_ty, win_map)], &init, &sum_ty, Some(out_map), &iterators, "", |e, v| {
        let xv = scalar::cast(e, &v[0], &from, &a);
        scalar::add(e, &v[2], &xv, &a)
    });
    // divisor per output position, as torch's kernel computes it
    let divisor = |idx: &[i64]| {
        let mut div = 1i64;
        for d in 0..k {
            let input = x.ty.shape[lead + d];
            let start = idx[d] * w.stride[d] - w.padding[d];
            let end = (start + w.kernel[d]).min(input + w.padding[d]);
            let pool = end - start;
            let (s, e2) = (start.max(0), end.min(input));
            div *= if count_include_pad { pool } else { e2 - s };
        }
        divisor_override.unwrap_or(div) as f64
    };
    Ok(vec![divide_by_window(e, &sums, &sum_ty, &out, lead, divisor)])
}

/// `sums / divisor(position)`, converted to `out`'s dtype. The divisors are
/// a constant over the pooled output dims (from `lead` on), computed here
/// from each position's index, since shapes are static.
fn divide_by_window(e: &mut Emitter, sums: &str, sums_ty: &Ty, out: &Ty, lead: usize, divisor: impl Fn(&[i64]) -> f64) -> String {
    let spatial: Vec<i64> = out.shape[lead..].to_vec();
    let positions: i64 = spatial.iter().product();
    let divisors: Vec<f64> = (0..positions)
        .map(|flat| {
            let mut rem = flat;
            let mut idx = vec![0; spatial.len()];
            for d in (0..spatial.len()).rev() {
                idx[d] = rem % spatial[d];
                rem /= spatial[d];
            }
            divisor(&idx)
        })
        .collect();
    let acc = sums_ty.elem.clone();
    let div_ty = Ty::new(spatial, &acc);
    let flat = dense(e, &divisors, &div_ty);
    let div = super::shape::reshape_value(e, &flat, &div_ty.with_shape(vec![positions]), &div_ty);
    let out_elem = out.elem.clone();
    super::elementwise::map(e, &[(sums, sums_ty), (&div, &div_ty)], out, |e, v| {
        let q = scalar::div(e, &v[0], &v[1], &acc);
        scalar::cast(e, &q, &acc, &out_elem)
    })
}

/// adaptive_{avg,max}_pool{1,2,3}d and _adaptive_avg_pool{2,3}d: output
/// position o covers [floor(o*In/Out), ceil((o+1)*In/Out)). Windows are
/// read at their largest size and masked.
pub fn adaptive_pool(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let k = spatial_rank(op);
    let rank = x.ty.rank();
    let lead = rank - k;
    let is_max = op.name.contains("max");
    let acc = if is_max { out.elem.clone() } else { compute_elem(&out.elem).to_string() };
    let ins: Vec<i64> = x.ty.shape[lead..].to_vec();
    let outs: Vec<i64> = out.shape[lead..].to_vec();
    let uniform = (0..k).all(|d| outs[d] > 0 && ins[d] % outs[d] == 0);
    let indices_used = op.results.len() == 2 && op.results_used[1];
    if uniform && !indices_used {
        let pooled = pool_uniform_windows(e, &x.ssa, &x.ty, lead, &outs, is_max, &acc, &out);
        let mut r = vec![pooled];
        if op.results.len() == 2 {
            r.push(super::UNUSED_RESULT.to_string());
        }
        return Ok(r);
    }
    let starts: Vec<Vec<i64>> = (0..k).map(|d| (0..outs[d]).map(|o| o * ins[d] / outs[d]).collect()).collect();
    let ends: Vec<Vec<i64>> =
        (0..k).map(|d| (0..outs[d]).map(|o| ((o + 1) * ins[d] + outs[d] - 1) / outs[d]).collect()).collect();
    let kmax: Vec<i64> =
        (0..k).map(|d| (0..outs[d] as usize).map(|o| ends[d][o] - starts[d][o]).max().unwrap_or(1)).collect();
    let xt = x.ty.clone();
    let xs = x.ssa.clone();
    let elem = x.ty.elem.clone();
    // iteration: (lead.., out.., window..); the element read is clamped to
    // its window's last element, and masked when past the window.
    let all = dim_list(rank + k);
    let out_map = format!("affine_map<({all}) -> ({})>", dim_list(rank));
    let win_ty = Ty::new(kmax.clone(), "i1");
    let win = empty(e, &win_ty);
    let win_map = format!(
        "affine_map<({all}) -> ({})>",
        (0..k).map(|d| format!("d{}", rank + d)).collect::<Vec<_>>().join(", ")
    );
    let mut iterators = vec!["parallel"; rank];
    iterators.extend(vec!["reduction"; k]);
    let init_v = if is_max { scalar::lowest(&acc) } else { 0.0 };
    let acc_ty = out.with_elem(&acc);
    let init = filled(e, &acc_ty, &literal(init_v, &acc));
    let a = acc.clone();
    let result = generic(e, &[(win, win_ty, win_map)], &init, &acc_ty, Some(out_map), &iterators, "", |e, v| {
        let mut idx: Vec<String> = (0..lead).map(|d| e.assign(format!("linalg.index {d} : index"))).collect();
        let mut inside = constant(e, 1.0, "i1");
        for d in 0..k {
            let o = e.assign(format!("linalg.index {} : index", lead + d));
            let t = e.assign(format!("linalg.index {} : index", rank + d));
            let n_in = super::shape::index_const(e, ins[d]);
            let n_out = super::shape::index_const(e, outs[d]);
            let on = e.assign(format!("arith.muli {o}, {n_in} : index"));
            let start = e.assign(format!("arith.divui {on}, {n_out} : index"));
            let o1 = e.assign(format!("arith.addi {on}, {n_in} : index"));
            let nm1 = super::shape::index_const(e, outs[d] - 1);
            let o1 = e.assign(format!("arith.addi {o1}, {nm1} : index"));
            let end = e.assign(format!("arith.divui {o1}, {n_out} : index"));
            let pos = e.assign(format!("arith.addi {start}, {t} : index"));
            let ok = e.assign(format!("arith.cmpi ult, {pos}, {end} : index"));
            inside = e.assign(format!("arith.andi {inside}, {ok} : i1"));
            let one = super::shape::index_const(e, 1);
            let last = e.assign(format!("arith.subi {end}, {one} : index"));
            idx.push(e.assign(format!("arith.minui {pos}, {last} : index")));
        }
        let xv = extract(e, &xs, &xt, &idx);
        let xv = scalar::cast(e, &xv, &elem, &a);
        let combined = if is_max { scalar::max(e, &v[1], &xv, &a) } else { scalar::add(e, &v[1], &xv, &a) };
        scalar::select(e, &inside, &combined, &v[1], &a)
    });
    if is_max {
        if op.results.len() == 2 && op.results_used[1] {
            let indices = adaptive_max_indices(e, &xs, &xt, &op.results[1], &ins, &outs, &kmax)?;
            return Ok(vec![result, indices]);
        }
        let mut r = vec![result];
        if op.results.len() == 2 {
            r.push(super::UNUSED_RESULT.to_string());
        }
        return Ok(r);
    }
    // divide by the window sizes
    let window_size = |idx: &[i64]| (0..k).map(|d| ends[d][idx[d] as usize] - starts[d][idx[d] as usize]).product::<i64>() as f64;
    Ok(vec![divide_by_window(e, &result, &acc_ty, &out, lead, window_size)])
}

/// Adaptive pooling whose windows all have the same size and tile the
/// input (every pooled size a multiple of the output's: global pooling,
/// 14 -> 7) as a plain reduction over the window dims, which the reduction
/// strategy vectorizes along a contiguous window, instead of windows read
/// element by element through a mask (efficientnet_b0's squeeze-and-excite
/// means over 112x112 and 56x56 took 0.2 ms each). Global pooling reduces
/// the pooled dims as one contiguous dim: [lead.., I1 * .. * Ik].
#[allow(clippy::too_many_arguments)]
fn pool_uniform_windows(e: &mut Emitter, x: &str, x_ty: &Ty, lead: usize, outs: &[i64], is_max: bool, acc: &str, out: &Ty) -> String {
    let ins = &x_ty.shape[lead..];
    let kept = &x_ty.shape[..lead];
    let (split_ty, window_dims) = if outs.iter().all(|&o| o == 1) {
        let window: i64 = ins.iter().product();
        (x_ty.with_shape(kept.iter().copied().chain([window]).collect()), vec![lead])
    } else {
        // [lead.., O1, W1, .., Ok, Wk]
        let shape = kept.iter().copied().chain(outs.iter().zip(ins).flat_map(|(&o, &i)| [o, i / o])).collect();
        (x_ty.with_shape(shape), (0..outs.len()).map(|d| lead + 2 * d + 1).collect())
    };
    let split = reshape_value(e, x, x_ty, &split_ty);
    let (pooled, pooled_ty) = if is_max {
        super::reduction::reduce(e, &split, &split_ty, &window_dims, acc, scalar::lowest(acc), scalar::max)
    } else {
        super::reduction::mean_of(e, &split, &split_ty, &window_dims, acc)
    };
    super::reduction::finish(e, &pooled, &pooled_ty, out)
}

/// The indices adaptive max pooling returns: for each output position, the
/// flat index (within the pooled dims of the input) of its window's
/// maximum; the first one on ties, a NaN wins (torch's kernel takes
/// `value > max || isnan(value)`).
fn adaptive_max_indices(e: &mut Emitter, xs: &str, xt: &Ty, idx_ty: &Ty, ins: &[i64], outs: &[i64], kmax: &[i64]) -> Result<String, String> {
    let k = ins.len();
    let rank = xt.rank();
    let lead = rank - k;
    let elem = xt.elem.clone();
    let t = crate::types::mlir_elem(&elem).to_string();
    let all = dim_list(rank + k);
    let out_map = format!("affine_map<({all}) -> ({})>", dim_list(rank));
    let win_ty = Ty::new(kmax.to_vec(), "i1");
    let win = empty(e, &win_ty);
    let win_map = format!("affine_map<({all}) -> ({})>", (0..k).map(|d| format!("d{}", rank + d)).collect::<Vec<_>>().join(", "));
    let val_ty = idx_ty.with_elem(&elem);
    let init_v = filled(e, &val_ty, &literal(scalar::lowest(&elem), &elem));
    let init_i = filled(e, idx_ty, "-1");
    let mut iterators: Vec<String> = (0..rank).map(|_| "\"parallel\"".to_string()).collect();
    iterators.extend((0..k).map(|_| "\"reduction\"".to_string()));
    let r = e.fresh();
    let (w, acc, acc_i) = (e.fresh(), e.fresh(), e.fresh());
    e.line(format!(
        "{r}:2 = linalg.generic {{indexing_maps = [{win_map}, {out_map}, {out_map}], iterator_types = [{}]}} ins({win} : {win_ty}) outs({init_v}, {init_i} : {val_ty}, {idx_ty}) {{",
        iterators.join(", ")
    ));
    e.line(format!("^bb0({w}: i1, {acc}: {t}, {acc_i}: i64):"));
    e.indented(|e| {
        let mut idx: Vec<String> = (0..lead).map(|d| e.assign(format!("linalg.index {d} : index"))).collect();
        let mut inside = constant(e, 1.0, "i1");
        let mut flat = constant(e, 0.0, "i64");
        for d in 0..k {
            let o = e.assign(format!("linalg.index {} : index", lead + d));
            let tw = e.assign(format!("linalg.index {} : index", rank + d));
            let n_in = super::shape::index_const(e, ins[d]);
            let n_out = super::shape::index_const(e, outs[d]);
            let on = e.assign(format!("arith.muli {o}, {n_in} : index"));
            let start = e.assign(format!("arith.divui {on}, {n_out} : index"));
            let o1 = e.assign(format!("arith.addi {on}, {n_in} : index"));
            let nm1 = super::shape::index_const(e, outs[d] - 1);
            let o1 = e.assign(format!("arith.addi {o1}, {nm1} : index"));
            let end = e.assign(format!("arith.divui {o1}, {n_out} : index"));
            let pos = e.assign(format!("arith.addi {start}, {tw} : index"));
            let ok = e.assign(format!("arith.cmpi ult, {pos}, {end} : index"));
            inside = e.assign(format!("arith.andi {inside}, {ok} : i1"));
            let one = super::shape::index_const(e, 1);
            let last = e.assign(format!("arith.subi {end}, {one} : index"));
            let p = e.assign(format!("arith.minui {pos}, {last} : index"));
            let p64 = e.assign(format!("arith.index_cast {p} : index to i64"));
            let n = constant(e, ins[d] as f64, "i64");
            let f = scalar::mul(e, &flat, &n, "i64");
            flat = scalar::add(e, &f, &p64, "i64");
            idx.push(p);
        }
        let v = extract(e, xs, xt, &idx);
        let zero = constant(e, 0.0, "i64");
        let first = scalar::compare(e, "lt", &acc_i, &zero, "i64");
        let gt = scalar::compare(e, "gt", &v, &acc, &elem);
        let better = if crate::types::is_float(&elem) {
            let nan = scalar::is_nan(e, &v, &elem);
            e.assign(format!("arith.ori {gt}, {nan} : i1"))
        } else {
            gt
        };
        let take = e.assign(format!("arith.ori {better}, {first} : i1"));
        let take = e.assign(format!("arith.andi {take}, {inside} : i1"));
        let nv = scalar::select(e, &take, &v, &acc, &elem);
        let ni = scalar::select(e, &take, &flat, &acc_i, "i64");
        e.line(format!("linalg.yield {nv}, {ni} : {t}, i64"));
    });
    e.line(format!("}} -> ({val_ty}, {idx_ty})"));
    Ok(format!("{r}#1"))
}

/// The scale torch uses for output dim `d` of an upsample: from
/// `scale_factors` when given, else in/out.
fn upsample_scales(op: &AtenOp, ins: &[i64], outs: &[i64], align_corners: bool) -> Vec<f64> {
    let given = match op.attrs.get("scale_factors") {
        Some(Attr::Floats(v)) if v.len() == ins.len() => Some(v.clone()),
        _ => None,
    };
    let per_dim: Vec<Option<f64>> = match (&given, ins.len()) {
        (Some(v), _) => v.iter().map(|&s| Some(s)).collect(),
        _ => {
            let names = ["scales_h", "scales_w"];
            (0..ins.len())
                .map(|d| match op.attrs.get(if ins.len() == 1 { "scales" } else { names.get(d).copied().unwrap_or("") }) {
                    Some(Attr::Float(s)) => Some(*s),
                    _ => None,
                })
                .collect()
        }
    };
    (0..ins.len())
        .map(|d| {
            if align_corners {
                if outs[d] > 1 { (ins[d] - 1) as f64 / (outs[d] - 1) as f64 } else { 0.0 }
            } else {
                match per_dim[d] {
                    Some(s) if s > 0.0 => 1.0 / s,
                    _ => ins[d] as f64 / outs[d] as f64,
                }
            }
        })
        .collect()
}

/// upsample_nearest{1,2,3}d(.vec): source index floor(o * scale), clamped.
/// (`_upsample_nearest_exact` uses floor((o + 0.5) * scale).)
pub fn upsample_nearest(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input").or_else(|_| op.input("self"))?;
    let out = op.result().clone();
    let k = spatial_rank(op);
    let lead = x.ty.rank() - k;
    let ins: Vec<i64> = x.ty.shape[lead..].to_vec();
    let outs: Vec<i64> = out.shape[lead..].to_vec();
    let scales = upsample_scales(op, &ins, &outs, false);
    let exact = op.name.contains("exact");
    // source indices per dim, computed in f32 as torch does
    let tables: Vec<Vec<i64>> = (0..k)
        .map(|d| {
            (0..outs[d])
                .map(|o| {
                    let s = scales[d] as f32;
                    let src = if exact { ((o as f32 + 0.5) * s).floor() } else { (o as f32 * s).floor() };
                    (src as i64).min(ins[d] - 1)
                })
                .collect()
        })
        .collect();
    let table_vals: Vec<String> = tables
        .iter()
        .map(|t| {
            let ty = Ty::new(vec![t.len() as i64], "i64");
            let vals: Vec<f64> = t.iter().map(|&v| v as f64).collect();
            dense(e, &vals, &ty)
        })
        .collect();
    let (xs, xt) = (x.ssa.clone(), x.ty.clone());
    let r = indexed(e, &out, |e, i| {
        let mut src: Vec<String> = i[..lead].to_vec();
        for d in 0..k {
            let t = extract(e, &table_vals[d], &Ty::new(vec![outs[d]], "i64"), &[i[lead + d].clone()]);
            src.push(e.assign(format!("arith.index_cast {t} : i64 to index")));
        }
        extract(e, &xs, &xt, &src)
    });
    Ok(vec![r])
}

/// upsample_bilinear2d(.vec) and upsample_linear1d: each output dim reads
/// two neighbours with weights computed here (torch's
/// area_pixel_compute_source_index, in f32).
pub fn upsample_linear(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("input").or_else(|_| op.input("self"))?;
    let out = op.result().clone();
    let k = spatial_rank(op);
    let lead = x.ty.rank() - k;
    let align_corners = op.bool("align_corners", false)?;
    let ins: Vec<i64> = x.ty.shape[lead..].to_vec();
    let outs: Vec<i64> = out.shape[lead..].to_vec();
    let scales = upsample_scales(op, &ins, &outs, align_corners);
    let acc = compute_elem(&out.elem).to_string();
    // Interpolate one dim at a time: y = x[i0] * (1 - l) + x[i1] * l.
    let mut cur = x.ssa.clone();
    let mut cur_ty = x.ty.clone();
    for d in 0..k {
        let (n_in, n_out) = (ins[d], outs[d]);
        let mut i0 = Vec::new();
        let mut i1 = Vec::new();
        let mut l1 = Vec::new();
        for o in 0..n_out {
            let s = scales[d] as f32;
            let src = if align_corners { s * o as f32 } else { (s * (o as f32 + 0.5) - 0.5).max(0.0) };
            let lo = (src.floor() as i64).min(n_in - 1);
            let hi = if lo < n_in - 1 { lo + 1 } else { lo };
            i0.push(lo as f64);
            i1.push(hi as f64);
            l1.push((src - lo as f32) as f64);
        }
        let idx_ty = Ty::new(vec![n_out], "i64");
        let w_ty = Ty::new(vec![n_out], &acc);
        let (t0, t1, tl) = (dense(e, &i0, &idx_ty), dense(e, &i1, &idx_ty), dense(e, &l1, &w_ty));
        let mut shape = cur_ty.shape.clone();
        shape[lead + d] = n_out;
        let next_ty = Ty::new(shape, &acc);
        let (cs, ct, a) = (cur.clone(), cur_ty.clone(), acc.clone());
        let axis = lead + d;
        let nt = next_ty.clone();
        cur = indexed(e, &nt, |e, i| {
            let o = i[axis].clone();
            let lo = extract(e, &t0, &idx_ty, &[o.clone()]);
            let hi = extract(e, &t1, &idx_ty, &[o.clone()]);
            let lam = extract(e, &tl, &w_ty, &[o]);
            let mut p0 = i.to_vec();
            p0[axis] = e.assign(format!("arith.index_cast {lo} : i64 to index"));
            let mut p1 = i.to_vec();
            p1[axis] = e.assign(format!("arith.index_cast {hi} : i64 to index"));
            let v0 = extract(e, &cs, &ct, &p0);
            let v1 = extract(e, &cs, &ct, &p1);
            let v0 = scalar::cast(e, &v0, &ct.elem, &a);
            let v1 = scalar::cast(e, &v1, &ct.elem, &a);
            let one = constant(e, 1.0, &a);
            let l0 = scalar::sub(e, &one, &lam, &a);
            let w0 = scalar::mul(e, &v0, &l0, &a);
            let w1 = scalar::mul(e, &v1, &lam, &a);
            scalar::add(e, &w0, &w1, &a)
        });
        cur_ty = next_ty;
    }
    Ok(vec![super::elementwise::convert(e, &cur, &cur_ty, &out.elem)])
}


/// grid_sampler_2d(input [N, C, H, W], grid [N, Ho, Wo, 2], interpolation_mode,
/// padding_mode, align_corners): bilinear (0) or nearest (1) sampling with
/// zeros (0) or border (1) padding.
pub fn grid_sample(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (x, grid) = (op.input("input")?, op.input("grid")?);
    let mode = op.int("interpolation_mode", 0)?;
    let padding = op.int("padding_mode", 0)?;
    let align = op.bool("align_corners", false)?;
    if mode > 1 || padding > 1 {
        return Err(format!("{}: only bilinear/nearest sampling with zeros/border padding is supported", op.name));
    }
    let out = op.result().clone();
    let acc = compute_elem(&out.elem).to_string();
    let (h, w) = (x.ty.shape[2], x.ty.shape[3]);
    let (xs, xt, gs, gt) = (x.ssa.clone(), x.ty.clone(), grid.ssa.clone(), grid.ty.clone());
    let out_elem = out.elem.clone();
    let r = indexed(e, &out, |e, i| {
        let (n, c, oy, ox) = (&i[0], &i[1], &i[2], &i[3]);
        // source coordinates in pixels
        let coord = |e: &mut Emitter, k: i64, size: i64| {
            let kk = super::shape::index_const(e, k);
            let g = extract(e, &gs, &gt, &[n.clone(), oy.clone(), ox.clone(), kk]);
            let g = scalar::cast(e, &g, &gt.elem, &acc);
            let one = constant(e, 1.0, &acc);
            let half = constant(e, 0.5, &acc);
            let gp = scalar::add(e, &g, &one, &acc);
            let p = if align {
                let s = constant(e, (size - 1) as f64, &acc);
                let t = scalar::mul(e, &gp, &s, &acc);
                scalar::mul(e, &t, &half, &acc)
            } else {
                let s = constant(e, size as f64, &acc);
                let t = scalar::mul(e, &gp, &s, &acc);
                let t = scalar::sub(e, &t, &one, &acc);
                scalar::mul(e, &t, &half, &acc)
            };
            if padding == 1 {
                let lo = constant(e, 0.0, &acc);
                let hi = constant(e, (size - 1) as f64, &acc);
                let p = scalar::max(e, &p, &lo, &acc);
                scalar::min(e, &p, &hi, &acc)
            } else {
                p
            }
        };
        let px = coord(e, 0, w);
        let py = coord(e, 1, h);
        // value at integer (yy, xx) as f64-free i64 coords, zero outside
        let sample = |e: &mut Emitter, yy: &str, xx: &str| {
            let zero = constant(e, 0.0, "i64");
            let (hm, wm) = (constant(e, (h - 1) as f64, "i64"), constant(e, (w - 1) as f64, "i64"));
            let y_ok1 = scalar::compare(e, "ge", yy, &zero, "i64");
            let y_ok2 = scalar::compare(e, "le", yy, &hm, "i64");
            let x_ok1 = scalar::compare(e, "ge", xx, &zero, "i64");
            let x_ok2 = scalar::compare(e, "le", xx, &wm, "i64");
            let ok = e.assign(format!("arith.andi {y_ok1}, {y_ok2} : i1"));
            let ok = e.assign(format!("arith.andi {ok}, {x_ok1} : i1"));
            let ok = e.assign(format!("arith.andi {ok}, {x_ok2} : i1"));
            let yc = e.assign(format!("arith.maxsi {yy}, {zero} : i64"));
            let yc = e.assign(format!("arith.minsi {yc}, {hm} : i64"));
            let xc = e.assign(format!("arith.maxsi {xx}, {zero} : i64"));
            let xc = e.assign(format!("arith.minsi {xc}, {wm} : i64"));
            let yi = e.assign(format!("arith.index_cast {yc} : i64 to index"));
            let xi = e.assign(format!("arith.index_cast {xc} : i64 to index"));
            let v = extract(e, &xs, &xt, &[n.clone(), c.clone(), yi, xi]);
            let v = scalar::cast(e, &v, &xt.elem, &acc);
            let z = constant(e, 0.0, &acc);
            scalar::select(e, &ok, &v, &z, &acc)
        };
        let v = if mode == 1 {
            let ry = scalar::math(e, "roundeven", &[&py], &acc);
            let rx = scalar::math(e, "roundeven", &[&px], &acc);
            let yy = scalar::cast(e, &ry, &acc, "i64");
            let xx = scalar::cast(e, &rx, &acc, "i64");
            sample(e, &yy, &xx)
        } else {
            let fy = scalar::math(e, "floor", &[&py], &acc);
            let fx = scalar::math(e, "floor", &[&px], &acc);
            let ly = scalar::sub(e, &py, &fy, &acc);
            let lx = scalar::sub(e, &px, &fx, &acc);
            let y0 = scalar::cast(e, &fy, &acc, "i64");
            let x0 = scalar::cast(e, &fx, &acc, "i64");
            let one = constant(e, 1.0, "i64");
            let y1 = scalar::add(e, &y0, &one, "i64");
            let x1 = scalar::add(e, &x0, &one, "i64");
            let onef = constant(e, 1.0, &acc);
            let hy = scalar::sub(e, &onef, &ly, &acc);
            let hx = scalar::sub(e, &onef, &lx, &acc);
            let mut total = constant(e, 0.0, &acc);
            for (yy, xx, wy, wx) in [(&y0, &x0, &hy, &hx), (&y0, &x1, &hy, &lx), (&y1, &x0, &ly, &hx), (&y1, &x1, &ly, &lx)] {
                let v = sample(e, yy, xx);
                let wgt = scalar::mul(e, wy, wx, &acc);
                let t = scalar::mul(e, &v, &wgt, &acc);
                total = scalar::add(e, &total, &t, &acc);
            }
            total
        };
        scalar::cast(e, &v, &acc, &out_elem)
    });
    Ok(vec![r])
}

/// col2im(self [N, C*kh*kw, L], output_size, kernel_size, dilation, padding,
/// stride): the inverse of im2col, summing overlapping windows.
pub fn col2im(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let kernel = op.ints("kernel_size", 2, &[])?;
    let dilation = op.ints("dilation", 2, &[1, 1])?;
    let padding = op.ints("padding", 2, &[0, 0])?;
    let stride = op.ints("stride", 2, &[1, 1])?;
    let (hh, ww) = (out.shape[out.rank() - 2], out.shape[out.rank() - 1]);
    let blocks: Vec<i64> =
        (0..2).map(|d| ([hh, ww][d] + 2 * padding[d] - dilation[d] * (kernel[d] - 1) - 1) / stride[d] + 1).collect();
    let batched = x.ty.rank() == 3;
    let acc = compute_elem(&out.elem).to_string();
    let (xs, xt) = (x.ssa.clone(), x.ty.clone());
    let out_elem = out.elem.clone();
    let r = indexed(e, &out, |e, i| {
        let (lead, spatial) = i.split_at(i.len() - 3);
        let (c, y, xx) = (&spatial[0], &spatial[1], &spatial[2]);
        let y = e.assign(format!("arith.index_cast {y} : index to i64"));
        let xx = e.assign(format!("arith.index_cast {xx} : index to i64"));
        let mut total = constant(e, 0.0, &acc);
        for ki in 0..kernel[0] {
            for kj in 0..kernel[1] {
                // block (by, bx) with by*stride - pad + ki*dil = y
                let mut ok = constant(e, 1.0, "i1");
                let mut block = Vec::new();
                for (d, (pos, k)) in [(&y, ki), (&xx, kj)].into_iter().enumerate() {
                    let off = constant(e, (padding[d] - k * dilation[d]) as f64, "i64");
                    let t = scalar::add(e, pos, &off, "i64");
                    let s = constant(e, stride[d] as f64, "i64");
                    let zero = constant(e, 0.0, "i64");
                    let rem = e.assign(format!("arith.remsi {t}, {s} : i64"));
                    let aligned = scalar::compare(e, "eq", &rem, &zero, "i64");
                    let nonneg = scalar::compare(e, "ge", &t, &zero, "i64");
                    let b = e.assign(format!("arith.divsi {t}, {s} : i64"));
                    let limit = constant(e, blocks[d] as f64, "i64");
                    let inside = scalar::compare(e, "lt", &b, &limit, "i64");
                    ok = e.assign(format!("arith.andi {ok}, {aligned} : i1"));
                    ok = e.assign(format!("arith.andi {ok}, {nonneg} : i1"));
                    ok = e.assign(format!("arith.andi {ok}, {inside} : i1"));
                    let b = e.assign(format!("arith.maxsi {b}, {zero} : i64"));
                    let last = constant(e, (blocks[d] - 1) as f64, "i64");
                    block.push(e.assign(format!("arith.minsi {b}, {last} : i64")));
                }
                let bw = constant(e, blocks[1] as f64, "i64");
                let l = scalar::mul(e, &block[0], &bw, "i64");
                let l = scalar::add(e, &l, &block[1], "i64");
                let l = e.assign(format!("arith.index_cast {l} : i64 to index"));
                let kk = super::shape::index_const(e, kernel[0] * kernel[1]);
                let row = e.assign(format!("arith.muli {c}, {kk} : index"));
                let kidx = super::shape::index_const(e, ki * kernel[1] + kj);
                let row = e.assign(format!("arith.addi {row}, {kidx} : index"));
                let mut idx: Vec<String> = if batched { lead.to_vec() } else { vec![] };
                idx.push(row);
                idx.push(l);
                let v = extract(e, &xs, &xt, &idx);
                let v = scalar::cast(e, &v, &xt.elem, &acc);
                let z = constant(e, 0.0, &acc);
                let v = scalar::select(e, &ok, &v, &z, &acc);
                total = scalar::add(e, &total, &v, &acc);
            }
        }
        scalar::cast(e, &total, &acc, &out_elem)
    });
    Ok(vec![r])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kernel: i64, stride: i64, padding: i64) -> Window {
        Window { kernel: vec![kernel, 1], stride: vec![stride, 1], padding: vec![padding, 0], dilation: vec![1, 1] }
    }

    #[test]
    fn rows_whose_windows_reach_past_the_input_are_pieces_of_their_own() {
        // resnet's 3x3 / 2 / 1 on 8 rows: row 0 reads rows -1..1
        assert_eq!(row_pieces(8, 4, &window(3, 2, 1)), vec![(0, 1), (1, 3)]);
        assert_eq!(rows_inside(0, 8, &window(3, 2, 1)), (1, 3));
        // squeezenet's 3x3 / 2 / 0 on 111 rows (ceil_mode): all inside
        assert_eq!(row_pieces(111, 55, &window(3, 2, 0)), vec![(0, 55)]);
        // 2 / 2 on 7 rows, ceil_mode: the last window's second row is past the input
        assert_eq!(row_pieces(7, 4, &window(2, 2, 0)), vec![(0, 3), (3, 1)]);
        assert_eq!(rows_inside(3, 7, &window(2, 2, 0)), (0, 1));
        // 4 / 2 / 2 on 10 rows: one row piece at each side
        assert_eq!(row_pieces(10, 6, &window(4, 2, 2)), vec![(0, 1), (1, 4), (5, 1)]);
        assert_eq!(rows_inside(5, 10, &window(4, 2, 2)), (0, 2));
    }
}
