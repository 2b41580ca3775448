//! Pooling as a windowed reduction `linalg.generic` over (n, c, oh, ow, kh, kw).
//! The output size comes from torch's result type, so ceil_mode only changes
//! how much padding the window needs on the high side.

use super::conv::pad_spatial;
use super::elementwise::{empty, filled};
use super::{AtenOp, Emitter};
use crate::types::Ty;

struct Window {
    kernel: Vec<i64>,
    stride: Vec<i64>,
    padding: Vec<i64>,
    dilation: Vec<i64>,
}

fn window(op: &AtenOp) -> Result<Window, String> {
    let kernel = op.ints("kernel_size", 2, &[])?;
    if kernel.len() != 2 {
        return Err(format!("{}: kernel_size must have 2 entries", op.name));
    }
    let stride = op.ints("stride", 2, &kernel)?;
    Ok(Window { stride, padding: op.ints("padding", 2, &[0, 0])?, dilation: op.ints("dilation", 2, &[1, 1])?, kernel })
}

/// The lowest value of an element type: the identity of max.
fn lowest_int(elem: &str) -> String {
    match elem {
        "f64" => "0xFFF0000000000000".to_string(),
        "i1" => "0".into(),
        e => format!("{}", -(1i128 << (crate::types::bit_width(e) - 1))),
    }
}

fn lowest_literal(elem: &str) -> String {
    match elem {
        "f32" => "0xFF800000".into(),
        "f16" => "0xFC00".into(),
        "bf16" => "0xFF80".into(),
        _ => lowest_int(elem),
    }
}

/// Pads the input so that every window of the output lies inside it.
fn padded_input(e: &mut Emitter, op: &AtenOp, w: &Window, out: &Ty) -> Result<(String, Ty), String> {
    let x = op.input("self")?;
    if x.ty.rank() != 4 {
        return Err(format!("{}: only NCHW (rank 4) input is supported yet, got {}", op.name, x.ty));
    }
    let mut high = vec![0i64; 2];
    for d in 0..2 {
        let needed = (out.shape[2 + d] - 1) * w.stride[d] + (w.kernel[d] - 1) * w.dilation[d] + 1;
        high[d] = (needed - x.ty.shape[2 + d] - w.padding[d]).max(0);
    }
    Ok(pad_spatial(e, &x.ssa, &x.ty, &w.padding, &high, &lowest_literal(&x.ty.elem)))
}

fn window_map(w: &Window) -> String {
    format!(
        "affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 * {} + d4 * {}, d3 * {} + d5 * {})>",
        w.stride[0], w.dilation[0], w.stride[1], w.dilation[1]
    )
}

const OUT_MAP: &str = "affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>";
const ITERATORS: &str = "\"parallel\", \"parallel\", \"parallel\", \"parallel\", \"reduction\", \"reduction\"";

fn kernel_shape(w: &Window, elem: &str) -> Ty {
    Ty::new(w.kernel.clone(), elem)
}

/// max_pool2d(self, kernel_size, stride, padding, dilation, ceil_mode)
pub fn max_pool2d(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let w = window(op)?;
    let out = op.result().clone();
    let (xp, xp_ty) = padded_input(e, op, &w, &out)?;
    let init = filled(e, &out, &lowest_literal(&out.elem));
    let elem = out.elem.clone();
    let kernel = empty(e, &kernel_shape(&w, &elem));
    let kernel_ty = kernel_shape(&w, &elem);
    let r = e.fresh();
    let (a, k, acc) = (e.fresh(), e.fresh(), e.fresh());
    e.line(format!(
        "{r} = linalg.generic {{indexing_maps = [{}, affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>, {OUT_MAP}], iterator_types = [{ITERATORS}]}} ins({xp}, {kernel} : {xp_ty}, {kernel_ty}) outs({init} : {out}) {{",
        window_map(&w)
    ));
    e.line(format!("^bb0({a}: {elem}, {k}: {elem}, {acc}: {elem}):"));
    e.indented(|e| {
        let m = if out.is_float() {
            // maximumf propagates NaN, as torch's max pooling does.
            e.assign(format!("arith.maximumf {a}, {acc} : {elem}"))
        } else {
            e.assign(format!("arith.maxsi {a}, {acc} : {elem}"))
        };
        e.line(format!("linalg.yield {m} : {elem}"));
    });
    e.line(format!("}} -> {out}"));
    Ok(vec![r])
}

