//! Convolution over 1, 2 or 3 spatial dims.
//!
//! - 3x3, stride 1, one image, enough channels: Winograd F(2x2, 3x3), see
//!   `winograd`.
//! - groups == 1: im2col + matmul. The input windows are gathered into a
//!   [C*K.., N*O..] matrix and multiplied by the weight viewed as [F, C*K..],
//!   so convolution shares the matmul's vectorized micro-kernel (computed
//!   transposed when that pays, see `transposed_product_pays`; on row panels
//!   of the weight when the columns are few, see `row_panels_pay`).
//! - a 1x1 convolution of few channels whose result goes into a blocked
//!   depthwise convolution's channel-blocked copy: one generic over its
//!   channels that fusion takes into that copy (`pointwise_by_channels`).
//! - depthwise (one input and one output channel per group, float): the sum
//!   over the kernel's taps of a shifted (strided) slice of the input times
//!   that tap's per-channel weight, as one all-parallel `linalg.generic`.
//!   Every read is then a plain slice, so the elementwise strategy
//!   vectorizes it along the output rows (and fuses the batch norm and
//!   activation that follow into it). 2-d ones on whole 16-channel blocks
//!   that are strided or whose output rows are short run in a
//!   channel-blocked layout instead (`depthwise_blocked`).
//! - other groups > 1: one windowed `linalg.generic` over
//!   (n, g, f, o.., c, k..) on grouped views, so no per-group code is emitted.
//! - transposed: the input is spread out by the stride (zeros between
//!   elements) and padded, the weight is flipped with in/out channels
//!   swapped, and a stride-1 convolution follows.

use super::elementwise::{dim_list, empty, fill_into, filled, generic, identity_map};
use super::linear::{column_bias, first_dim_slice, matmul_ragged, panel_product_into, product_by_transposed, product_on_row_panels, reads_panels, row_panels_fit, Init, PANEL};
use super::scalar;
use super::shape::{index_const, pad_value, padded_ty, reshape_value, transpose_value};
use super::winograd;
use super::{AtenOp, Attr, Emitter, Operand, PARALLEL};
use crate::types::Ty;

pub struct ConvParams {
    pub stride: Vec<i64>,
    pub padding: Vec<i64>,
    pub dilation: Vec<i64>,
    pub groups: i64,
    /// The result goes to a [`depthwise_blocked`] convolution's copy into
    /// the channel-blocked layout (`AtenOp::result_channel_blocked`).
    pub result_channel_blocked: bool,
}

fn zero(ty: &Ty) -> &'static str {
    if ty.is_float() {
        "0.0"
    } else {
        "0"
    }
}

/// Pads the spatial dims (all but the first two) of `x` with `fill`.
fn pad_spatial(e: &mut Emitter, x: &str, ty: &Ty, low: &[i64], high: &[i64], fill: &str) -> (String, Ty) {
    let lo: Vec<i64> = [0, 0].iter().chain(low).copied().collect();
    let hi: Vec<i64> = [0, 0].iter().chain(high).copied().collect();
    (pad_value(e, x, ty, &lo, &hi, fill), padded_ty(ty, &lo, &hi))
}

/// The accumulator: the bias along the first dim of `out` (output
/// channels, the rows of `weight @ col`), or zeros.
fn bias_init(e: &mut Emitter, bias: Option<&Operand>, out: &Ty) -> String {
    let acc = empty(e, out);
    bias_into(e, bias, &acc, out)
}

/// [`bias_init`] written into `dest` of type `out`.
fn bias_into(e: &mut Emitter, bias: Option<&Operand>, dest: &str, out: &Ty) -> String {
    match bias {
        Some(b) => {
            let (from, to) = (b.ty.elem.clone(), out.elem.clone());
            let bias_map = format!("affine_map<({}) -> (d0)>", dim_list(out.rank()));
            generic(
                e,
                &[(b.ssa.clone(), b.ty.clone(), bias_map)],
                dest,
                out,
                Some(identity_map(out.rank())),
                &vec!["parallel"; out.rank()],
                "",
                |e, a| scalar::cast(e, &a[0], &from, &to),
            )
        }
        None => fill_into(e, dest, out, zero(out)),
    }
}

/// A convolution of [N, C, S..] input with [F, C/groups, K..] weight.
pub fn conv_nd(
    e: &mut Emitter,
    x: &Operand,
    w: &Operand,
    bias: Option<&Operand>,
    p: &ConvParams,
    out: &Ty,
) -> Result<String, String> {
    let k = x.ty.rank().checked_sub(2).filter(|k| (1..=3).contains(k));
    let Some(k) = k else {
        return Err(format!("convolution needs [N, C, spatial..] input with 1 to 3 spatial dims, got {}", x.ty));
    };
    if w.ty.rank() != k + 2 || [&p.stride, &p.padding, &p.dilation].iter().any(|v| v.len() != k) {
        return Err(format!("convolution weight {} and parameters do not match a {k}-d input", w.ty));
    }
    if is_blocked_depthwise_2d(x, w, p, out) {
        return Ok(depthwise_blocked(e, x, w, bias, p, out));
    }
    let (xp, xp_ty) = pad_spatial(e, &x.ssa, &x.ty, &p.padding, &p.padding, zero(&x.ty));
    let xp = Operand { ssa: xp, ty: xp_ty, arg: "input".into() };
    let f32_bias = bias.is_none_or(|b| b.ty.elem == "f32");
    let tiles = winograd::choose(&xp.ty, &w.ty, &p.stride, &p.dilation, p.groups, out).filter(|_| f32_bias);
    if let Some(tiles) = tiles {
        return Ok(winograd::conv3x3(e, tiles, &xp.ssa, &xp.ty, &w.ssa, &w.ty, bias.map(|b| (b.ssa.as_str(), &b.ty)), out));
    }
    if p.groups == 1 {
        im2col(e, x, &xp, w, bias, p, out, k)
    } else if is_depthwise(&xp, w, p, out) {
        Ok(depthwise_taps(e, x, &xp, w, bias, p, out, k))
    } else {
        grouped(e, &xp, w, bias, p, out, k)
    }
}

/// `x` is the input padded by the convolution's padding, `unpadded` the
/// input itself (see [`tap_windows`]).
#[allow(clippy::too_many_arguments)]
fn im2col(e: &mut Emitter, unpadded: &Operand, x: &Operand, w: &Operand, bias: Option<&Operand>, p: &ConvParams, out: &Ty, k: usize) -> Result<String, String> {
    let (n, c) = (x.ty.shape[0], x.ty.shape[1]);
    let f = w.ty.shape[0];
    let kernel: Vec<i64> = w.ty.shape[2..].to_vec();
    let outs: Vec<i64> = out.shape[2..].to_vec();
    let mut col_shape = vec![c];
    col_shape.extend(&kernel);
    col_shape.push(n);
    col_shape.extend(&outs);
    let col_ty = x.ty.with_shape(col_shape);
    let kk: i64 = c * kernel.iter().product::<i64>();
    let cols: i64 = n * outs.iter().product::<i64>();
    let col2_ty = x.ty.with_shape(vec![kk, cols]);
    let pointwise = kernel.iter().all(|&s| s == 1) && p.stride.iter().all(|&s| s == 1) && x.ty.shape[2..] == outs[..];
    let f32 = [&x.ty, &w.ty, out].iter().all(|t| t.elem == "f32") && bias.is_none_or(|b| b.ty.elem == "f32");
    if pointwise && p.result_channel_blocked && c <= MAX_CHANNEL_TAPS && f32 {
        return Ok(pointwise_by_channels(e, x, w, bias, out));
    }
    let transposed = transposed_product_pays(f, kk, cols, out);
    let taps_count: i64 = kernel.iter().product();
    if transposed && n == 1 && !pointwise && taps_count <= MAX_CHANNELS_LAST_TAPS {
        // out^T [cols, F] = col^T @ w2^T with K ordered (tap, channel)
        let col_t = windows_channels_last(e, x, p, out, &kernel);
        let col_t_ty = x.ty.with_shape(vec![cols, kk]);
        let mut last: Vec<usize> = vec![0];
        last.extend(2..k + 2);
        last.push(1);
        let w_last = transpose_value(e, &w.ssa, &w.ty, &last);
        let w_last_ty = w.ty.with_shape(last.iter().map(|&d| w.ty.shape[d]).collect());
        let w2_ty = w.ty.with_shape(vec![f, kk]);
        let w2 = reshape_value(e, &w_last, &w_last_ty, &w2_ty);
        let mm_t = transposed_product(e, &col_t, &col_t_ty, &w2, &w2_ty, bias, out, cols);
        return Ok(reshape_value(e, &mm_t, &out.with_shape(vec![f, cols]), out));
    }
    let copies_by_tap = n == 1 && taps_count <= MAX_COPIED_TAPS;
    let windows_into_panels = !transposed
        && !pointwise
        && copies_by_tap
        // (blocks of rows: the first of two spatial dims or more)
        && k >= 2
        && outs.last().is_some_and(|&w| w % PANEL == 0)
        && kk >= MIN_PANEL_ROWS
        && reads_panels(f, cols, kk, &w.ty, &col2_ty, out)
        && row_panels_pay(&[&x.ty, &w.ty, out], f, cols, bias).is_none();
    let w2_ty = w.ty.with_shape(vec![f, kk]);
    let w2 = reshape_value(e, &w.ssa, &w.ty, &w2_ty);
    let mm_ty = out.with_shape(vec![f, cols]);
    // (a bias per filter: a part of the filters, the product's rows, reads its own)
    let from_bias = |e: &mut Emitter, part: &Ty, first_row: i64| {
        let rows = bias.map(|b| first_dim_slice(e, b, first_row, part.shape[0]));
        bias_init(e, rows.as_ref(), part)
    };
    if windows_into_panels {
        let mm = product_of_windows_by_row_blocks(e, x, p, &w2, &w2_ty, bias, &mm_ty, out, &kernel);
        return Ok(reshape_value(e, &mm, &mm_ty, out));
    }
    let col2 = if pointwise && n == 1 {
        // a 1x1 convolution of one image: [C, S..] is already the matrix
        reshape_value(e, &x.ssa, &x.ty, &col2_ty)
    } else {
        let col = if copies_by_tap {
            gather_windows_by_taps(e, unpadded, x, p, &col_ty, out, &kernel)
        } else {
            gather_windows(e, x, p, &col_ty, k)
        };
        // [C, K.., N, O..] -> [C*K.., N*O..]
        let first: Vec<String> = (0..=k).map(|d| d.to_string()).collect();
        let second: Vec<String> = (k + 1..col_ty.rank()).map(|d| d.to_string()).collect();
        e.assign(format!(
            "tensor.collapse_shape {col} [[{}], [{}]] : {col_ty} into {col2_ty}",
            first.join(", "),
            second.join(", ")
        ))
    };
    let mm = if transposed {
        // out^T [cols, F] = col^T @ w2^T: a linear layer with ragged rows
        let col_t = transpose_value(e, &col2, &col2_ty, &[1, 0]);
        let col_t_ty = col2_ty.with_shape(vec![cols, kk]);
        transposed_product(e, &col_t, &col_t_ty, &w2, &w2_ty, bias, out, cols)
    } else if let Some(start) = row_panels_pay(&[&x.ty, &w.ty, out], f, cols, bias) {
        product_on_row_panels(e, &w2, &w2_ty, &col2, &col2_ty, start, &mm_ty)
    } else {
        matmul_ragged(e, &w2, &w2_ty, &col2, &col2_ty, &Init::PerPart(&from_bias), &mm_ty)
    };
    // [F, N*O..] -> [N, F, O..]
    let mut fn_shape = vec![f, n];
    fn_shape.extend(&outs);
    let fn_ty = out.with_shape(fn_shape);
    let fnx = reshape_value(e, &mm, &mm_ty, &fn_ty);
    let mut perm: Vec<usize> = vec![1, 0];
    perm.extend(2..k + 2);
    Ok(if n == 1 { reshape_value(e, &fnx, &fn_ty, out) } else { transpose_value(e, &fnx, &fn_ty, &perm) })
}

