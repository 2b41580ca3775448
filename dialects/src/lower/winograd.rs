//! 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3)
//! (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks"):
//! each 2x2 block of outputs comes from a 4x4 tile of input in 16
//! multiplications per channel pair instead of 36, so the GEMM, which is
//! most of a 3x3 convolution's time and already runs at the FMA units'
//! peak, does 2.25x less work. With d a 4x4 input tile, g the 3x3 filter:
//!
//!   Y = A^T [(G g G^T) . (B^T d B)] A      (. elementwise)
//!
//! - the filter transform U = G g G^T, [16, F, C], a generic tagged
//!   [`FILTER_TRANSFORM`] that weight packing computes at compile time
//!   for constant weights (`aotc::pack`, with [`filter_transform`]);
//! - the input transform V = B^T d B, [16, C, T] over the T = TH x TW
//!   tiles (tiles overlap by 2): one generic per element of the 4x4 tile,
//!   each a signed sum of 4 input slices. The input is split by column
//!   parity first so every slice is contiguous along its rows;
//! - 16 independent products M[e] = U[e] @ V[e]: one `linalg.batch_matmul`
//!   (the matmul micro-kernel);
//! - the output transform A^T M A: one generic per output of the
//!   2x2 block, each a signed sum of 9 slices of M, then one copy that
//!   interleaves the four into rows and adds the bias.
//!
//! The coefficients are 0, +-1 and +-1/2, so the result stays within a few
//! ulps of the direct sum.

use super::elementwise::{empty, filled, generic, identity_map};
use super::shape::reshape_value;
use super::Emitter;
use crate::types::Ty;

/// The attribute that marks the filter-transform generic.
pub const FILTER_TRANSFORM: &str = "aotc.winograd_filter";

/// B^T: the input transform's rows.
const BT: [[f64; 4]; 4] = [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]];
/// G: the filter transform's rows.
const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
/// A^T: the output transform's rows.
const AT: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];

/// U[e = 4 xi + nu][kh][kw] coefficient of g[kh][kw]: (G g G^T)[xi][nu].
pub fn filter_coefficients() -> [[[f64; 3]; 3]; 16] {
    let mut m = [[[0.0; 3]; 3]; 16];
    for xi in 0..4 {
        for nu in 0..4 {
            for kh in 0..3 {
                for kw in 0..3 {
                    m[4 * xi + nu][kh][kw] = G[xi][kh] * G[nu][kw];
                }
            }
        }
    }
    m
}

/// The filter transform of f32 weights `[F, C, 3, 3]` (row-major bytes) into
/// `[16, F, C]`, summed in f64 and rounded once.
pub fn filter_transform(weights: &[f32], f: usize, c: usize) -> Vec<f32> {
    let m = filter_coefficients();
    let mut u = vec![0.0f32; 16 * f * c];
    for (fc, g) in weights.chunks_exact(9).enumerate().take(f * c) {
        for (e, coefficients) in m.iter().enumerate() {
            let sum: f64 = (0..9).map(|t| coefficients[t / 3][t % 3] * g[t] as f64).sum();
            u[e * f * c + fc] = sum as f32;
        }
    }
    u
}

/// Whether a convolution of the padded input `xp` by `w` takes this path:
/// one image, 2-D, 3x3, stride and dilation 1, one group, f32, and enough
/// channels and tiles that the 2.25x fewer multiplications outweigh the
/// transforms' passes over memory.
pub fn applies(xp: &Ty, w: &Ty, stride: &[i64], dilation: &[i64], groups: i64, out: &Ty) -> bool {
    let f32 = [xp, w, out].iter().all(|t| t.elem == "f32");
    f32 && xp.rank() == 4
        && xp.shape[0] == 1
        && w.shape[2..] == [3, 3]
        && stride == [1, 1]
        && dilation == [1, 1]
        && groups == 1
        && w.shape[1] >= MIN_CHANNELS
        && w.shape[0] >= MIN_CHANNELS
        && ((out.shape[2] + 1) / 2) * ((out.shape[3] + 1) / 2) >= MIN_TILES
}

/// The fewest 2x2 output tiles worth it. Each element of the transformed
/// filter (16/9 the weight's bytes, stored in the library) is used once per
/// tile: at 7x7 outputs (16 tiles, 8x8 computed) resnet18's last stage gains
/// 5% of the model's time for 22 MB more library, so it stays im2col.
const MIN_TILES: i64 = 36;