/// max_pool2d_with_indices: the max and the flat index (h * W + w) of the
/// first maximal element of each window, as torch returns it; NaN wins.
pub fn max_pool2d_with_indices(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    if !op.results_used[1] {
        // The core ATen form always asks for indices; most programs drop them.
        let values = max_pool2d(e, op)?;
        return Ok(vec![values[0].clone(), super::UNUSED_RESULT.to_string()]);
    }
    let w = window(op)?;
    let out = op.result().clone();
    let idx_ty = op.results[1].clone();
    let width = op.input("self")?.ty.shape[3];
    let (xp, xp_ty) = padded_input(e, op, &w, &out)?;
    let elem = out.elem.clone();
    let init = filled(e, &out, &lowest_literal(&elem));
    let init_idx = filled(e, &idx_ty, "-1");
    let kernel_ty = kernel_shape(&w, &elem);
    let kernel = empty(e, &kernel_ty);
    let r = e.fresh();
    let (a, k, acc, acc_i) = (e.fresh(), e.fresh(), e.fresh(), e.fresh());
    e.line(format!(
        "{r}:2 = linalg.generic {{indexing_maps = [{}, affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>, {OUT_MAP}, {OUT_MAP}], iterator_types = [{ITERATORS}]}} ins({xp}, {kernel} : {xp_ty}, {kernel_ty}) outs({init}, {init_idx} : {out}, {idx_ty}) {{",
        window_map(&w)
    ));
    e.line(format!("^bb0({a}: {elem}, {k}: {elem}, {acc}: {elem}, {acc_i}: i64):"));
    e.indented(|e| {
        let index = |e: &mut Emitter, d: usize| {
            let i = e.assign(format!("linalg.index {d} : index"));
            e.assign(format!("arith.index_cast {i} : index to i64"))
        };
        let (oh, ow, kh, kw) = (index(e, 2), index(e, 3), index(e, 4), index(e, 5));
        let c = |e: &mut Emitter, v: i64| e.assign(format!("arith.constant {v} : i64"));
        let (sh, sw, dh, dw) = (c(e, w.stride[0]), c(e, w.stride[1]), c(e, w.dilation[0]), c(e, w.dilation[1]));
        let (ph, pw, wd) = (c(e, w.padding[0]), c(e, w.padding[1]), c(e, width));
        let coord = |e: &mut Emitter, o: &str, s: &str, k: &str, d: &str, p: &str| {
            let a = e.assign(format!("arith.muli {o}, {s} : i64"));
            let b = e.assign(format!("arith.muli {k}, {d} : i64"));
            let ab = e.assign(format!("arith.addi {a}, {b} : i64"));
            e.assign(format!("arith.subi {ab}, {p} : i64"))
        };
        let h = coord(e, &oh, &sh, &kh, &dh, &ph);
        let x = coord(e, &ow, &sw, &kw, &dw, &pw);
        let hw = e.assign(format!("arith.muli {h}, {wd} : i64"));
        let flat = e.assign(format!("arith.addi {hw}, {x} : i64"));
        let zero = c(e, 0);
        let first = e.assign(format!("arith.cmpi slt, {acc_i}, {zero} : i64"));
        let take = if out.is_float() {
            let gt = e.assign(format!("arith.cmpf ogt, {a}, {acc} : {elem}"));
            let nan = e.assign(format!("arith.cmpf uno, {a}, {a} : {elem}"));
            let any = e.assign(format!("arith.ori {gt}, {nan} : i1"));
            e.assign(format!("arith.ori {any}, {first} : i1"))
        } else {
            let gt = e.assign(format!("arith.cmpi sgt, {a}, {acc} : {elem}"));
            e.assign(format!("arith.ori {gt}, {first} : i1"))
        };
        let v = e.assign(format!("arith.select {take}, {a}, {acc} : {elem}"));
        let i = e.assign(format!("arith.select {take}, {flat}, {acc_i} : i64"));
        e.line(format!("linalg.yield {v}, {i} : {elem}, i64"));
    });
    e.line(format!("}} -> ({out}, {idx_ty})"));
    Ok(vec![format!("{r}#0"), format!("{r}#1")])
}