/// `w2 [F, K] @ col [K, cols]` (+ bias) computed as `(col^T @ w2^T)^T` from
/// `col_t` [cols, K]: [F, cols] (see [`transposed_product_pays`]).
#[allow(clippy::too_many_arguments)]
fn transposed_product(e: &mut Emitter, col_t: &str, col_t_ty: &Ty, w2: &str, w2_ty: &Ty, bias: Option<&Operand>, out: &Ty, cols: i64) -> String {
    let mm_t_ty = out.with_shape(vec![cols, w2_ty.shape[0]]);
    let init = |e: &mut Emitter, ty: &Ty, first_row: i64| column_bias(e, bias, ty, first_row);
    let mm_t = product_by_transposed(e, col_t, col_t_ty, w2, w2_ty, &Init::Shaped(&init), &mm_t_ty);
    transpose_value(e, &mm_t, &mm_t_ty, &[1, 0])
}

/// The most taps whose windows [`windows_channels_last`] copies: each copy
/// is a kernel of its own (measured with a 3x3 kernel's 9, resnet18);
/// larger kernels keep the gather by channel, one kernel.
const MAX_CHANNELS_LAST_TAPS: i64 = 16;

/// col^T [O.., K.. x C] for one image (rows: output positions; columns:
/// taps, then channels) from a channels-last copy of the input's stride
/// phases: every tap's window is then a slice whose rows are whole channel
/// vectors, copied into its columns (a vectorized copy per tap). The
/// gather by channel writes col [C x K.., O..] in rows of a few outputs (7
/// at resnet18's 7x7 stage) that a transpose then turns into col^T: two
/// passes over it, each thread's part of the second mostly written by the
/// other thread in the first.
fn windows_channels_last(e: &mut Emitter, x: &Operand, p: &ConvParams, out: &Ty, kernel: &[i64]) -> String {
    let k = kernel.len();
    let c = x.ty.shape[1];
    let outs = &out.shape[2..];
    let (phases, phases_ty) = channels_last_phases(e, &x.ssa, &x.ty, &p.stride);
    let all_taps = taps(kernel);
    // col^T as [O.., taps, C]; tap t's window [1, 1.., O.., C] of phases
    // [1, s.., S/s.., C] goes to [0.., t, 0] as [O.., 1, C]
    let t = all_taps.len() as i64;
    let col_ty = x.ty.with_shape(outs.iter().copied().chain([t, c]).collect());
    let window_ty = x.ty.with_shape([1].into_iter().chain(vec![1; k]).chain(outs.iter().copied()).chain([c]).collect());
    let column_ty = x.ty.with_shape(outs.iter().copied().chain([1, c]).collect());
    let column_sizes: Vec<String> = column_ty.shape.iter().map(i64::to_string).collect();
    let mut col = empty(e, &col_ty);
    for (index, tap) in all_taps.iter().enumerate() {
        let at: Vec<i64> = (0..k).map(|d| tap[d] * p.dilation[d]).collect();
        let offsets: Vec<String> = [0]
            .into_iter()
            .chain((0..k).map(|d| at[d] % p.stride[d]))
            .chain((0..k).map(|d| at[d] / p.stride[d]))
            .chain([0])
            .map(|v| v.to_string())
            .collect();
        let sizes: Vec<String> = window_ty.shape.iter().map(i64::to_string).collect();
        let window = e.assign(format!(
            "tensor.extract_slice {phases}[{}] [{}] [{}] : {phases_ty} to {window_ty}",
            offsets.join(", "),
            sizes.join(", "),
            vec!["1"; 2 * k + 2].join(", ")
        ));
        let column = reshape_value(e, &window, &window_ty, &column_ty);
        let at: Vec<String> = vec![0; k].into_iter().chain([index as i64, 0]).map(|v| v.to_string()).collect();
        col = e.assign(format!(
            "tensor.insert_slice {column} into {col}[{}] [{}] [{}] : {column_ty} into {col_ty}",
            at.join(", "),
            column_sizes.join(", "),
            vec!["1"; k + 2].join(", ")
        ));
    }
    let cols: i64 = outs.iter().product();
    reshape_value(e, &col, &col_ty, &x.ty.with_shape(vec![cols, t * c]))
}

/// The weight bytes above which a product with ragged columns is computed
/// transposed (see [`transposed_product_pays`]). Measured: resnet18's
/// 4.7 and 9.4 MB weights gain (27.2 -> 26.2 ms); mobilenet_v2's 1.2 and
/// 1.6 MB ones lose (7.5 -> 7.7 ms: re-reading them from cache is cheap,
/// and 49 rows fill the micro-kernel's row tiles worse than 48 + 1 columns).
/// Transposing every product of fewer than 64 columns (mobilenet_v2's 7x7
/// stage, 0.4-1.6 MB weights, whose untransposed products run at 70-77
/// GFLOP/s against 95-105 for its 192-column ones) was measured again:
/// 1 thread within noise (0.98-1.01), 2 threads 3-5% slower (the transposes
/// are kernels and passes of their own).
const LARGE_WEIGHT_BYTES: i64 = 4 << 20;

/// Whether `w2 [F, K] @ col [K, cols]` is better computed as
/// `(col^T @ w2^T)^T`. With `cols` not a multiple of the micro-kernel's
/// 16-column panel, the product leaves the last few columns to dot products
/// that read the whole weight again (`matmul_ragged`): resnet18's 7x7
/// convolutions (512 x 4608 weights, 9.4 MB, 49 columns) spent 0.4 ms each
/// on the 49th column, at memory speed. Transposed, the ragged dim is the
/// rows, which the micro-kernel takes in masked tiles, and F (a multiple of
/// 16) the columns, read from the weight packed at compile time; the cost
/// is two transposing copies of the (small) activations.
fn transposed_product_pays(f: i64, kk: i64, cols: i64, out: &Ty) -> bool {
    out.elem == "f32" && cols > 1 && cols % PANEL != 0 && f % PANEL == 0 && f * kk * 4 > LARGE_WEIGHT_BYTES
}

/// Whether `w2 [F, K] @ col [K, cols]` reads the weight as row panels
/// (see `product_on_row_panels`): f32 (input, weight, output `types` and
/// the bias), whole panels of F, and few columns (`row_panels_fit`).
/// Gives the per-row start (the bias) when it does.
fn row_panels_pay<'a>(types: &[&Ty], f: i64, cols: i64, bias: Option<&'a Operand>) -> Option<Option<(&'a str, &'a Ty)>> {
    let f32 = types.iter().all(|t| t.elem == "f32") && bias.is_none_or(|b| b.ty.elem == "f32" && b.ty.shape == [f]);
    let pays = f32 && row_panels_fit(f, cols);
    pays.then(|| bias.map(|b| (b.ssa.as_str(), &b.ty)))
}

