//! 3x3 stride-1 convolutions by Winograd's minimal filtering F(m x m, 3x3)
//! (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks"):
//! each m x m block of outputs comes from an n x n tile of input (n = m + 2)
//! in n^2 multiplications per channel pair instead of 9 m^2, so the GEMM,
//! which is most of a 3x3 convolution's time and already runs at the FMA
//! units' peak, does less work: 2.25x less for F(2x2, 3x3), 4x less for
//! F(4x4, 3x3). With d an n x n input tile, g the 3x3 filter:
//!
//!   Y = A^T [(G g G^T) . (B^T d B)] A      (. elementwise)
//!
//! - the filter transform U = G g G^T, [n^2, F, C], a generic tagged
//!   [`FILTER_TRANSFORM`] that, for constant weights, weight packing
//!   takes out of the program (`aotc::pack`): the library stores the
//!   weight and its runtime transforms it when the model's first handle is
//!   created (`aotc_runtime::winograd`);
//! - the input transform V = B^T d B, [n^2, C, T] over the T = TH x TW
//!   tiles (tiles overlap by 2): one generic with a result per element of
//!   the tile, B^T d B computed as the rows' transform, then the
//!   columns'. The input is split by column phase (modulo m) first so
//!   every slice of the tiles is contiguous along its rows;
//! - n^2 independent products M[e] = U[e] @ V[e]: one `linalg.batch_matmul`
//!   (the matmul micro-kernel);
//! - the output transform A^T M A: one generic with a result per output of
//!   the m x m block (the slices of one stacked tensor), then one pass that
//!   interleaves them into rows and adds the bias.
//!
//! [`Tiles::F2`]'s coefficients are 0, +-1 and +-1/2, so its results stay
//! within a few ulps of the direct sum; [`Tiles::F4`]'s (interpolation
//! points 0, +-1, +-2) reach 25 in B^T and 8 in A^T and lose a few more
//! bits, still well inside f32 tolerances for 3x3 sums (the op suite's
//! `conv2d__winograd_f4*` cases hold 1e-5). F4 is used where its filter
//! (36/9 the weight's bytes, in memory at run time) is reused over enough
//! tiles: see [`choose`].

use super::elementwise::{empty, filled, generic, identity_map};
use super::shape::reshape_value;
use super::Emitter;
use crate::types::Ty;

/// The attribute that marks the filter-transform generic.
pub const FILTER_TRANSFORM: &str = "aotc.winograd_filter";

/// The two tilings: outputs per tile side m.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiles {
    /// F(2x2, 3x3) on 4x4 tiles.
    F2,
    /// F(4x4, 3x3) on 6x6 tiles.
    F4,
}

/// F(2x2, 3x3): B^T and A^T (G: `aotc_runtime::winograd::G2`).
const BT2: [&[f64]; 4] = [&[1.0, 0.0, -1.0, 0.0], &[0.0, 1.0, 1.0, 0.0], &[0.0, -1.0, 1.0, 0.0], &[0.0, 1.0, 0.0, -1.0]];
const AT2: [&[f64]; 2] = [&[1.0, 1.0, 1.0, 0.0], &[0.0, 1.0, -1.0, -1.0]];

