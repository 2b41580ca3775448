//! Convolution as im2col + matmul: the input windows are gathered into a
//! [C*KH*KW, N*OH*OW] matrix and multiplied by the weight viewed as
//! [F, C*KH*KW], so convolution shares the matmul's vectorized micro-kernel.

use super::elementwise::{cast_scalar, generic, identity_map};
use super::linear::matmul;
use super::shape::{reshape_value, transpose_value};
use super::{AtenOp, Emitter, Operand};
use crate::types::Ty;

pub struct Conv2dParams {
    pub stride: Vec<i64>,
    pub padding: Vec<i64>,
    pub dilation: Vec<i64>,
    pub groups: i64,
}

/// Pads the two spatial dims of an NCHW tensor with `value`.
/// `low`/`high` are [top, left] / [bottom, right].
pub fn pad_spatial(e: &mut Emitter, x: &str, ty: &Ty, low: &[i64], high: &[i64], value: &str) -> (String, Ty) {
    if low.iter().chain(high).all(|&p| p == 0) {
        return (x.to_string(), ty.clone());
    }
    let mut shape = ty.shape.clone();
    shape[2] += low[0] + high[0];
    shape[3] += low[1] + high[1];
    let out = ty.with_shape(shape);
    let c = e.assign(format!("arith.constant {value} : {}", ty.elem));
    let r = e.fresh();
    let idx: Vec<String> = (0..4).map(|_| e.fresh()).collect();
    e.line(format!(
        "{r} = tensor.pad {x} low[0, 0, {}, {}] high[0, 0, {}, {}] {{",
        low[0], low[1], high[0], high[1]
    ));
    e.line(format!("^bb0({}):", idx.iter().map(|i| format!("{i}: index")).collect::<Vec<_>>().join(", ")));
    e.indented(|e| e.line(format!("tensor.yield {c} : {}", ty.elem)));
    e.line(format!("}} : {ty} to {out}"));
    (r, out)
}

/// conv2d on NCHW input and FCHW weight; output shape from `out`.
pub fn conv2d_nchw(
    e: &mut Emitter,
    x: &Operand,
    w: &Operand,
    bias: Option<&Operand>,
    p: &Conv2dParams,
    out: &Ty,
) -> Result<String, String> {
    if x.ty.rank() != 4 || w.ty.rank() != 4 {
        return Err(format!(
            "only 2-D convolution on NCHW input is supported yet (input {}, weight {})",
            x.ty, w.ty
        ));
    }
    if p.groups != 1 {
        return Err(format!("grouped convolution (groups={}) is not supported yet", p.groups));
    }
    let (n, c) = (x.ty.shape[0], x.ty.shape[1]);
    let (f, kh, kw) = (w.ty.shape[0], w.ty.shape[2], w.ty.shape[3]);
    let (oh, ow) = (out.shape[2], out.shape[3]);
    let zero = if x.ty.is_float() { "0.0" } else { "0" };
    let (xp, xp_ty) = pad_spatial(e, &x.ssa, &x.ty, &p.padding, &p.padding, zero);

    // col[c, kh, kw, n, oh, ow] = xp[n, c, oh*sh + kh*dh, ow*sw + kw*dw]
    let col_ty = x.ty.with_shape(vec![c, kh, kw, n, oh, ow]);
    let init = super::elementwise::empty(e, &col_ty);
    let window = format!(
        "affine_map<(d0, d1, d2, d3, d4, d5) -> (d3, d0, d4 * {} + d1 * {}, d5 * {} + d2 * {})>",
        p.stride[0], p.dilation[0], p.stride[1], p.dilation[1]
    );
    let col = generic(e, &[(xp, xp_ty, window)], &init, &col_ty, None, &["parallel"; 6], "", |_, a| a[0].clone());
    let k = c * kh * kw;
    let cols = n * oh * ow;
    let col2_ty = x.ty.with_shape(vec![k, cols]);
    let col2 = e.assign(format!("tensor.collapse_shape {col} [[0, 1, 2], [3, 4, 5]] : {col_ty} into {col2_ty}"));
    let w2_ty = w.ty.with_shape(vec![f, k]);
    let w2 = reshape_value(e, &w.ssa, &w.ty, &w2_ty);

    let mm_ty = out.with_shape(vec![f, cols]);
    let init = match bias {
        Some(b) => {
            let (from, to) = (b.ty.elem.clone(), out.elem.clone());
            let acc = super::elementwise::empty(e, &mm_ty);
            let bias_map = "affine_map<(d0, d1) -> (d0)>".to_string();
            generic(
                e,
                &[(b.ssa.clone(), b.ty.clone(), bias_map)],
                &acc,
                &mm_ty,
                Some(identity_map(2)),
                &["parallel", "parallel"],
                "",
                |e, a| cast_scalar(e, &a[0], &from, &to),
            )
        }
        None => super::elementwise::filled(e, &mm_ty, zero),
    };
    let mm = matmul(e, &w2, &w2_ty, &col2, &col2_ty, &init, &mm_ty);
    // [F, N*OH*OW] -> [N, F, OH, OW]
    let fn_ty = out.with_shape(vec![f, n, oh, ow]);
    let fn4 = reshape_value(e, &mm, &mm_ty, &fn_ty);
    Ok(if n == 1 { reshape_value(e, &fn4, &fn_ty, out) } else { transpose_value(e, &fn4, &fn_ty, &[1, 0, 2, 3]) })
}

/// aten.conv2d(input, weight, bias?, stride, padding, dilation, groups)
pub fn conv2d(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    if matches!(op.attrs.get("padding"), Some(super::Attr::Str(_))) {
        return Err("conv2d with string padding ('same'/'valid') is not supported yet".into());
    }
    let p = Conv2dParams {
        stride: op.ints("stride", 2, &[1, 1])?,
        padding: op.ints("padding", 2, &[0, 0])?,
        dilation: op.ints("dilation", 2, &[1, 1])?,
        groups: op.int("groups", 1)?,
    };
    let r = conv2d_nchw(e, op.input("input")?, op.input("weight")?, op.opt_input("bias"), &p, op.result())?;
    Ok(vec![r])
}

/// aten.convolution(input, weight, bias?, stride, padding, dilation, transposed, output_padding, groups)
pub fn convolution(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    if op.bool("transposed", false)? {
        return Err("transposed convolution is not supported yet".into());
    }
    let rank = op.input("input")?.ty.rank();
    if rank != 4 {
        return Err(format!("only 2-D convolution is supported yet (input rank {rank})"));
    }
    conv2d(e, op)
}