/// The most input channels a 1x1 convolution sums as taps
/// ([`pointwise_by_channels`]).
const MAX_CHANNEL_TAPS: i64 = 32;

/// A 1x1 stride-1 convolution of few input channels as one all-parallel
/// generic: out[n, f, s..] = bias[f] + sum over c of x[n, c, s..] * w[f, c]
/// (channels in order, one FMA each, as the matmul's K loop). Elementwise
/// fusion then takes it into its consumer: a following activation, and a
/// blocked depthwise's copy into the channel-blocked layout, which it
/// writes directly instead of the product's output being read back.
fn pointwise_by_channels(e: &mut Emitter, x: &Operand, w: &Operand, bias: Option<&Operand>, out: &Ty) -> String {
    let (n, c, f) = (x.ty.shape[0], x.ty.shape[1], w.ty.shape[0]);
    let rank = out.rank();
    let spatial = &x.ty.shape[2..];
    let plane_ty = x.ty.with_shape([n].into_iter().chain(spatial.iter().copied()).collect());
    let plane_map = format!("affine_map<({}) -> (d0, {})>", dim_list(rank), (2..rank).map(|d| format!("d{d}")).collect::<Vec<_>>().join(", "));
    let channel_map = format!("affine_map<({}) -> (d1)>", dim_list(rank));
    let channel_ty = w.ty.with_shape(vec![f]);
    let ones = vec!["1"; rank].join(", ");
    // [F, C, 1..] -> [C, F]: a channel's weights are contiguous (the
    // transpose of a weight argument is folded into its stored layout)
    let w2_ty = w.ty.with_shape(vec![f, c]);
    let w2 = reshape_value(e, &w.ssa, &w.ty, &w2_ty);
    let by_channel = transpose_value(e, &w2, &w2_ty, &[1, 0]);
    let by_channel_ty = w.ty.with_shape(vec![c, f]);
    let mut inputs = Vec::new();
    for ch in 0..c {
        let offsets: Vec<String> = [0, ch].into_iter().chain(vec![0; rank - 2]).map(|v| v.to_string()).collect();
        let sizes: Vec<String> = [n, 1].into_iter().chain(spatial.iter().copied()).map(|v| v.to_string()).collect();
        let plane = e.assign(format!(
            "tensor.extract_slice {}[{}] [{}] [{ones}] : {} to {plane_ty}",
            x.ssa,
            offsets.join(", "),
            sizes.join(", "),
            x.ty
        ));
        inputs.push((plane, plane_ty.clone(), plane_map.clone()));
        let weight = e.assign(format!("tensor.extract_slice {by_channel}[{ch}, 0] [1, {f}] [1, 1] : {by_channel_ty} to {channel_ty}"));
        inputs.push((weight, channel_ty.clone(), channel_map.clone()));
    }
    let init = empty(e, out);
    let bias = bias.map(|b| {
        let b1_ty = b.ty.with_shape(vec![f]);
        (reshape_value(e, &b.ssa, &b.ty, &b1_ty), b1_ty, channel_map)
    });
    taps_generic(e, inputs, bias, &init, out)
}

/// The most taps whose windows are copied one by one (a 7x7 kernel): each
/// is an insert into the same tensor, and bufferization's analysis of a
/// chain of inserts grows faster than linearly (ViT's 16x16 patches, 256
/// taps: 66 s), so larger kernels keep the windowed gather.
const MAX_COPIED_TAPS: i64 = 49;

/// The same matrix for one image, one tap at a time: each tap's window is
/// a slice (of the stride phases) copied into its rows of col, row by row
/// as vectors, where the windowed generic gathers element by element.
fn gather_windows_by_taps(e: &mut Emitter, unpadded: &Operand, x: &Operand, p: &ConvParams, col_ty: &Ty, out: &Ty, kernel: &[i64]) -> String {
    let k = kernel.len();
    let c = x.ty.shape[1];
    let mut col = empty(e, col_ty);
    for (tap, (window, window_ty)) in taps(kernel).into_iter().zip(tap_windows(e, unpadded, x, p, kernel, out)) {
        // [1, C, O..] -> [C, O..], inserted at col[:, tap.., 0, :..]
        let rows_ty = window_ty.with_shape(window_ty.shape[1..].to_vec());
        let groups: Vec<String> =
            std::iter::once("[0, 1]".to_string()).chain((2..window_ty.rank()).map(|d| format!("[{d}]"))).collect();
        let rows = e.assign(format!("tensor.collapse_shape {window} [{}] : {window_ty} into {rows_ty}", groups.join(", ")));
        let offsets: Vec<String> = [0].into_iter().chain(tap.iter().copied()).chain(vec![0; 1 + k]).map(|v| v.to_string()).collect();
        let sizes: Vec<String> = [c].into_iter().chain(vec![1; k + 1]).chain(out.shape[2..].iter().copied()).map(|v| v.to_string()).collect();
        let ones = vec!["1"; col_ty.rank()].join(", ");
        col = e.assign(format!(
            "tensor.insert_slice {rows} into {col}[{}] [{}] [{ones}] : {rows_ty} into {col_ty}",
            offsets.join(", "),
            sizes.join(", ")
        ));
    }
    col
}

/// The fewest rows (C x taps) worth gathering the windows into packed
/// panels ([`gather_windows_into_panels`]): at 27 (mobilenet_v2's 3x3
/// stem over 3 channels) the panel product's tiles ran at 70% of the FMA
/// peak against 90% for the product on col [K, N] (1 thread +1.5%); at 147
/// (resnet18's 7x7 stem) they are even, and the one gather kernel the
/// panels take pays at 2 threads (see there).
const MIN_PANEL_ROWS: i64 = 64;

/// The convolution's product `w2 [F, C*K..] @ col` for one image with
/// the windows gathered straight into the packed panels `[N/P, C*K.., P]`
/// that the panel product reads (see `linear::product`), one block of
/// output rows at a time: a loop over the blocks (the threads' parallel
/// loop) whose body gathers the block's panels and multiplies them into
/// its columns of the result, `[F, N]` (`mm_ty`). Each tap's window
/// [C, rows, .., OW] is split into 16-column panels along its last dim
/// (whole rows only: OW a multiple of [`PANEL`]) and copied, transposed,
/// into its rows of each panel. A block's panels (132 KB at resnet18's
/// stem) stay in the thread's cache and scratch: gathered whole, they were
/// 7.4 MB written to the arena and read back every run, and at 2 threads
/// on two dies the gather wrote lines the other die held (resnet18, ab:
/// 1 thread 0.964-0.969x the time, 2 threads on one L3 0.973-0.978, on
/// two 1.02x until the memory plan was refined further, see the compiler's
/// `arena::REFINEMENTS`).
#[allow(clippy::too_many_arguments)]
fn product_of_windows_by_row_blocks(e: &mut Emitter, x: &Operand, p: &ConvParams, w2: &str, w2_ty: &Ty, bias: Option<&Operand>, mm_ty: &Ty, out: &Ty, kernel: &[i64]) -> String {
    let k = kernel.len();
    let (c, f) = (x.ty.shape[1], w2_ty.shape[0]);
    let outs = &out.shape[2..];
    let (rows, ow) = (outs[0], outs[k - 1]);
    let rows_per_block = rows_per_block(outs);
    let block_outs: Vec<i64> = [rows_per_block].into_iter().chain(outs[1..].iter().copied()).collect();
    let block_panels: i64 = block_outs.iter().product::<i64>() / PANEL;
    // the phases of the padded input (those of the input itself, padded,
    // as [`tap_windows`] takes them: resnet18's 7x7 stem 0.5-1.3% slower)
    let (phases, phases_ty) = stride_phases(e, &x.ssa, &x.ty, &p.stride, zero(&x.ty));
    // the block's panels as [rows, O.. but the first and last, OW/P, C, K.., P]
    let panels_ty = x.ty.with_shape(block_outs[..k - 1].iter().copied().chain([ow / PANEL, c]).chain(kernel.iter().copied()).chain([PANEL]).collect());
    let packed_ty = x.ty.with_shape(vec![block_panels, c * kernel.iter().product::<i64>(), PANEL]);
    let result_ty = mm_ty.with_shape(vec![f, mm_ty.shape[1] / PANEL, PANEL]);
    let block_ty = mm_ty.with_shape(vec![f, block_panels, PANEL]);
    let init = empty(e, &result_ty);
    let (c0, c1, blocks) = (index_const(e, 0), index_const(e, 1), index_const(e, rows / rows_per_block));
    let (block, acc, result) = (e.fresh(), e.fresh(), e.fresh());
    e.line(format!("{result} = scf.for {block} = {c0} to {blocks} step {c1} iter_args({acc} = {init}) -> ({result_ty}) {{"));
    e.indented(|e| {
        let rows_step = index_const(e, rows_per_block);
        let first_row = e.assign(format!("arith.muli {block}, {rows_step} : index"));
        let mut panels = empty(e, &panels_ty);
        for tap in taps(kernel) {
            let (window, window_ty) = block_window(e, &phases, &phases_ty, &tap, p, &first_row, &block_outs);
            panels = insert_window_into_panels(e, &window, &window_ty, &panels, &panels_ty, &tap);
        }
        let packed = reshape_value(e, &panels, &panels_ty, &packed_ty);
        let panels_step = index_const(e, block_panels);
        let first_panel = e.assign(format!("arith.muli {block}, {panels_step} : index"));
        let place = format!("[0, {first_panel}, 0] [{f}, {block_panels}, {PANEL}] [1, 1, 1]");
        let slot = e.assign(format!("tensor.extract_slice {acc}{place} : {result_ty} to {block_ty}"));
        let start = bias_into(e, bias, &slot, &block_ty);
        let product = panel_product_into(e, w2, w2_ty, &packed, &packed_ty, &start, &block_ty);
        let updated = e.assign(format!("tensor.insert_slice {product} into {acc}{place} : {block_ty} into {result_ty}"));
        e.line(format!("scf.yield {updated} : {result_ty}"));
    });
    e.line(format!("}} {{{PARALLEL}}}"));
    e.assign(format!("tensor.collapse_shape {result} [[0], [1, 2]] : {result_ty} into {mm_ty}"))
}