/// The fewest input and output channels worth the transforms.
const MIN_CHANNELS: i64 = 32;

/// The convolution of the padded input `xp` [1, C, H, W] by `w` [F, C, 3, 3]
/// (+ `bias` [F]) into `out` [1, F, H - 2, W - 2].
pub fn conv3x3(e: &mut Emitter, xp: &str, xp_ty: &Ty, w: &str, w_ty: &Ty, bias: Option<(&str, &Ty)>, out: &Ty) -> String {
    let (c, f) = (xp_ty.shape[1], w_ty.shape[0]);
    let (oh, ow) = (out.shape[2], out.shape[3]);
    let (th, tw) = ((oh + 1) / 2, (ow + 1) / 2);
    let u = transformed_filter(e, w, w_ty);
    let v = transformed_input(e, xp, xp_ty, th, tw);
    // M[e] = U[e] @ V[e]: [16, F, C] x [16, C, T]
    let v_ty = xp_ty.with_shape(vec![16, c, th * tw]);
    let u_ty = w_ty.with_shape(vec![16, f, c]);
    let m_ty = out.with_shape(vec![16, f, th * tw]);
    let zeros = |e: &mut Emitter, part: &Ty| filled(e, part, "0.0");
    let m = super::linear::matmul_ragged(e, &u, &u_ty, &v, &v_ty, &super::linear::Init::PerPart(&zeros), &m_ty);
    transformed_output(e, &m, &m_ty, bias, th, tw, out)
}

/// U = G g G^T for every (filter, channel): [16, F, C].
fn transformed_filter(e: &mut Emitter, w: &str, w_ty: &Ty) -> String {
    let (f, c) = (w_ty.shape[0], w_ty.shape[1]);
    let values: Vec<String> = filter_coefficients()
        .iter()
        .map(|rows| {
            let rows: Vec<String> = rows.iter().map(|r| format!("[{}]", r.map(|v| format!("{v:?}")).join(", "))).collect();
            format!("[{}]", rows.join(", "))
        })
        .collect();
    let m_ty = w_ty.with_shape(vec![16, 3, 3]);
    let m = e.assign(format!("arith.constant dense<[{}]> : {m_ty}", values.join(", ")));
    let u_ty = w_ty.with_shape(vec![16, f, c]);
    let init = filled(e, &u_ty, "0.0");
    // loops (e, f, c, kh, kw)
    generic(
        e,
        &[
            (m, m_ty, "affine_map<(d0, d1, d2, d3, d4) -> (d0, d3, d4)>".into()),
            (w.to_string(), w_ty.clone(), "affine_map<(d0, d1, d2, d3, d4) -> (d1, d2, d3, d4)>".into()),
        ],
        &init,
        &u_ty,
        Some("affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2)>".into()),
        &["parallel", "parallel", "parallel", "reduction", "reduction"],
        &format!(", {FILTER_TRANSFORM}"),
        |e, v| {
            let p = e.assign(format!("arith.mulf {}, {} : f32", v[0], v[1]));
            e.assign(format!("arith.addf {}, {p} : f32", v[2]))
        },
    )
}