/// F(4x4, 3x3) at the points 0, 1, -1, 2, -2 and infinity: B^T and A^T
/// (G: `aotc_runtime::winograd::G4`).
const BT4: [&[f64]; 6] = [
    &[4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    &[0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    &[0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    &[0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    &[0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    &[0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];
const AT4: [&[f64]; 4] = [
    &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    &[0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    &[0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    &[0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

impl Tiles {
    /// Outputs per tile side.
    pub fn m(self) -> i64 {
        match self {
            Tiles::F2 => 2,
            Tiles::F4 => 4,
        }
    }

    /// Input tile side.
    pub fn n(self) -> i64 {
        self.m() + 2
    }

    /// Elements of a transformed tile (the products' batch).
    pub fn elements(self) -> i64 {
        self.n() * self.n()
    }

    /// The tiling whose transformed tiles have `elements` elements (the
    /// first dim of a transformed filter).
    pub fn with_elements(elements: i64) -> Option<Tiles> {
        [Tiles::F2, Tiles::F4].into_iter().find(|t| t.elements() == elements)
    }

    fn bt(self) -> &'static [&'static [f64]] {
        match self {
            Tiles::F2 => &BT2,
            Tiles::F4 => &BT4,
        }
    }

    fn g(self) -> &'static [[f64; 3]] {
        match self {
            Tiles::F2 => &aotc_runtime::winograd::G2,
            Tiles::F4 => &aotc_runtime::winograd::G4,
        }
    }

    fn at(self) -> &'static [&'static [f64]] {
        match self {
            Tiles::F2 => &AT2,
            Tiles::F4 => &AT4,
        }
    }

    /// Tiles covering `outputs` [OH, OW]: (TH, TW).
    fn grid(self, outputs: &[i64]) -> (i64, i64) {
        let m = self.m();
        ((outputs[0] + m - 1) / m, (outputs[1] + m - 1) / m)
    }
}

/// U[e = n xi + nu][kh][kw] coefficient of g[kh][kw]: (G g G^T)[xi][nu].
pub fn filter_coefficients(tiles: Tiles) -> Vec<[[f64; 3]; 3]> {
    aotc_runtime::winograd::filter_coefficients(tiles.g())
}

/// The filter transform of f32 weights `[F, C, 3, 3]` into `[n^2, F, C]`
/// (`aotc_runtime::winograd::filter_transform`, which a library's runtime
/// runs on its stored weights).
pub fn filter_transform(weights: &[f32], f: usize, c: usize, tiles: Tiles) -> Vec<f32> {
    let mut u = vec![0.0; tiles.elements() as usize * f * c];
    aotc_runtime::winograd::filter_transform(weights, f, c, tiles.g(), 1, &mut u);
    u
}

/// The tiling a convolution of the padded input `xp` by `w` takes, if any:
/// one image, 2-D, 3x3, stride and dilation 1, one group, f32, and enough
/// channels and tiles that the fewer multiplications outweigh the
/// transforms' passes over memory. F4 where its tiles reuse each element
/// of the (2.25x larger) transformed filter often enough, else F2.
pub fn choose(xp: &Ty, w: &Ty, stride: &[i64], dilation: &[i64], groups: i64, out: &Ty) -> Option<Tiles> {
    let f32 = [xp, w, out].iter().all(|t| t.elem == "f32");
    let fits = f32
        && xp.rank() == 4
        && xp.shape[0] == 1
        && w.shape[2..] == [3, 3]
        && stride == [1, 1]
        && dilation == [1, 1]
        && groups == 1
        && w.shape[1] >= MIN_INPUT_CHANNELS
        && w.shape[0] >= MIN_CHANNELS;
    let tile_count = |t: Tiles| {
        let (th, tw) = t.grid(&out.shape[2..]);
        th * tw
    };
    if !fits {
        None
    } else if tile_count(Tiles::F4) >= MIN_TILES_F4 {
        Some(Tiles::F4)
    } else if tile_count(Tiles::F2) >= MIN_TILES {
        Some(Tiles::F2)
    } else {
        None
    }
}

/// The fewest 2x2 output tiles worth F2 (7x7 outputs and up: 16 tiles, 8x8
/// computed). Each element of the transformed filter (16/9 the weight's
/// bytes) is used once per tile, but even at 7x7 the products' 0.58x work
/// outweighs streaming it: resnet18 with F2 in its last stage, 1 thread
/// 0.966, 2 threads 0.936 (ab). The library stores the weights, not the
/// transform, so this costs no library size.
const MIN_TILES: i64 = 16;

/// The fewest 4x4 output tiles worth F4 (28x28 outputs and up): at 14x14
/// outputs (16 tiles, 16x16 computed) the product does 0.73x F2's work but
/// streams a filter 2.25x as large (resnet18 with F4 there too: 1 thread
/// 1.008, 2 threads 0.997, 16 MB more library).
const MIN_TILES_F4: i64 = 49;

/// The fewest output channels worth the transforms.
const MIN_CHANNELS: i64 = 32;

/// The fewest input channels worth the transforms: squeezenet's 3x3
/// expansions of 16 channels to 64 at 55x55 (F4) make the model 0.90-0.93
/// of the time at 1 thread (ab); the UNet's 16-channel ones unchanged.
const MIN_INPUT_CHANNELS: i64 = 16;

/// The convolution of the padded input `xp` [1, C, H, W] by `w` [F, C, 3, 3]
/// (+ `bias` [F]) into `out` [1, F, H - 2, W - 2].
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(e: &mut Emitter, tiles: Tiles, xp: &str, xp_ty: &Ty, w: &str, w_ty: &Ty, bias: Option<(&str, &Ty)>, out: &Ty) -> String {
    let (c, f, x) = (xp_ty.shape[1], w_ty.shape[0], tiles.elements());
    let (th, tw) = tiles.grid(&out.shape[2..]);
    let u = transformed_filter(e, tiles, w, w_ty);
    let v = transformed_input(e, tiles, xp, xp_ty, th, tw);
    // M[e] = U[e] @ V[e]: [n^2, F, C] x [n^2, C, T]
    let v_ty = xp_ty.with_shape(vec![x, c, th * tw]);
    let u_ty = w_ty.with_shape(vec![x, f, c]);
    let m_ty = out.with_shape(vec![x, f, th * tw]);
    let m = if on_row_panels(f, th * tw) {
        super::linear::product_on_row_panels(e, &u, &u_ty, &v, &v_ty, None, &m_ty)
    } else {
        let zeros = |e: &mut Emitter, part: &Ty, _: i64| filled(e, part, "0.0");
        super::linear::matmul_ragged(e, &u, &u_ty, &v, &v_ty, &super::linear::Init::PerPart(&zeros), &m_ty)
    };
    transformed_output(e, tiles, &m, &m_ty, bias, th, tw, out)
}

/// Whether the products of `f` filters by `t` tiles read U as row panels
/// (`linear::product_on_row_panels`): whole panels of F and a vector of
/// tiles. Each element's U is then one stream from memory rather than R
/// rows of C floats per register tile, whatever the tiles: resnet18
/// (products over 49 and 196 tiles) 1 thread 0.93 and 0.96 (ab, each step
/// against the one before), 2 threads far 0.94 and 0.985; one convolution
/// of 64 channels at 112x112 (784 tiles) 0.96, of 128 at 56x56 0.96-0.99.
fn on_row_panels(f: i64, t: i64) -> bool {
    super::linear::row_panel_rows(f, t).is_some() && t >= super::linear::PANEL
}

/// U = G g G^T for every (filter, channel): [n^2, F, C].
fn transformed_filter(e: &mut Emitter, tiles: Tiles, w: &str, w_ty: &Ty) -> String {
    let (f, c, x) = (w_ty.shape[0], w_ty.shape[1], tiles.elements());
    let values: Vec<String> = filter_coefficients(tiles)
        .iter()
        .map(|rows| {
            let rows: Vec<String> = rows.iter().map(|r| format!("[{}]", r.map(|v| format!("{v:?}")).join(", "))).collect();
            format!("[{}]", rows.join(", "))
        })
        .collect();
    let m_ty = w_ty.with_shape(vec![x, 3, 3]);
    let m = e.assign(format!("arith.constant dense<[{}]> : {m_ty}", values.join(", ")));
    let u_ty = w_ty.with_shape(vec![x, f, c]);
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

/// V = B^T d B for every n x n tile d (tile (i, j) starts at row m i,
/// column m j): [n^2, C, TH * TW].
fn transformed_input(e: &mut Emitter, tiles: Tiles, xp: &str, xp_ty: &Ty, th: i64, tw: i64) -> String {
    let (c, m, n) = (xp_ty.shape[1], tiles.m(), tiles.n());
    // pad to [m TH + 2, m (TW + 1)] (a last partial block of outputs reads
    // zeros past the input), then split the columns by phase:
    // [1, C, H', W'] -> [C, H', m, W'/m] with phases[c, h, q, j] = x[c, h, m j + q]
    let (hq, wq) = (m * th + 2, m * (tw + 1));
    let extra = [hq - xp_ty.shape[2], wq - xp_ty.shape[3]];
    let padded = super::shape::pad_value(e, xp, xp_ty, &[0, 0, 0, 0], &[0, 0, extra[0], extra[1]], "0.0");
    let padded_ty = xp_ty.with_shape(vec![1, c, hq, wq]);
    let split_ty = xp_ty.with_shape(vec![c, hq, tw + 1, m]);
    let split = e.assign(format!(
        "tensor.collapse_shape {padded} [[0, 1], [2], [3]] : {padded_ty} into {}",
        xp_ty.with_shape(vec![c, hq, wq])
    ));
    let split = e.assign(format!(
        "tensor.expand_shape {split} [[0], [1], [2, 3]] output_shape [{c}, {hq}, {}, {m}] : {} into {split_ty}",
        tw + 1,
        xp_ty.with_shape(vec![c, hq, wq])
    ));
    let phases_ty = xp_ty.with_shape(vec![c, hq, m, tw + 1]);
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
    // d[i][j]: x[c, m t_h + i, m t_w + j] over the tiles, [C, TH, TW]
    let tile_ty = xp_ty.with_shape(vec![c, th, tw]);
    let mut d = Vec::new();
    for i in 0..n {
        for j in 0..n {
            // (slices keep their rank: MLIR's strided-metadata expansion
            // mishandles rank-reducing subviews with several unit dims)
            let slice_ty = xp_ty.with_shape(vec![c, th, 1, tw]);
            let slice = e.assign(format!(
                "tensor.extract_slice {phases}[0, {i}, {}, {}] [{c}, {th}, 1, {tw}] [1, {m}, 1, 1] : {phases_ty} to {slice_ty}",
                j % m,
                j / m
            ));
            d.push(e.assign(format!("tensor.collapse_shape {slice} [[0], [1], [2, 3]] : {slice_ty} into {tile_ty}")));
        }
    }
    // one pass computes all n^2 elements of every tile's transform
    let bt = tiles.bt();
    let inputs: Vec<(String, Ty, String)> = d.iter().map(|s| (s.clone(), tile_ty.clone(), identity_map(3))).collect();
    let elements = elementwise_outputs(e, &inputs, &tile_ty, (n * n) as usize, |e, a| two_sided(e, a, bt));
    let x = n * n;
    let v_ty = xp_ty.with_shape(vec![x, c, th, tw]);
    let mut v = empty(e, &v_ty);
    for (k, element) in elements.iter().enumerate() {
        let one_ty = v_ty.with_shape(vec![1, c, th, tw]);
        let one = e.assign(format!(
            "tensor.expand_shape {element} [[0, 1], [2], [3]] output_shape [1, {c}, {th}, {tw}] : {tile_ty} into {one_ty}"
        ));
        v = e.assign(format!(
            "tensor.insert_slice {one} into {v}[{k}, 0, 0, 0] [1, {c}, {th}, {tw}] [1, 1, 1, 1] : {one_ty} into {v_ty}"
        ));
    }
    reshape_value(e, &v, &v_ty, &xp_ty.with_shape(vec![x, c, th * tw]))
}

/// Y = A^T M A (+ bias) for every tile, interleaved into rows and cut to
/// `out` [1, F, OH, OW].
#[allow(clippy::too_many_arguments)]
fn transformed_output(e: &mut Emitter, tiles: Tiles, m: &str, m_ty: &Ty, bias: Option<(&str, &Ty)>, th: i64, tw: i64, out: &Ty) -> String {
    let (f, x, s) = (m_ty.shape[1], tiles.elements(), tiles.m());
    let m4_ty = m_ty.with_shape(vec![x, f, th, tw]);
    let m4 = reshape_value(e, m, m_ty, &m4_ty);
    let tile_ty = m_ty.with_shape(vec![f, th, tw]);
    let slices: Vec<String> = (0..x)
        .map(|k| {
            let one_ty = m_ty.with_shape(vec![1, f, th, tw]);
            let one = e.assign(format!(
                "tensor.extract_slice {m4}[{k}, 0, 0, 0] [1, {f}, {th}, {tw}] [1, 1, 1, 1] : {m4_ty} to {one_ty}"
            ));
            e.assign(format!("tensor.collapse_shape {one} [[0, 1], [2], [3]] : {one_ty} into {tile_ty}"))
        })
        .collect();
    // the m^2 outputs of every tile in one pass, each a contiguous slice of
    // stacked[a, b, f, i, j] = y[f, m i + a, m j + b], which bufferization
    // writes in place (all of them once `kernels::tag_multi_result_inits`
    // keeps the convolutions' results apart; before, a copy interleaved all
    // of them into [F, TH, m, m, TW] for the rows to read: resnet18 1 thread
    // 0.989-0.994 (ab, both orders), 2 threads far 0.988)
    let at = tiles.at();
    let inputs: Vec<(String, Ty, String)> = slices.iter().map(|s| (s.clone(), tile_ty.clone(), identity_map(3))).collect();
    let ys = elementwise_outputs(e, &inputs, &tile_ty, (s * s) as usize, |e, a| two_sided(e, a, at));
    let stacked_ty = m_ty.with_shape(vec![s, s, f, th, tw]);
    let mut stacked = empty(e, &stacked_ty);
    for (ab, y) in ys.iter().enumerate() {
        let (a, b) = (ab as i64 / s, ab as i64 % s);
        let one_ty = m_ty.with_shape(vec![1, 1, f, th, tw]);
        let one = e.assign(format!(
            "tensor.expand_shape {y} [[0, 1, 2], [3], [4]] output_shape [1, 1, {f}, {th}, {tw}] : {tile_ty} into {one_ty}"
        ));
        stacked = e.assign(format!(
            "tensor.insert_slice {one} into {stacked}[{a}, {b}, 0, 0, 0] [1, 1, {f}, {th}, {tw}] [1, 1, 1, 1, 1] : {one_ty} into {stacked_ty}"
        ));
    }
    // rows[f, i, a, j, b] = stacked[a, b, f, i, j] -> [F, m TH, m TW], + bias:
    // here rather than in the transform, whose operands are then all read
    // alike and which runs as one flat loop (rows of the tile grid, 28 for
    // a 56x56 output with F2, are no whole vectors: resnet18's transforms
    // took twice the time with the bias in)
    let rows_ty = m_ty.with_shape(vec![f, th, s, tw, s]);
    let init = empty(e, &rows_ty);
    let mut inputs = vec![(stacked, stacked_ty, "affine_map<(d0, d1, d2, d3, d4) -> (d2, d4, d0, d1, d3)>".to_string())];
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
    let full_ty = m_ty.with_shape(vec![f, s * th, s * tw]);
    let full = e.assign(format!("tensor.collapse_shape {rows} [[0], [1, 2], [3, 4]] : {rows_ty} into {full_ty}"));
    let (oh, ow) = (out.shape[2], out.shape[3]);
    let cut_ty = m_ty.with_shape(vec![f, oh, ow]);
    let cut = if (oh, ow) == (s * th, s * tw) {
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

/// `L X L^T` of the tile X in `args` (row-major, side `l[0].len()`): its
/// rows' transform (`X L^T`), then its columns' (`L (X L^T)`), one signed
/// sum per value; the results row-major, `L.len()` x `L.len()`.
fn two_sided(e: &mut Emitter, args: &[String], l: &[&[f64]]) -> Vec<String> {
    let n = l[0].len();
    let mut rows = Vec::with_capacity(n * l.len());
    for i in 0..n {
        for coefficients in l {
            let terms: Vec<(f64, usize)> = (0..n).map(|j| (coefficients[j], i * n + j)).filter(|(k, _)| *k != 0.0).collect();
            rows.push(signed_sum(e, args, &terms));
        }
    }
    let mut out = Vec::with_capacity(l.len() * l.len());
    for coefficients in l {
        for j in 0..l.len() {
            let terms: Vec<(f64, usize)> = (0..n).map(|i| (coefficients[i], i * l.len() + j)).filter(|(k, _)| *k != 0.0).collect();
            out.push(signed_sum(e, &rows, &terms));
        }
    }
    out
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

    /// `L X R^T` of an n x n tile, in f64.
    fn apply(l: &[&[f64]], x: &[f64], r: &[&[f64]]) -> Vec<f64> {
        let n = r[0].len();
        let mut out = Vec::new();
        for li in l {
            for rj in r {
                out.push((0..n * n).map(|ij| li[ij / n] * rj[ij % n] * x[ij]).sum());
            }
        }
        out
    }

    /// The transforms reproduce the direct 3x3 correlation of an n x n tile
    /// (in f64 but for the filter transform's f32 rounding: only the
    /// algebra is checked here; the op suite compares compiled
    /// convolutions with torch).
    #[test]
    fn transforms_compute_the_correlation() {
        for tiles in [Tiles::F2, Tiles::F4] {
            let (n, s) = (tiles.n() as usize, tiles.m() as usize);
            let d: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 23) as f64 / 7.0 - 1.5).collect();
            let g: Vec<f32> = (0..9).map(|i| ((i * 104729) % 17) as f32 / 5.0 - 1.7).collect();
            let u = filter_transform(&g, 1, 1, tiles);
            let v = apply(tiles.bt(), &d, tiles.bt());
            let m: Vec<f64> = u.iter().zip(&v).map(|(u, v)| *u as f64 * v).collect();
            let y = apply(tiles.at(), &m, tiles.at());
            for a in 0..s {
                for b in 0..s {
                    let direct: f64 = (0..9).map(|t| d[(a + t / 3) * n + b + t % 3] * g[t] as f64).sum();
                    let got = y[a * s + b];
                    assert!((got - direct).abs() < 1e-5, "{tiles:?}: y[{a}][{b}] = {got}, direct {direct}");
                }
            }
        }
    }

    #[test]
    fn large_3x3_stride_1_convolutions_only_f2_from_7x7_and_f4_from_28x28_outputs() {
        let t = |shape: &[i64]| Ty::new(shape.to_vec(), "f32");
        let (x, w, out) = (t(&[1, 64, 58, 58]), t(&[64, 64, 3, 3]), t(&[1, 64, 56, 56]));
        assert_eq!(choose(&x, &w, &[1, 1], &[1, 1], 1, &out), Some(Tiles::F4));
        assert_eq!(choose(&x, &w, &[2, 2], &[1, 1], 1, &out), None);
        // 16 input channels are enough, 8 are not; 16 output channels neither
        assert_eq!(choose(&t(&[1, 16, 58, 58]), &t(&[64, 16, 3, 3]), &[1, 1], &[1, 1], 1, &out), Some(Tiles::F4));
        assert_eq!(choose(&t(&[1, 8, 58, 58]), &t(&[64, 8, 3, 3]), &[1, 1], &[1, 1], 1, &out), None);
        assert_eq!(choose(&t(&[1, 64, 58, 58]), &t(&[16, 64, 3, 3]), &[1, 1], &[1, 1], 1, &t(&[1, 16, 56, 56])), None);
        let at_7 = choose(&t(&[1, 512, 9, 9]), &t(&[512, 512, 3, 3]), &[1, 1], &[1, 1], 1, &t(&[1, 512, 7, 7]));
        assert_eq!(at_7, Some(Tiles::F2));
        assert_eq!(choose(&t(&[1, 512, 8, 8]), &t(&[512, 512, 3, 3]), &[1, 1], &[1, 1], 1, &t(&[1, 512, 6, 6])), None);
        let at_14 = choose(&t(&[1, 256, 16, 16]), &t(&[256, 256, 3, 3]), &[1, 1], &[1, 1], 1, &t(&[1, 256, 14, 14]));
        assert_eq!(at_14, Some(Tiles::F2));
        let at_28 = choose(&t(&[1, 128, 30, 30]), &t(&[128, 128, 3, 3]), &[1, 1], &[1, 1], 1, &t(&[1, 128, 28, 28]));
        assert_eq!(at_28, Some(Tiles::F4));
    }

    #[test]
    fn tilings_are_known_by_their_elements() {
        assert_eq!(Tiles::with_elements(16), Some(Tiles::F2));
        assert_eq!(Tiles::with_elements(36), Some(Tiles::F4));
        assert_eq!(Tiles::with_elements(9), None);
    }
}