/// Output rows per block of [`product_of_windows_by_row_blocks`]: one, or
/// two where a row is an odd number of panels and the rows pair up (the
/// micro-kernel's register tiles are two panels wide where the panels
/// pair up: resnet18's stem, 7 panels a row).
fn rows_per_block(outs: &[i64]) -> i64 {
    let row_panels = outs[1..].iter().product::<i64>() / PANEL;
    if row_panels % 2 == 1 && outs[0] % 2 == 0 {
        2
    } else {
        1
    }
}

/// One tap's input window over the block of output rows `block_outs`
/// (`[rows, O..]`) from output row `first_row` (an index value), as
/// `[N, C, rows, O..]` ([`tap_window`]'s, from a dynamic row).
fn block_window(e: &mut Emitter, phases: &str, phases_ty: &Ty, tap: &[i64], p: &ConvParams, first_row: &str, block_outs: &[i64]) -> (String, Ty) {
    let (phase, start) = tap_phase_and_start(tap, &p.stride, &p.dilation);
    let mut from: Vec<String> = start.iter().map(i64::to_string).collect();
    let start_row = index_const(e, start[0]);
    from[0] = e.assign(format!("arith.addi {first_row}, {start_row} : index"));
    phase_window_from(e, phases, phases_ty, &phase, &from, block_outs)
}

/// Inserts one tap's `window` `[1, C, rows, O..]` into its rows of every
/// panel of `panels` `[rows, O.. but the last, OW/P, C, K.., P]`: split
/// into 16-column panels along its last dim, then transposed to `[rows,
/// O.. but the last, OW/P, C, 1, P]` (the image dim in place of the tap's:
/// the transpose's result is the inserted slice itself, which
/// bufferization then writes in place; merging N and C first would put a
/// reshape between them).
fn insert_window_into_panels(e: &mut Emitter, window: &str, window_ty: &Ty, panels: &str, panels_ty: &Ty, tap: &[i64]) -> String {
    let k = tap.len();
    let block_outs = &window_ty.shape[2..];
    let ow = block_outs[k - 1];
    let split_ty = window_ty.with_shape(window_ty.shape[..k + 1].iter().copied().chain([ow / PANEL, PANEL]).collect());
    let split_dims: Vec<String> = split_ty.shape.iter().map(i64::to_string).collect();
    let split_groups: Vec<String> = (0..k + 1).map(|d| format!("[{d}]")).chain([format!("[{}, {}]", k + 1, k + 2)]).collect();
    let split = e.assign(format!(
        "tensor.expand_shape {window} [{}] output_shape [{}] : {window_ty} into {split_ty}",
        split_groups.join(", "),
        split_dims.join(", ")
    ));
    let perm: Vec<usize> = (2..k + 2).chain([1, 0, k + 2]).collect();
    let panel_rows = transpose_value(e, &split, &split_ty, &perm);
    let panel_rows_ty = split_ty.with_shape(perm.iter().map(|&d| split_ty.shape[d]).collect());
    let c = window_ty.shape[1];
    let offsets: Vec<String> = vec![0; k + 1].into_iter().chain(tap.iter().copied()).chain([0]).map(|v| v.to_string()).collect();
    let sizes: Vec<String> = block_outs[..k - 1].iter().copied().chain([ow / PANEL, c]).chain(vec![1; k]).chain([PANEL]).map(|v| v.to_string()).collect();
    let ones = vec!["1"; panels_ty.rank()].join(", ");
    e.assign(format!(
        "tensor.insert_slice {panel_rows} into {panels}[{}] [{}] [{ones}] : {panel_rows_ty} into {panels_ty}",
        offsets.join(", "),
        sizes.join(", ")
    ))
}

/// col[c, k.., n, o..] = x[n, c, o*s + k*d]: every window of the input.
fn gather_windows(e: &mut Emitter, x: &Operand, p: &ConvParams, col_ty: &Ty, k: usize) -> String {
    let rank = col_ty.rank();
    let init = empty(e, col_ty);
    let mut exprs = vec![format!("d{}", k + 1), "d0".to_string()];
    for d in 0..k {
        exprs.push(format!("d{} * {} + d{} * {}", k + 2 + d, p.stride[d], 1 + d, p.dilation[d]));
    }
    let window = format!("affine_map<({}) -> ({})>", dim_list(rank), exprs.join(", "));
    generic(e, &[(x.ssa.clone(), x.ty.clone(), window)], &init, col_ty, None, &vec!["parallel"; rank], "", |_, a| a[0].clone())
}

/// The most taps [`depthwise_taps`] sums in one generic (two operands
/// each); larger kernels take the windowed generic.
const MAX_DEPTHWISE_TAPS: i64 = 81;

fn is_depthwise(x: &Operand, w: &Operand, p: &ConvParams, out: &Ty) -> bool {
    let c = x.ty.shape[1];
    let taps: i64 = w.ty.shape[2..].iter().product();
    p.groups == c
        && w.ty.shape[0] == c
        && w.ty.shape[1] == 1
        && (1..=MAX_DEPTHWISE_TAPS).contains(&taps)
        && out.numel() > 0
        && matches!(out.elem.as_str(), "f32" | "f64")
        && x.ty.elem == out.elem
        && w.ty.elem == out.elem
}

/// out[n, c, o..] = bias[c] + sum over taps t of x[n, c, o*s + t*d] * w[c, 0, t],
/// summed in the same order as the windowed generic (taps row-major).
/// `x` is the input padded by the convolution's padding, `unpadded` the
/// input itself (see [`tap_windows`]).
#[allow(clippy::too_many_arguments)]
fn depthwise_taps(e: &mut Emitter, unpadded: &Operand, x: &Operand, w: &Operand, bias: Option<&Operand>, p: &ConvParams, out: &Ty, k: usize) -> String {
    let kernel: Vec<i64> = w.ty.shape[2..].to_vec();
    let c = x.ty.shape[1];
    let rank = out.rank();
    let channel_map = format!("affine_map<({}) -> (d1)>", dim_list(rank));
    let channel_ty = w.ty.with_shape(vec![c]);
    let mut inputs = Vec::new();
    for (tap, (window, window_ty)) in taps(&kernel).into_iter().zip(tap_windows(e, unpadded, x, p, &kernel, out)) {
        inputs.push((window, window_ty, identity_map(rank)));
        // this tap's weight per channel: w[:, 0, t] as a [C] vector
        let w_offsets: Vec<String> = [0, 0].into_iter().chain(tap.iter().copied()).map(|v| v.to_string()).collect();
        let w_sizes: Vec<String> = [c].into_iter().chain(std::iter::repeat(1).take(k + 1)).map(|v| v.to_string()).collect();
        let ones = vec!["1"; k + 2].join(", ");
        let weight = e.assign(format!(
            "tensor.extract_slice {}[{}] [{}] [{ones}] : {} to {channel_ty}",
            w.ssa,
            w_offsets.join(", "),
            w_sizes.join(", "),
            w.ty
        ));
        inputs.push((weight, channel_ty.clone(), channel_map.clone()));
    }
    let bias = bias.map(|b| {
        let b_ty = b.ty.with_shape(vec![c]);
        (reshape_value(e, &b.ssa, &b.ty, &b_ty), b_ty, channel_map.clone())
    });
    let init = empty(e, out);
    taps_generic(e, inputs, bias, &init, out)
}

/// Channels per block in [`depthwise_blocked`]: one AVX-512 vector of f32
/// (two AVX2 vectors).
const CHANNEL_BLOCK: i64 = 16;