/// V = B^T d B for every 4x4 tile d (tile (i, j) starts at row 2i, column
/// 2j): [16, C, TH * TW].
fn transformed_input(e: &mut Emitter, xp: &str, xp_ty: &Ty, th: i64, tw: i64) -> String {
    let c = xp_ty.shape[1];
    // pad to [2 TH + 2, 2 TW + 2] (a last odd row or column of outputs reads
    // zeros past the input), then split the columns by parity:
    // [1, C, H', W'] -> [C, H', 2, W'/2] with phases[c, h, q, j] = x[c, h, 2j + q]
    let (hq, wq) = (2 * th + 2, 2 * tw + 2);
    let extra = [hq - xp_ty.shape[2], wq - xp_ty.shape[3]];
    let padded = super::shape::pad_value(e, xp, xp_ty, &[0, 0, 0, 0], &[0, 0, extra[0], extra[1]], "0.0");
    let padded_ty = xp_ty.with_shape(vec![1, c, hq, wq]);
    let split_ty = xp_ty.with_shape(vec![c, hq, tw + 1, 2]);
    let split = e.assign(format!(
        "tensor.collapse_shape {padded} [[0, 1], [2], [3]] : {padded_ty} into {}",
        xp_ty.with_shape(vec![c, hq, wq])
    ));
    let split = e.assign(format!(
        "tensor.expand_shape {split} [[0], [1], [2, 3]] output_shape [{c}, {hq}, {}, 2] : {} into {split_ty}",
        tw + 1,
        xp_ty.with_shape(vec![c, hq, wq])
    ));
    let phases_ty = xp_ty.with_shape(vec![c, hq, 2, tw + 1]);
    let init = empty(e, &phases_ty);
    let phases = generic(
        e,
        &[(split, split_ty, "affine_map<(d0, d1, d2, d3) -> (d0, d1, d3, d2)>".into())],
        &init,
        &phases_ty,
        None,
        &["parallel"; 4],
        "",
        |_, a| a[0].clone(),
    );
    // d[i][j]: x[c, 2 t_h + i, 2 t_w + j] over the tiles, [C, TH, TW]
    let tile_ty = xp_ty.with_shape(vec![c, th, tw]);
    let mut d = Vec::new();
    for i in 0..4 {
        for j in 0..4 {
            // (slices keep their rank: MLIR's strided-metadata expansion
            // mishandles rank-reducing subviews with several unit dims)
            let slice_ty = xp_ty.with_shape(vec![c, th, 1, tw]);
            let slice = e.assign(format!(
                "tensor.extract_slice {phases}[0, {i}, {}, {}] [{c}, {th}, 1, {tw}] [1, 2, 1, 1] : {phases_ty} to {slice_ty}",
                j % 2,
                j / 2
            ));
            d.push(e.assign(format!("tensor.collapse_shape {slice} [[0], [1], [2, 3]] : {slice_ty} into {tile_ty}")));
        }
    }
    // one pass computes all 16 elements of every tile's transform
    let terms = two_sided_terms(&BT);
    let inputs: Vec<(String, Ty, String)> = d.iter().map(|s| (s.clone(), tile_ty.clone(), identity_map(3))).collect();
    let elements = elementwise_outputs(e, &inputs, &tile_ty, 16, |e, a| {
        terms.iter().map(|t| signed_sum(e, a, t)).collect()
    });
    let v_ty = xp_ty.with_shape(vec![16, c, th, tw]);
    let mut v = empty(e, &v_ty);
    for (x, element) in elements.iter().enumerate() {
        let one_ty = v_ty.with_shape(vec![1, c, th, tw]);
        let one = e.assign(format!(
            "tensor.expand_shape {element} [[0, 1], [2], [3]] output_shape [1, {c}, {th}, {tw}] : {tile_ty} into {one_ty}"
        ));
        v = e.assign(format!(
            "tensor.insert_slice {one} into {v}[{x}, 0, 0, 0] [1, {c}, {th}, {tw}] [1, 1, 1, 1] : {one_ty} into {v_ty}"
        ));
    }
    reshape_value(e, &v, &v_ty, &xp_ty.with_shape(vec![16, c, th * tw]))
}

