//! Matrix products. Every product becomes a `linalg.matmul` (2-D, row-major
//! operands), which the optimizer tiles and vectorizes into FMA micro-kernels.

use super::elementwise::{cast_scalar, filled, map};
use super::shape::{reshape_value, transpose_value};
use super::{float_literal, AtenOp, Emitter, Operand};
use crate::types::Ty;

/// `init + a @ b` with a: [M, K], b: [K, N], init: [M, N].
pub fn matmul(e: &mut Emitter, a: &str, a_ty: &Ty, b: &str, b_ty: &Ty, init: &str, out: &Ty) -> String {
    e.assign(format!("linalg.matmul ins({a}, {b} : {a_ty}, {b_ty}) outs({init} : {out}) -> {out}"))
}

/// The accumulator a product starts from: `bias` broadcast to `out`
/// (converted to its element type), or zeros.
pub fn initial_accumulator(e: &mut Emitter, bias: Option<&Operand>, out: &Ty) -> String {
    match bias {
        None => filled(e, out, if out.is_float() { "0.0" } else { "0" }),
        Some(b) => {
            let (from, to) = (b.ty.elem.clone(), out.elem.clone());
            map(e, &[(&b.ssa, &b.ty)], out, |e, a| cast_scalar(e, &a[0], &from, &to))
        }
    }
}

/// linear(input [..., K], weight [N, K], bias [N]?) = input @ weight.T + bias
pub fn linear(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (x, w) = (op.input("input")?, op.input("weight")?);
    let out = op.result();
    let k = *x.ty.shape.last().ok_or("linear: input must have at least one dim")?;
    let m = x.ty.numel() / k.max(1);
    let n = if w.ty.rank() == 2 { w.ty.shape[0] } else { 1 };
    let a_ty = x.ty.with_shape(vec![m, k]);
    let a = reshape_value(e, &x.ssa, &x.ty, &a_ty);
    let w2_ty = w.ty.with_shape(vec![n, k]);
    let w2 = reshape_value(e, &w.ssa, &w.ty, &w2_ty);
    let b = transpose_value(e, &w2, &w2_ty, &[1, 0]);
    let b_ty = w.ty.with_shape(vec![k, n]);
    let mm_ty = out.with_shape(vec![m, n]);
    let init = initial_accumulator(e, op.opt_input("bias"), &mm_ty);
    let mm = matmul(e, &a, &a_ty, &b, &b_ty, &init, &mm_ty);
    Ok(vec![reshape_value(e, &mm, &mm_ty, out)])
}

/// addmm(self, mat1, mat2, beta=1, alpha=1) = beta * self + alpha * (mat1 @ mat2)
pub fn addmm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (bias, a, b) = (op.input("self")?, op.input("mat1")?, op.input("mat2")?);
    let (beta, alpha) = (op.float("beta", 1.0)?, op.float("alpha", 1.0)?);
    let out = op.result().clone();
    if beta == 1.0 && alpha == 1.0 {
        let init = initial_accumulator(e, Some(bias), &out);
        return Ok(vec![matmul(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &init, &out)]);
    }
    let zeros = initial_accumulator(e, None, &out);
    let mm = matmul(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &zeros, &out);
    let elem = out.elem.clone();
    let bias_elem = bias.ty.elem.clone();
    let float = out.is_float();
    let r = map(e, &[(&bias.ssa, &bias.ty), (&mm, &out)], &out, |e, v| {
        let s = cast_scalar(e, &v[0], &bias_elem, &elem);
        let scale = |e: &mut Emitter, x: &str, k: f64| {
            let c = if float { float_literal(k) } else { (k as i64).to_string() };
            let c = e.assign(format!("arith.constant {c} : {elem}"));
            e.assign(format!("{} {x}, {c} : {elem}", if float { "arith.mulf" } else { "arith.muli" }))
        };
        let s = scale(e, &s, beta);
        let p = scale(e, &v[1], alpha);
        e.assign(format!("{} {s}, {p} : {elem}", if float { "arith.addf" } else { "arith.addi" }))
    });
    Ok(vec![r])
}

/// mm(self [M, K], mat2 [K, N])
pub fn mm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (a, b) = (op.input("self")?, op.input("mat2")?);
    let out = op.result().clone();
    let init = initial_accumulator(e, None, &out);
    Ok(vec![matmul(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &init, &out)])
}