/// A 2-d float32 depthwise convolution on whole channel blocks that has a
/// stride or output rows shorter than half a block: see
/// [`depthwise_blocked`]. In NCHW, rows of fewer than 8 columns fill less
/// than half of each vector of a tap (mobilenet_v2's 7x7 stage: 960
/// channels, rows of 7, 31 GFLOP/s), while in the blocked layout every FMA
/// is a full vector of 16 channels (that kernel 3x faster with its copy
/// into the layout; the model 0.989 of the time at 1 thread, 0.995 at 2).
/// Rows of 14 (its 14x14 stage) lose: the copy into the layout costs more
/// than the taps save (1.002-1.004 at 1 thread, 1.012 at 2). Kernels of
/// [`BLOCKED_TAPS`] taps and more take it at any row length: in NCHW each
/// tap's window is a row shifted by its column, a misaligned vector load
/// (two lines) per FMA, and 49 of them per output vector keep the load
/// ports busier than the FMA units, where in the blocked layout the
/// windows are whole channel vectors.
fn is_blocked_depthwise_2d(x: &Operand, w: &Operand, p: &ConvParams, out: &Ty) -> bool {
    let taps: i64 = w.ty.shape[2..].iter().product();
    x.ty.rank() == 4
        && is_depthwise(x, w, p, out)
        && out.elem == "f32"
        && x.ty.shape[1] % CHANNEL_BLOCK == 0
        && (p.stride.iter().any(|&s| s > 1) || out.shape[3] < CHANNEL_BLOCK / 2 || taps >= BLOCKED_TAPS)
}

/// The fewest taps of a depthwise convolution that takes the blocked layout
/// whatever its rows: 7x7 (a 96-channel 56x56 one 0.84 of the time at 1
/// thread with both copies; convnext_tiny unchanged). 5x5 does not pay for
/// its copies (efficientnet_b0 1.014, mobilenet_v3_small 1.025).
const BLOCKED_TAPS: i64 = 49;

/// A depthwise convolution in a channel-blocked layout, as oneDNN's
/// and ONNX Runtime's NCHWc kernels: the input is copied once into
/// [N, C/16, H, W, 16] (padded in the same copy, see `padding` in the
/// compiler), every tap's window is then a strided slice whose innermost
/// dim is 16 contiguous channels (one vector), and the result
/// [N, C/16, OH, OW, 16] is copied back to [N, C, OH, OW] by a generic that
/// elementwise fusion takes into the taps' loop with a following ReLU6
/// (one pass instead of three; mobilenet_v2 -1.5%). In NCHW a stride
/// makes every window strided along the rows: they would need a copy per
/// phase (`stride_phases`) and rows as short as the output's (14 or 7
/// columns fill a 16-lane vector badly). Same taps, same order and the
/// same FMAs as [`depthwise_taps`], so the same results.
fn depthwise_blocked(e: &mut Emitter, x: &Operand, w: &Operand, bias: Option<&Operand>, p: &ConvParams, out: &Ty) -> String {
    let (n, c, h, wd) = (x.ty.shape[0], x.ty.shape[1], x.ty.shape[2], x.ty.shape[3]);
    let (blocks, (oh, ow)) = (c / CHANNEL_BLOCK, (out.shape[2], out.shape[3]));
    let map5 = |exprs: &str| format!("affine_map<(d0, d1, d2, d3, d4) -> ({exprs})>");
    // [N, C, H, W] -> [N, C/16, 16, H, W] -> [N, C/16, H, W, 16], padded
    let split_ty = x.ty.with_shape(vec![n, blocks, CHANNEL_BLOCK, h, wd]);
    let split = reshape_value(e, &x.ssa, &x.ty, &split_ty);
    let blocked_ty = x.ty.with_shape(vec![n, blocks, h, wd, CHANNEL_BLOCK]);
    let init = empty(e, &blocked_ty);
    let blocked =
        generic(e, &[(split, split_ty, map5("d0, d1, d4, d2, d3"))], &init, &blocked_ty, None, &["parallel"; 5], "", |_, a| a[0].clone());
    let padding = [0, 0, p.padding[0], p.padding[1], 0];
    let padded = pad_value(e, &blocked, &blocked_ty, &padding, &padding, "0.0");
    let padded_ty = padded_ty(&blocked_ty, &padding, &padding);
    // out_blocked[n, b, i, j, l] = bias + sum over taps of window_t * weight_t
    let out_blocked_ty = out.with_shape(vec![n, blocks, oh, ow, CHANNEL_BLOCK]);
    let channel_ty = w.ty.with_shape(vec![c]);
    let per_block_ty = w.ty.with_shape(vec![blocks, CHANNEL_BLOCK]);
    // [C, 1, KH, KW] -> [1, KH, KW, C]: a tap's weights are contiguous (the
    // transpose of a weight argument is folded into its stored layout)
    let (kh, kw) = (w.ty.shape[2], w.ty.shape[3]);
    let w_taps = transpose_value(e, &w.ssa, &w.ty, &[1, 2, 3, 0]);
    let w_taps_ty = w.ty.with_shape(vec![1, kh, kw, c]);
    let mut inputs = Vec::new();
    for tap in taps(&w.ty.shape[2..]) {
        let window = e.assign(format!(
            "tensor.extract_slice {padded}[0, 0, {}, {}, 0] [{n}, {blocks}, {oh}, {ow}, {CHANNEL_BLOCK}] [1, 1, {}, {}, 1] : {padded_ty} to {out_blocked_ty}",
            tap[0] * p.dilation[0],
            tap[1] * p.dilation[1],
            p.stride[0],
            p.stride[1],
        ));
        inputs.push((window, out_blocked_ty.clone(), identity_map(5)));
        let weight = e.assign(format!(
            "tensor.extract_slice {w_taps}[0, {}, {}, 0] [1, 1, 1, {c}] [1, 1, 1, 1] : {w_taps_ty} to {channel_ty}",
            tap[0], tap[1]
        ));
        let weight = reshape_value(e, &weight, &channel_ty, &per_block_ty);
        inputs.push((weight, per_block_ty.clone(), map5("d1, d4")));
    }
    let init = empty(e, &out_blocked_ty);
    let bias = bias.map(|b| {
        let b_ty = b.ty.with_shape(vec![blocks, CHANNEL_BLOCK]);
        (reshape_value(e, &b.ssa, &b.ty, &b_ty), b_ty, map5("d1, d4"))
    });
    let out_blocked = taps_generic(e, inputs, bias, &init, &out_blocked_ty);
    // [N, C/16, OH, OW, 16] -> [N, C/16, 16, OH, OW] -> [N, C, OH, OW]
    let unblocked_ty = out.with_shape(vec![n, blocks, CHANNEL_BLOCK, oh, ow]);
    // a generic, not a named transpose (which fusion leaves alone), and one
    // collapse of the channel blocks (not a reshape through 1-D), which
    // fusion moves past a following elementwise op
    let init = empty(e, &unblocked_ty);
    let unblocked =
        generic(e, &[(out_blocked, out_blocked_ty, map5("d0, d1, d3, d4, d2"))], &init, &unblocked_ty, None, &["parallel"; 5], "", |_, a| a[0].clone());
    e.assign(format!("tensor.collapse_shape {unblocked} [[0], [1, 2], [3], [4]] : {unblocked_ty} into {out}"))
}

/// Every tap of a kernel of size `kernel`, row-major (last dim fastest).
pub(super) fn taps(kernel: &[i64]) -> Vec<Vec<i64>> {
    let ranges: Vec<Vec<i64>> = kernel.iter().map(|&size| (0..size).collect()).collect();
    combinations(&ranges)
}

/// Every choice of one item per dim, row-major (last dim fastest).
fn combinations<T: Copy>(per_dim: &[Vec<T>]) -> Vec<Vec<T>> {
    per_dim.iter().fold(vec![vec![]], |prefixes, choices| {
        prefixes.iter().flat_map(|p| choices.iter().map(move |&c| p.iter().copied().chain([c]).collect())).collect()
    })
}

/// Every tap's input window as [N, C, O..] (taps in [`taps`] order),
/// output-sized and contiguous along the rows: a slice of one of the
/// input's stride phases. `x` is the input padded by `p.padding`,
/// `unpadded` the input itself. Strided, the windows are those of
/// [`padded_phase_windows`] of the input itself, whose one copy (into the
/// phases) its producer fuses into, where the phases of the padded input
/// took a copy into the padded input first (mobilenet_v2's stem: 0.6 MB);
/// unstrided, the phase is the padded input itself (a view).
fn tap_windows(e: &mut Emitter, unpadded: &Operand, x: &Operand, p: &ConvParams, kernel: &[i64], out: &Ty) -> Vec<(String, Ty)> {
    if p.stride.iter().any(|&s| s > 1) {
        let window = WindowParams { stride: &p.stride, padding: &p.padding, kernel, dilation: &p.dilation };
        return padded_phase_windows(e, &unpadded.ssa, &unpadded.ty, &window, out, zero(&x.ty));
    }
    let (phases, phases_ty) = stride_phases(e, &x.ssa, &x.ty, &p.stride, zero(&x.ty));
    taps(kernel).iter().map(|tap| tap_window(e, &phases, &phases_ty, tap, &p.stride, &p.dilation, out)).collect()
}

/// The input window of one tap as [N, C, O..] of the phases of the padded
/// input: the phase (t*d mod s) that holds its elements, from offset
/// (t*d div s).
fn tap_window(e: &mut Emitter, phases: &str, phases_ty: &Ty, tap: &[i64], stride: &[i64], dilation: &[i64], out: &Ty) -> (String, Ty) {
    let (phase, from) = tap_phase_and_start(tap, stride, dilation);
    phase_window(e, phases, phases_ty, &phase, &from, out)
}