/// Y = A^T M A (+ bias) for every tile, interleaved into rows and cut to
/// `out` [1, F, OH, OW].
fn transformed_output(e: &mut Emitter, m: &str, m_ty: &Ty, bias: Option<(&str, &Ty)>, th: i64, tw: i64, out: &Ty) -> String {
    let f = m_ty.shape[1];
    let m4_ty = m_ty.with_shape(vec![16, f, th, tw]);
    let m4 = reshape_value(e, m, m_ty, &m4_ty);
    let tile_ty = m_ty.with_shape(vec![f, th, tw]);
    let slices: Vec<String> = (0..16)
        .map(|x| {
            let one_ty = m_ty.with_shape(vec![1, f, th, tw]);
            let one = e.assign(format!(
                "tensor.extract_slice {m4}[{x}, 0, 0, 0] [1, {f}, {th}, {tw}] [1, 1, 1, 1] : {m4_ty} to {one_ty}"
            ));
            e.assign(format!("tensor.collapse_shape {one} [[0, 1], [2], [3]] : {one_ty} into {tile_ty}"))
        })
        .collect();
    // the four outputs of every tile in one pass, then
    // blocks[f, i, a, b, j] = y[f, 2 i + a, 2 j + b]
    let terms = two_sided_terms(&AT);
    let inputs: Vec<(String, Ty, String)> = slices.iter().map(|s| (s.clone(), tile_ty.clone(), identity_map(3))).collect();
    let ys = elementwise_outputs(e, &inputs, &tile_ty, 4, |e, a| terms.iter().map(|t| signed_sum(e, a, t)).collect());
    let blocks_ty = m_ty.with_shape(vec![f, th, 2, 2, tw]);
    let mut blocks = empty(e, &blocks_ty);
    for (ab, y) in ys.iter().enumerate() {
        let (a, b) = (ab / 2, ab % 2);
        let one_ty = m_ty.with_shape(vec![f, th, 1, 1, tw]);
        let one = e.assign(format!(
            "tensor.expand_shape {y} [[0], [1, 2, 3], [4]] output_shape [{f}, {th}, 1, 1, {tw}] : {tile_ty} into {one_ty}"
        ));
        blocks = e.assign(format!(
            "tensor.insert_slice {one} into {blocks}[0, 0, {a}, {b}, 0] [{f}, {th}, 1, 1, {tw}] [1, 1, 1, 1, 1] : {one_ty} into {blocks_ty}"
        ));
    }
    // [F, TH, 2, 2, TW] -> [F, TH, 2, TW, 2] -> [F, 2 TH, 2 TW], + bias:
    // here rather than in the transform, whose operands are then all read
    // alike and which runs as one flat loop (rows of the tile grid, 28 for
    // a 56x56 output, are no whole vectors: resnet18's transforms took
    // twice the time with the bias in)
    let rows_ty = m_ty.with_shape(vec![f, th, 2, tw, 2]);
    let init = empty(e, &rows_ty);
    let mut inputs = vec![(blocks, blocks_ty, "affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4, d3)>".to_string())];
    if let Some((bias, bias_ty)) = bias {
        inputs.push((bias.to_string(), bias_ty.clone(), "affine_map<(d0, d1, d2, d3, d4) -> (d0)>".into()));
    }
    // (the body's arguments end with the output's element: a[1] is the
    // bias only when there is one)
    let with_bias = bias.is_some();
    let rows = generic(e, &inputs, &init, &rows_ty, None, &["parallel"; 5], "", |e, a| {
        if with_bias {
            e.assign(format!("arith.addf {}, {} : f32", a[0], a[1]))
        } else {
            a[0].clone()
        }
    });
    let full_ty = m_ty.with_shape(vec![f, 2 * th, 2 * tw]);
    let full = e.assign(format!("tensor.collapse_shape {rows} [[0], [1, 2], [3, 4]] : {rows_ty} into {full_ty}"));
    let (oh, ow) = (out.shape[2], out.shape[3]);
    let cut_ty = m_ty.with_shape(vec![f, oh, ow]);
    let cut = if (oh, ow) == (2 * th, 2 * tw) {
        full
    } else {
        e.assign(format!("tensor.extract_slice {full}[0, 0, 0] [{f}, {oh}, {ow}] [1, 1, 1] : {full_ty} to {cut_ty}"))
    };
    reshape_value(e, &cut, &cut_ty, out)
}

/// One all-parallel generic over `ty` (rank 3) with `outputs` results of
/// that type: `body` gets the input elements and returns one value per
/// result. The inputs are (value, type, indexing map), f32.
fn elementwise_outputs(
    e: &mut Emitter,
    inputs: &[(String, Ty, String)],
    ty: &Ty,
    outputs: usize,
    body: impl FnOnce(&mut Emitter, &[String]) -> Vec<String>,
) -> Vec<String> {
    let inits: Vec<String> = (0..outputs).map(|_| empty(e, ty)).collect();
    let maps: Vec<String> = inputs.iter().map(|(_, _, m)| m.clone()).chain((0..outputs).map(|_| identity_map(3))).collect();
    let result = e.fresh();
    let out_types = vec![ty.to_string(); outputs].join(", ");
    e.line(format!(
        "{result}:{outputs} = linalg.generic {{indexing_maps = [{}], iterator_types = [\"parallel\", \"parallel\", \"parallel\"]}} ins({} : {}) outs({} : {out_types}) {{",
        maps.join(", "),
        inputs.iter().map(|(v, _, _)| v.as_str()).collect::<Vec<_>>().join(", "),
        inputs.iter().map(|(_, t, _)| t.to_string()).collect::<Vec<_>>().join(", "),
        inits.join(", "),
    ));
    let args: Vec<String> = (0..inputs.len() + outputs).map(|_| e.fresh()).collect();
    let decls: Vec<String> = args.iter().map(|a| format!("{a}: f32")).collect();
    e.line(format!("^bb0({}):", decls.join(", ")));
    e.indented(|e| {
        let values = body(e, &args[..inputs.len()]);
        e.line(format!("linalg.yield {} : {}", values.join(", "), vec!["f32"; outputs].join(", ")));
    });
    e.line(format!("}} -> ({out_types})"));
    (0..outputs).map(|i| format!("{result}#{i}")).collect()
}