/// The stride phase that holds a tap's elements (t*d mod s) and its
/// offset there (t*d div s), per spatial dim.
fn tap_phase_and_start(tap: &[i64], stride: &[i64], dilation: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let at: Vec<i64> = tap.iter().zip(dilation).map(|(t, d)| t * d).collect();
    let phase = at.iter().zip(stride).map(|(a, s)| a % s).collect();
    let from = at.iter().zip(stride).map(|(a, s)| a / s).collect();
    (phase, from)
}

/// A window over the spatial dims of [N, C, S..]: per dim its stride,
/// padding (both sides), size and dilation.
pub(super) struct WindowParams<'a> {
    pub stride: &'a [i64],
    pub padding: &'a [i64],
    pub kernel: &'a [i64],
    pub dilation: &'a [i64],
}

/// Every tap's window [N, C, O..] of `x` padded by `w.padding` with
/// `fill`, each a slice of one of `x`'s stride phases ([`stride_phases`]):
/// the phases are padded with `fill` in whole phase rows, enough for the
/// padding before them and for the last window after. Tap `t` reads input
/// `s*i + t*d - p`: row `i + (t*d - p) div s` of phase `(t*d - p) mod s`,
/// after the padding rows.
pub(super) fn padded_phase_windows(e: &mut Emitter, x: &str, x_ty: &Ty, w: &WindowParams, out: &Ty, fill: &str) -> Vec<(String, Ty)> {
    let (phases, phases_ty) = stride_phases(e, x, x_ty, w.stride, fill);
    windows_of_phases(e, &phases, &phases_ty, w, out, fill)
}

/// [`padded_phase_windows`] of the input whose stride phases are `phases`
/// (made by [`stride_phases`] or [`phases_in_pieces`]).
pub(super) fn windows_of_phases(e: &mut Emitter, phases: &str, phases_ty: &Ty, w: &WindowParams, out: &Ty, fill: &str) -> Vec<(String, Ty)> {
    let k = w.kernel.len();
    let rows = &phases_ty.shape[2 + k..];
    let reach = |d: usize, t: i64| t * w.dilation[d] - w.padding[d];
    let before: Vec<i64> = (0..k).map(|d| (w.padding[d] + w.stride[d] - 1) / w.stride[d]).collect();
    let after: Vec<i64> = (0..k)
        .map(|d| {
            let last = out.shape[2 + d] - 1 + reach(d, w.kernel[d] - 1).div_euclid(w.stride[d]) + before[d];
            (last + 1 - rows[d] - before[d]).max(0)
        })
        .collect();
    let low: Vec<i64> = vec![0; 2 + k].into_iter().chain(before.iter().copied()).collect();
    let high: Vec<i64> = vec![0; 2 + k].into_iter().chain(after).collect();
    let padded = pad_value(e, phases, phases_ty, &low, &high, fill);
    let padded_ty = padded_ty(phases_ty, &low, &high);
    taps(w.kernel)
        .iter()
        .map(|tap| {
            let phase: Vec<i64> = (0..k).map(|d| reach(d, tap[d]).rem_euclid(w.stride[d])).collect();
            let from: Vec<i64> = (0..k).map(|d| reach(d, tap[d]).div_euclid(w.stride[d]) + before[d]).collect();
            phase_window(e, &padded, &padded_ty, &phase, &from, out)
        })
        .collect()
}

/// The output-sized window [N, C, O..] of phase `phase` of `phases`
/// ([`stride_phases`]) from row `from`.
pub(super) fn phase_window(e: &mut Emitter, phases: &str, phases_ty: &Ty, phase: &[i64], from: &[i64], out: &Ty) -> (String, Ty) {
    let from: Vec<String> = from.iter().map(i64::to_string).collect();
    phase_window_from(e, phases, phases_ty, phase, &from, &out.shape[2..])
}

/// The window of `sizes` [O..] of phase `phase` from `from` (each an
/// integer or an index value) as [N, C, O..].
fn phase_window_from(e: &mut Emitter, phases: &str, phases_ty: &Ty, phase: &[i64], from: &[String], sizes: &[i64]) -> (String, Ty) {
    let k = phase.len();
    let offsets: Vec<String> = ["0".to_string(), "0".to_string()].into_iter().chain(phase.iter().map(i64::to_string)).chain(from.iter().cloned()).collect();
    let window_ty = phases_ty.with_shape(phases_ty.shape[..2].iter().chain(sizes).copied().collect());
    let sizes: Vec<String> = window_ty.shape[..2].iter().chain(&vec![1; k]).chain(sizes).map(i64::to_string).collect();
    let ones = vec!["1"; 2 + 2 * k].join(", ");
    let window = e.assign(format!(
        "tensor.extract_slice {phases}[{}] [{}] [{ones}] : {phases_ty} to {window_ty}",
        offsets.join(", "),
        sizes.join(", "),
    ));
    (window, window_ty)
}

/// The input [N, C, S..] split by the strides into its phases
/// [N, C, s.., S/s..]: phase (p..) holds the elements at p + s*i, so every
/// strided window becomes a contiguous slice of one phase. Dims are padded
/// with `fill` up to a multiple of their stride. One transposing copy of
/// the input; with all strides 1, a view of it.
///
/// A dim that is no multiple of its stride is not padded first, which took
/// a copy of the whole input (squeezenet's stem: 64 maps of 111x111 before
/// its stride-2 pool, 3.2 MB written and read once more per run): the
/// phases are made in pieces, the whole groups of `s` elements of each dim
/// and its last, partial group (padded with `fill`, a few elements per
/// row), each copied into its box of the phases.
pub(super) fn stride_phases(e: &mut Emitter, x: &str, ty: &Ty, stride: &[i64], fill: &str) -> (String, Ty) {
    let k = stride.len();
    let spatial = &ty.shape[2..];
    let rows: Vec<i64> = (0..k).map(|d| (spatial[d] + stride[d] - 1) / stride[d]).collect();
    let phases_ty = ty.with_shape(ty.shape[..2].iter().chain(stride).chain(&rows).copied().collect());
    if stride.iter().all(|&s| s == 1) {
        return (reshape_value(e, x, ty, &phases_ty), phases_ty);
    }
    if (0..k).all(|d| spatial[d] % stride[d] == 0) {
        return phases_of_groups(e, x, ty, stride);
    }
    let pieces: Vec<Vec<(i64, i64)>> = (0..k).map(|d| whole_and_partial_group(spatial[d], stride[d])).collect();
    phases_in_pieces(e, ty, stride, fill, &pieces, |e, starts, part_ty| {
        let offsets: Vec<String> = ["0", "0"].into_iter().map(String::from).chain(starts.iter().map(i64::to_string)).collect();
        e.assign(format!(
            "tensor.extract_slice {x}[{}] [{}] [{}] : {ty} to {part_ty}",
            offsets.join(", "),
            part_ty.shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
            vec!["1"; ty.rank()].join(", ")
        ))
    })
}

/// A dim of `size` in pieces (first element, elements): its whole groups
/// of `stride` elements, then its last, partial group.
pub(super) fn whole_and_partial_group(size: i64, stride: i64) -> Vec<(i64, i64)> {
    let whole = size / stride * stride;
    [(0, whole), (whole, size - whole)].into_iter().filter(|&(_, n)| n > 0).collect()
}

/// The stride phases [N, C, s.., S/s..] of an input of type `ty` [N, C,
/// S..] made box by box: `pieces` holds per spatial dim its ranges (first
/// element, elements), each but the last a multiple of the stride, and
/// `part(starts, part_ty)` gives the input's box of type `part_ty` from
/// `starts`. Each box (a partial group padded with `fill`) is copied into
/// its box of the phases. The input need not exist as one tensor: a max
/// pool makes each box of its row maxima where they go
/// (`pooling::separable_max`).
pub(super) fn phases_in_pieces(
    e: &mut Emitter,
    ty: &Ty,
    stride: &[i64],
    fill: &str,
    pieces: &[Vec<(i64, i64)>],
    mut part: impl FnMut(&mut Emitter, &[i64], &Ty) -> String,
) -> (String, Ty) {
    let k = stride.len();
    let rows: Vec<i64> = (0..k).map(|d| (ty.shape[2 + d] + stride[d] - 1) / stride[d]).collect();
    let phases_ty = ty.with_shape(ty.shape[..2].iter().chain(stride).chain(&rows).copied().collect());
    let mut phases = empty(e, &phases_ty);
    for pieces in combinations(pieces) {
        let starts: Vec<i64> = pieces.iter().map(|&(start, _)| start).collect();
        let sizes: Vec<i64> = pieces.iter().map(|&(_, n)| n).collect();
        let part_ty = ty.with_shape(ty.shape[..2].iter().chain(&sizes).copied().collect());
        let part = part(e, &starts, &part_ty);
        // a partial group padded to a whole one
        let extra: Vec<i64> = (0..k).map(|d| (stride[d] - sizes[d] % stride[d]) % stride[d]).collect();
        let (part, part_ty) = pad_spatial(e, &part, &part_ty, &vec![0; k], &extra, fill);
        let (box_phases, box_ty) = phases_of_groups(e, &part, &part_ty, stride);
        let at: Vec<String> = vec!["0".to_string(); 2 + k].into_iter().chain((0..k).map(|d| (starts[d] / stride[d]).to_string())).collect();
        phases = e.assign(format!(
            "tensor.insert_slice {box_phases} into {phases}[{}] [{}] [{}] : {box_ty} into {phases_ty}",
            at.join(", "),
            box_ty.shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
            vec!["1"; phases_ty.rank()].join(", ")
        ));
    }
    (phases, phases_ty)
}