/// The transform `X -> L X L^T` of a 4x4 tile X (L = B^T or A^T, R rows)
/// as sums: for each of the R x R results (row-major), its nonzero
/// coefficients `L[r][i] * L[s][j]` with the tile position `4 i + j` they
/// multiply.
fn two_sided_terms<const R: usize>(l: &[[f64; 4]; R]) -> Vec<Vec<(f64, usize)>> {
    (0..R * R)
        .map(|rs| (0..16).map(|ij| (l[rs / R][ij / 4] * l[rs % R][ij % 4], ij)).filter(|(k, _)| *k != 0.0).collect())
        .collect()
}

/// `sum k * args[i]` over `terms` (k, i) (f32): the terms are added or
/// subtracted by their sign, multiplied only where k is not +-1.
fn signed_sum(e: &mut Emitter, args: &[String], terms: &[(f64, usize)]) -> String {
    let mut acc: Option<String> = None;
    for &(k, i) in terms {
        let a = &args[i];
        let term = if k.abs() == 1.0 {
            a.clone()
        } else {
            let c = e.assign(format!("arith.constant {:?} : f32", k.abs()));
            e.assign(format!("arith.mulf {a}, {c} : f32"))
        };
        acc = Some(match (acc, k < 0.0) {
            (None, false) => term,
            (None, true) => e.assign(format!("arith.negf {term} : f32")),
            (Some(s), false) => e.assign(format!("arith.addf {s}, {term} : f32")),
            (Some(s), true) => e.assign(format!("arith.subf {s}, {term} : f32")),
        });
    }
    acc.unwrap_or_else(|| e.assign("arith.constant 0.0 : f32".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transforms reproduce the direct 3x3 correlation of a 4x4 tile
    /// (in f64: only the algebra is checked here; the op suite compares
    /// compiled convolutions with torch).
    #[test]
    fn transforms_compute_the_correlation() {
        let d: Vec<f64> = (0..16).map(|i| ((i * 7919) % 23) as f64 / 7.0 - 1.5).collect();
        let g: Vec<f32> = (0..9).map(|i| ((i * 104729) % 17) as f32 / 5.0 - 1.7).collect();
        let u = filter_transform(&g, 1, 1);
        let mut m = [0.0f64; 16];
        for xi in 0..4 {
            for nu in 0..4 {
                let v: f64 = (0..16).map(|ij| BT[xi][ij / 4] * BT[nu][ij % 4] * d[ij]).sum();
                m[4 * xi + nu] = u[4 * xi + nu] as f64 * v;
            }
        }
        for a in 0..2 {
            for b in 0..2 {
                let y: f64 = (0..16).map(|x| AT[a][x / 4] * AT[b][x % 4] * m[x]).sum();
                let direct: f64 = (0..9).map(|t| d[(a + t / 3) * 4 + b + t % 3] * g[t] as f64).sum();
                assert!((y - direct).abs() < 1e-5, "y[{a}][{b}] = {y}, direct {direct}");
            }
        }
    }

    #[test]
    fn only_large_3x3_stride_1_convolutions() {
        let t = |shape: &[i64]| Ty::new(shape.to_vec(), "f32");
        let (x, w, out) = (t(&[1, 64, 58, 58]), t(&[64, 64, 3, 3]), t(&[1, 64, 56, 56]));
        assert!(applies(&x, &w, &[1, 1], &[1, 1], 1, &out));
        assert!(!applies(&x, &w, &[2, 2], &[1, 1], 1, &out));
        assert!(!applies(&t(&[1, 16, 58, 58]), &t(&[64, 16, 3, 3]), &[1, 1], &[1, 1], 1, &out));
        assert!(!applies(&t(&[1, 512, 9, 9]), &t(&[512, 512, 3, 3]), &[1, 1], &[1, 1], 1, &t(&[1, 512, 7, 7])));
        assert!(applies(&t(&[1, 256, 16, 16]), &t(&[256, 256, 3, 3]), &[1, 1], &[1, 1], 1, &t(&[1, 256, 14, 14])));
    }
}