/// The phases [N, C, s.., S/s..] of `x` [N, C, S..] whose spatial dims
/// are multiples of the strides (not all 1): one transposing copy.
fn phases_of_groups(e: &mut Emitter, x: &str, ty: &Ty, stride: &[i64]) -> (String, Ty) {
    let k = stride.len();
    let rows: Vec<i64> = (0..k).map(|d| ty.shape[2 + d] / stride[d]).collect();
    let phases_ty = ty.with_shape(ty.shape[..2].iter().chain(stride).chain(&rows).copied().collect());
    // [N, C, S..] viewed as [N, C, (S/s, s)..]
    let split_ty = ty.with_shape(ty.shape[..2].iter().copied().chain((0..k).flat_map(|d| [rows[d], stride[d]])).collect());
    let split = reshape_value(e, x, ty, &split_ty);
    // loops (n, c, p.., i..) read split[n, c, (i, p)..]
    let loops = 2 + 2 * k;
    let exprs: Vec<String> =
        ["d0".to_string(), "d1".to_string()].into_iter().chain((0..k).flat_map(|d| [format!("d{}", 2 + k + d), format!("d{}", 2 + d)])).collect();
    let read = format!("affine_map<({}) -> ({})>", dim_list(loops), exprs.join(", "));
    let init = empty(e, &phases_ty);
    let r = generic(e, &[(split, split_ty, read)], &init, &phases_ty, None, &vec!["parallel"; loops], "", |_, a| a[0].clone());
    (r, phases_ty)
}

/// [`stride_phases`] with the channels last: [N, s.., S/s.., C] (a
/// transposing copy after the phases' own, which keeps each a plain
/// transpose of rows that the elementwise strategy shuffles in registers).
fn channels_last_phases(e: &mut Emitter, x: &str, ty: &Ty, stride: &[i64]) -> (String, Ty) {
    let (phases, phases_ty) = stride_phases(e, x, ty, stride, zero(ty));
    let rank = phases_ty.rank();
    let perm: Vec<usize> = [0].into_iter().chain(2..rank).chain([1]).collect();
    let last_ty = phases_ty.with_shape(perm.iter().map(|&d| phases_ty.shape[d]).collect());
    (transpose_value(e, &phases, &phases_ty, &perm), last_ty)
}

/// acc + window_t * weight_t over the (window, weight) argument pairs, one
/// `math.fma` each (a single rounding, like the FMA loops of torch's kernels).
/// The all-parallel generic `out = start + sum over taps of input * weight`
/// over `inputs` in (input, weight) pairs, written into `init`: `start` is
/// `bias` (its value, type and map; converted to the output's type) or
/// zero. Depthwise convolutions' taps and a 1x1 convolution's channels.
fn taps_generic(e: &mut Emitter, mut inputs: Vec<(String, Ty, String)>, bias: Option<(String, Ty, String)>, init: &str, out: &Ty) -> String {
    let to = out.elem.clone();
    let parallel = vec!["parallel"; out.rank()];
    match bias {
        Some(b) => {
            let from = b.1.elem.clone();
            inputs.push(b);
            generic(e, &inputs, init, out, None, &parallel, "", |e, a| {
                let start = scalar::cast(e, &a[a.len() - 2], &from, &to);
                sum_taps(e, a, start, &to)
            })
        }
        None => generic(e, &inputs, init, out, None, &parallel, "", |e, a| {
            let start = e.assign(format!("arith.constant {} : {}", zero(out), crate::types::mlir_elem(&to)));
            sum_taps(e, a, start, &to)
        }),
    }
}

fn sum_taps(e: &mut Emitter, args: &[String], start: String, elem: &str) -> String {
    let pairs = (args.len() - 1) / 2;
    let ty = crate::types::mlir_elem(elem).to_string();
    (0..pairs).fold(start, |acc, t| e.assign(format!("math.fma {}, {}, {acc} : {ty}", args[2 * t], args[2 * t + 1])))
}

fn grouped(e: &mut Emitter, x: &Operand, w: &Operand, bias: Option<&Operand>, p: &ConvParams, out: &Ty, k: usize) -> Result<String, String> {
    let g = p.groups;
    let (n, c) = (x.ty.shape[0], x.ty.shape[1]);
    let f = w.ty.shape[0];
    if c % g != 0 || f % g != 0 || w.ty.shape[1] != c / g {
        return Err(format!("convolution with groups={g}: {c} input and {f} output channels, weight {}", w.ty));
    }
    let (cg, fg) = (c / g, f / g);
    let kernel: Vec<i64> = w.ty.shape[2..].to_vec();
    let outs: Vec<i64> = out.shape[2..].to_vec();
    // views: x [N, G, Cg, S..], w [G, Fg, Cg, K..], out [N, G, Fg, O..]
    let mut xs = vec![n, g, cg];
    xs.extend(&x.ty.shape[2..]);
    let xg_ty = x.ty.with_shape(xs);
    let xg = reshape_value(e, &x.ssa, &x.ty, &xg_ty);
    let mut ws = vec![g, fg, cg];
    ws.extend(&kernel);
    let wg_ty = w.ty.with_shape(ws);
    let wg = reshape_value(e, &w.ssa, &w.ty, &wg_ty);
    let mut os = vec![n, g, fg];
    os.extend(&outs);
    let og_ty = out.with_shape(os);
    let out_rank = og_ty.rank();
    // iteration: (n, g, f, o.. | c, k..)
    let all = dim_list(out_rank + 1 + k);
    let cdim = out_rank;
    let mut x_exprs = vec!["d0".to_string(), "d1".to_string(), format!("d{cdim}")];
    for d in 0..k {
        x_exprs.push(format!("d{} * {} + d{} * {}", 3 + d, p.stride[d], cdim + 1 + d, p.dilation[d]));
    }
    let mut w_exprs = vec!["d1".to_string(), "d2".to_string(), format!("d{cdim}")];
    for d in 0..k {
        w_exprs.push(format!("d{}", cdim + 1 + d));
    }
    let x_map = format!("affine_map<({all}) -> ({})>", x_exprs.join(", "));
    let w_map = format!("affine_map<({all}) -> ({})>", w_exprs.join(", "));
    let out_map = format!("affine_map<({all}) -> ({})>", dim_list(out_rank));
    let mut iterators = vec!["parallel"; out_rank];
    iterators.extend(vec!["reduction"; 1 + k]);
    // bias per output channel: channel = g * Fg + f -> view bias as [G, Fg]
    let init = match bias {
        Some(b) => {
            let bg_ty = b.ty.with_shape(vec![g, fg]);
            let bg = reshape_value(e, &b.ssa, &b.ty, &bg_ty);
            let (from, to) = (b.ty.elem.clone(), out.elem.clone());
            let acc = empty(e, &og_ty);
            let bias_map = format!("affine_map<({}) -> (d1, d2)>", dim_list(out_rank));
            generic(e, &[(bg, bg_ty, bias_map)], &acc, &og_ty, None, &vec!["parallel"; out_rank], "", |e, a| {
                scalar::cast(e, &a[0], &from, &to)
            })
        }
        None => filled(e, &og_ty, zero(out)),
    };
    let (xe, we, oe) = (x.ty.elem.clone(), w.ty.elem.clone(), out.elem.clone());
    let r = generic(e, &[(xg, xg_ty, x_map), (wg, wg_ty, w_map)], &init, &og_ty, Some(out_map), &iterators, "", |e, a| {
        let xv = scalar::cast(e, &a[0], &xe, &oe);
        let wv = scalar::cast(e, &a[1], &we, &oe);
        let m = scalar::mul(e, &xv, &wv, &oe);
        scalar::add(e, &a[2], &m, &oe)
    });
    Ok(reshape_value(e, &r, &og_ty, out))
}

/// A transposed convolution as a stride-1 convolution of the spread input.
fn conv_transpose_nd(
    e: &mut Emitter,
    x: &Operand,
    w: &Operand,
    bias: Option<&Operand>,
    p: &ConvParams,
    output_padding: &[i64],
    out: &Ty,
) -> Result<String, String> {
    let k = x.ty.rank().saturating_sub(2);
    if !(1..=3).contains(&k) || w.ty.rank() != k + 2 {
        return Err(format!("transposed convolution needs [N, C, spatial..] input, got {} and weight {}", x.ty, w.ty));
    }
    let g = p.groups;
    let (cin, fg) = (w.ty.shape[0], w.ty.shape[1]);
    let kernel: Vec<i64> = w.ty.shape[2..].to_vec();
    let cing = cin / g;
    // spread: zeros with x at positions lo + i*stride
    let mut low = Vec::new();
    let mut high = Vec::new();
    let mut shape = x.ty.shape[..2].to_vec();
    for d in 0..k {
        let edge = p.dilation[d] * (kernel[d] - 1);
        low.push(edge - p.padding[d]);
        high.push(edge - p.padding[d] + output_padding.get(d).copied().unwrap_or(0));
        shape.push((x.ty.shape[2 + d] - 1) * p.stride[d] + 1 + low[d].max(0) + high[d].max(0));
    }
    let spread_ty = x.ty.with_shape(shape);
    let zeros = filled(e, &spread_ty, zero(&x.ty));
    let offsets: Vec<String> = [0, 0].iter().chain(low.iter().map(|l| l.max(&0))).map(|v| v.to_string()).collect();
    let sizes: Vec<String> = x.ty.shape.iter().map(i64::to_string).collect();
    let strides: Vec<String> = [1, 1].iter().chain(&p.stride).map(|v| v.to_string()).collect();
    let mut spread = e.assign(format!(
        "tensor.insert_slice {} into {zeros}[{}] [{}] [{}] : {} into {spread_ty}",
        x.ssa,
        offsets.join(", "),
        sizes.join(", "),
        strides.join(", "),
        x.ty
    ));
    let mut spread_ty = spread_ty;
    // negative amounts (padding beyond the kernel's reach) crop
    for d in 0..k {
        if low[d] < 0 || high[d] < 0 {
            let len = spread_ty.shape[2 + d] + low[d].min(0) + high[d].min(0);
            let (s, t) = super::shape::slice_dim(e, &spread, &spread_ty, 2 + d, -low[d].min(0), len, 1);
            spread = s;
            spread_ty = t;
        }
    }
    // weight [Cin, Fg, K..] -> [G*Fg, Cin/G, K..], flipped
    let mut wt_shape = vec![g * fg, cing];
    wt_shape.extend(&kernel);
    let wt_ty = w.ty.with_shape(wt_shape);
    let mut exprs = vec![format!("d1 + (d0 floordiv {fg}) * {cing}"), format!("d0 mod {fg}")];
    for d in 0..k {
        exprs.push(format!("{} - d{}", kernel[d] - 1, 2 + d));
    }
    let wt = super::shape::affine_view(e, &w.ssa, &w.ty, &wt_ty, &exprs);
    let xs = Operand { ssa: spread, ty: spread_ty, arg: "input".into() };
    let ws = Operand { ssa: wt, ty: wt_ty, arg: "weight".into() };
    let params = ConvParams {
        stride: vec![1; k],
        padding: vec![0; k],
        dilation: p.dilation.clone(),
        groups: g,
        result_channel_blocked: p.result_channel_blocked,
    };
    conv_nd(e, &xs, &ws, bias, &params, out)
}

fn params(op: &AtenOp, k: usize) -> Result<ConvParams, String> {
    if let Some(Attr::Str(s)) = op.attrs.get("padding") {
        if s != "valid" && s != "same" {
            return Err(format!("{}: padding='{s}' is not understood", op.name));
        }
    }
    use super::MAX_WINDOW as MAX;
    let dilation = op.ints_in("dilation", k, &vec![1; k], 1, MAX)?;
    let w = op.input("weight")?;
    if w.ty.rank() != k + 2 || dilation.len() != k {
        return Err(format!("{}: weight {} and dilation {dilation:?} do not match {k} spatial dims", op.name, w.ty));
    }
    Ok(ConvParams {
        stride: op.ints_in("stride", k, &vec![1; k], 1, MAX)?,
        padding: match op.attrs.get("padding") {
            // 'same' (stride 1): total padding dilation*(K-1); torch puts the extra on the high side,
            // which the result type's size already accounts for when it is even.
            Some(Attr::Str(s)) if s == "same" => (0..k).map(|d| dilation[d] * (w.ty.shape[2 + d] - 1) / 2).collect(),
            Some(Attr::Str(_)) => vec![0; k],
            _ => op.ints_in("padding", k, &vec![0; k], 0, MAX)?,
        },
        dilation,
        groups: op.int_in("groups", 1, 1, MAX)?,
        result_channel_blocked: op.result_channel_blocked,
    })
}

/// Whether the convolution `op` is lowered by [`depthwise_blocked`], which
/// copies its input into the channel-blocked layout.
pub fn copies_input_channel_blocked(op: &AtenOp) -> bool {
    let transposed = op.name.starts_with("aten.conv_transpose") || op.bool("transposed", false) != Ok(false);
    let (Ok(x), Ok(w), Ok(k)) = (op.input("input"), op.input("weight"), spatial_dims(op)) else { return false };
    let Some(out) = op.results.first() else { return false };
    !transposed && op.name.starts_with("aten.conv") && params(op, k).is_ok_and(|p| is_blocked_depthwise_2d(x, w, &p, out))
}

/// An unbatched input ([C, spatial..], one dim fewer than the weight) as a
/// batch of one, and the result type to match; `None` when already batched.
fn as_batch_of_one(e: &mut Emitter, x: &Operand, w: &Operand, out: &Ty) -> Option<(Operand, Ty)> {
    if x.ty.rank() + 1 != w.ty.rank() || out.rank() != x.ty.rank() {
        return None;
    }
    let with_batch = |t: &Ty| {
        let mut shape = vec![1];
        shape.extend(&t.shape);
        t.with_shape(shape)
    };
    let xb_ty = with_batch(&x.ty);
    let xb = reshape_value(e, &x.ssa, &x.ty, &xb_ty);
    Some((Operand { ssa: xb, ty: xb_ty, arg: x.arg.clone() }, with_batch(out)))
}

/// Runs `f` on a batched input: unbatched inputs get a batch of one, which
/// the result drops again.
fn batched(
    e: &mut Emitter,
    op: &AtenOp,
    f: impl FnOnce(&mut Emitter, &Operand, &Ty) -> Result<String, String>,
) -> Result<Vec<String>, String> {
    let (x, w, out) = (op.input("input")?, op.input("weight")?, op.result());
    match as_batch_of_one(e, x, w, out) {
        Some((xb, out_b)) => {
            let r = f(e, &xb, &out_b)?;
            Ok(vec![reshape_value(e, &r, &out_b, out)])
        }
        None => Ok(vec![f(e, x, out)?]),
    }
}

/// The result shape torch computes for a (transposed) convolution of `x`
/// (batched or not) by `w`.
fn output_shape(x: &Ty, w: &Ty, p: &ConvParams, transposed: Option<&[i64]>) -> Vec<i64> {
    let k = w.rank().saturating_sub(2);
    let spatial = &x.shape[x.rank().saturating_sub(k)..];
    let mut shape = x.shape[..x.rank().saturating_sub(k + 1)].to_vec();
    shape.push(if transposed.is_some() { w.shape[1] * p.groups } else { w.shape[0] });
    for d in 0..k.min(spatial.len()) {
        let window = p.dilation[d] * (w.shape[2 + d] - 1);
        shape.push(match transposed {
            Some(output_padding) => (spatial[d] - 1) * p.stride[d] - 2 * p.padding[d] + window + output_padding[d] + 1,
            None => (spatial[d] + 2 * p.padding[d] - window - 1).div_euclid(p.stride[d].max(1)) + 1,
        });
    }
    shape
}

/// The number of spatial dims: the weight's rank minus its two channel dims.
fn spatial_dims(op: &AtenOp) -> Result<usize, String> {
    Ok(op.input("weight")?.ty.rank().saturating_sub(2).max(1))
}

/// conv1d/conv2d/conv3d(input, weight, bias?, stride, padding, dilation, groups),
/// batched ([N, C, spatial..]) or not ([C, spatial..]).
pub fn conv(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let k = spatial_dims(op)?;
    let p = params(op, k)?;
    if let Some(Attr::Str(s)) = op.attrs.get("padding") {
        if s == "same" {
            let w = op.input("weight")?;
            if (0..k).any(|d| p.dilation[d] * (w.ty.shape[2 + d] - 1) % 2 != 0) {
                return Err(format!("{}: padding='same' with an even kernel is not supported", op.name));
            }
        }
    }
    let (w, bias) = (op.input("weight")?, op.opt_input("bias"));
    let same = matches!(op.attrs.get("padding"), Some(Attr::Str(s)) if s == "same");
    if !same {
        op.expect_shape(0, &output_shape(&op.input("input")?.ty, &w.ty, &p, None))?;
    }
    batched(e, op, |e, x, out| conv_nd(e, x, w, bias, &p, out))
}

/// convolution(input, weight, bias?, stride, padding, dilation, transposed,
/// output_padding, groups) and conv_transpose{1,2,3}d(input, weight, bias?,
/// stride, padding, output_padding, groups, dilation), batched or not.
pub fn convolution(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let k = spatial_dims(op)?;
    let p = params(op, k)?;
    let transposed = op.name.starts_with("aten.conv_transpose") || op.bool("transposed", false)?;
    let (w, bias) = (op.input("weight")?, op.opt_input("bias"));
    let output_padding = op.ints_in("output_padding", k, &vec![0; k], 0, super::MAX_WINDOW)?;
    let transposed_by = if transposed { Some(output_padding.as_slice()) } else { None };
    if [&p.stride, &p.padding, &p.dilation, &output_padding].iter().all(|v| v.len() == k) {
        op.expect_shape(0, &output_shape(&op.input("input")?.ty, &w.ty, &p, transposed_by))?;
    }
    batched(e, op, |e, x, out| {
        if transposed {
            conv_transpose_nd(e, x, w, bias, &p, &output_padding, out)
        } else {
            conv_nd(e, x, w, bias, &p, out)
        }
    })
}
