//! Matrix products. A product by a matrix B whose columns come in whole
//! panels of [`PANEL`] (f32) reads B packed as `[N / PANEL, K, PANEL]`:
//! each panel's K rows are contiguous, so the micro-kernel walking one
//! panel down K streams consecutive cache lines (a weight is packed once at
//! compile time, see the compiler's `pack.rs`; any other B is packed by one
//! transposing copy per run, as MLAS does). Every other product becomes a
//! `linalg.matmul` (2-D, row-major operands). The optimizer tiles and
//! vectorizes both into FMA micro-kernels.

use super::elementwise::{dim_list, empty, filled, generic, map};
use super::scalar;
use super::shape::{pad_value, padded_ty, reshape_value, slice_dim, transpose_value};
use super::{AtenOp, Emitter, Operand};
use crate::types::Ty;

/// The columns of one packed panel of B: one 512-bit vector of f32 (two
/// 256-bit ones), the micro-kernel's tile width.
pub const PANEL: i64 = 16;

/// Whether `a [M, K] @ b [K, N]` into `out` reads B as packed panels: f32
/// throughout, N whole panels, and a real product (more than one row: one
/// row is a matrix-vector product; more than one step of K).
pub(super) fn reads_panels(m: i64, n: i64, k: i64, a: &Ty, b: &Ty, out: &Ty) -> bool {
    let f32 = |t: &Ty| t.elem == "f32";
    m > 1 && k > 1 && n > 0 && n % PANEL == 0 && f32(a) && f32(b) && f32(out)
}

/// `init + a @ b` with a: [M, K], b: [K, N], init: [M, N]: on packed panels
/// of b when [`reads_panels`], else a `linalg.matmul`.
pub fn product(e: &mut Emitter, a: &str, a_ty: &Ty, b: &str, b_ty: &Ty, init: &Init, out: &Ty) -> String {
    let (m, k, n) = (a_ty.shape[0], a_ty.shape[1], b_ty.shape[1]);
    if !reads_panels(m, n, k, a_ty, b_ty, out) {
        return matmul_ragged(e, a, a_ty, b, b_ty, init, out);
    }
    // [K, N] -> [K, N/P, P] -> [N/P, K, P]
    let split_ty = b_ty.with_shape(vec![k, n / PANEL, PANEL]);
    let split = e.assign(format!(
        "tensor.expand_shape {b} [[0], [1, 2]] output_shape [{k}, {}, {PANEL}] : {b_ty} into {split_ty}",
        n / PANEL
    ));
    let panels = transpose_value(e, &split, &split_ty, &[1, 0, 2]);
    panel_product(e, a, a_ty, &panels, &b_ty.with_shape(vec![n / PANEL, k, PANEL]), init, out)
}

/// `init + a @ w^T` with a: [M, K], w: [N, K] (a linear layer's weight),
/// init: [M, N]: on packed panels of w^T when [`reads_panels`], else a
/// `linalg.matmul` by the transposed weight.
pub fn product_by_transposed(e: &mut Emitter, a: &str, a_ty: &Ty, w: &str, w_ty: &Ty, init: &Init, out: &Ty) -> String {
    let (m, k, n) = (a_ty.shape[0], a_ty.shape[1], w_ty.shape[0]);
    let b_ty = w_ty.with_shape(vec![k, n]);
    if !reads_panels(m, n, k, a_ty, &b_ty, out) {
        let b = transpose_value(e, w, w_ty, &[1, 0]);
        return matmul_ragged(e, a, a_ty, &b, &b_ty, init, out);
    }
    // [N, K] -> [N/P, P, K] -> [N/P, K, P]
    let split_ty = w_ty.with_shape(vec![n / PANEL, PANEL, k]);
    let split = e.assign(format!(
        "tensor.expand_shape {w} [[0, 1], [2]] output_shape [{}, {PANEL}, {k}] : {w_ty} into {split_ty}",
        n / PANEL
    ));
    let panels = transpose_value(e, &split, &split_ty, &[0, 2, 1]);
    panel_product(e, a, a_ty, &panels, &w_ty.with_shape(vec![n / PANEL, k, PANEL]), init, out)
}

/// `init + a @ b` with b packed as `panels [N/P, K, P]`:
/// `out[m, j, p] += a[m, k] * panels[j, k, p]` over the output viewed as
/// `[M, N/P, P]`. The kernel strategy recognizes this generic by its maps.
pub(super) fn panel_product(e: &mut Emitter, a: &str, a_ty: &Ty, panels: &str, panels_ty: &Ty, init: &Init, out: &Ty) -> String {
    match rows_in_whole_tiles(out.shape[0]) {
        Some(main) => by_row_parts(e, a, a_ty, main, init, out, &|e, a, a_ty, init, out| panel_product_whole(e, a, a_ty, panels, panels_ty, init, out)),
        None => panel_product_whole(e, a, a_ty, panels, panels_ty, init, out),
    }
}

/// The rows of a product's register tiles are a divisor of its M (the
/// kernel strategy masks nothing): an M with no divisor from
/// [`FEWEST_TILE_ROWS`] to [`ROW_MULTIPLE`] (ViT's 197 tokens, a prime)
/// would be multiplied a row or a few at a time, each tile streaming all
/// of B (vit_b_16's MLP at 36 GFLOP/s in rows of 1). Such a product is
/// computed in two parts: the rows up to the last multiple of
/// [`ROW_MULTIPLE`], and the few rows past it. Returns the first part's
/// rows.
pub(super) fn rows_in_whole_tiles(m: i64) -> Option<i64> {
    let best_tile = (1..=ROW_MULTIPLE).rev().find(|t| m % t == 0).unwrap_or(1);
    (m > ROW_MULTIPLE && best_tile < FEWEST_TILE_ROWS).then_some(m - m % ROW_MULTIPLE)
}

/// The fewest rows of a register tile kept whole (see
/// [`rows_in_whole_tiles`]): 65 tokens (the zoo's HF ViT) in 64 + 1 rows
/// rather than tiles of 5 made it 0.89 of the time at 1 thread (ab); 49
/// (Swin's windows) in 48 + 1 rather than tiles of 7 made Swin 1-2% slower.
const FEWEST_TILE_ROWS: i64 = 6;

/// The multiple of rows the first part of a product split by rows has
/// (see [`rows_in_whole_tiles`]): register tiles of 8 or 12 rows with 32
/// vector registers, of 4 or 6 with 16.
const ROW_MULTIPLE: i64 = 8;

/// `init + a @ b` as two products, of a's rows `[0, main)` and
/// `[main, M)`, each `product(e, a_part, a_part_ty, init_part, part_ty)`,
/// in the same way as [`matmul_ragged`] puts its parts together.
#[allow(clippy::type_complexity)]
pub(super) fn by_row_parts(
    e: &mut Emitter,
    a: &str,
    a_ty: &Ty,
    main: i64,
    init: &Init,
    out: &Ty,
    product: &dyn Fn(&mut Emitter, &str, &Ty, &Init, &Ty) -> String,
) -> String {
    let (m, n) = (a_ty.shape[0], out.shape[1]);
    let mut result = match init {
        Init::Tensor(t) => t.to_string(),
        Init::PerPart(_) | Init::Shaped(_) => empty(e, out),
    };
    for (from, count) in [(0, main), (main, m - main)] {
        let (part_a, part_a_ty) = slice_dim(e, a, a_ty, 0, from, count, 1);
        let part_ty = out.with_shape(vec![count, n]);
        let part = match init {
            Init::Tensor(_) => {
                let (slot, _) = slice_dim(e, &result, out, 0, from, count, 1);
                product(e, &part_a, &part_a_ty, &Init::Tensor(&slot), &part_ty)
            }
            // a built init: the part's rows, from its first row on
            Init::PerPart(build) | Init::Shaped(build) => {
                let part_rows = |e: &mut Emitter, ty: &Ty, first: i64| build(e, ty, from + first);
                let part_init = if matches!(init, Init::PerPart(_)) { Init::PerPart(&part_rows) } else { Init::Shaped(&part_rows) };
                product(e, &part_a, &part_a_ty, &part_init, &part_ty)
            }
        };
        result = e.assign(format!("tensor.insert_slice {part} into {result}[{from}, 0] [{count}, {n}] [1, 1] : {part_ty} into {out}"));
    }
    result
}

/// [`panel_product`] in one part.
fn panel_product_whole(e: &mut Emitter, a: &str, a_ty: &Ty, panels: &str, panels_ty: &Ty, init: &Init, out: &Ty) -> String {
    let (m, n) = (out.shape[0], out.shape[1]);
    let out3 = out.with_shape(vec![m, n / PANEL, PANEL]);
    let init3 = match init {
        Init::Shaped(build) => build(e, &out3, 0),
        _ => {
            let init = init.whole(e, out);
            e.assign(format!(
                "tensor.expand_shape {init} [[0], [1, 2]] output_shape [{m}, {}, {PANEL}] : {out} into {out3}",
                n / PANEL
            ))
        }
    };
    let r = panel_product_into(e, a, a_ty, panels, panels_ty, &init3, &out3);
    e.assign(format!("tensor.collapse_shape {r} [[0], [1, 2]] : {out3} into {out}"))
}

/// `init3 + a @ b` with b packed as `panels [N/P, K, P]`, into `init3` of
/// the panels' shape `out3 = [M, N/P, P]` (the product of
/// [`panel_product`] without its reshapes).
pub(super) fn panel_product_into(e: &mut Emitter, a: &str, a_ty: &Ty, panels: &str, panels_ty: &Ty, init3: &str, out3: &Ty) -> String {
    product_generic(e, [(a, a_ty), (panels, panels_ty)], init3, out3, &PANEL_PRODUCT_MAPS)
}

/// The indexing maps of a product on packed panels, loops
/// `(m, panel, column in panel, k)`: a, panels, out.
pub const PANEL_PRODUCT_MAPS: [&str; 3] = [
    "affine_map<(d0, d1, d2, d3) -> (d0, d3)>",
    "affine_map<(d0, d1, d2, d3) -> (d1, d3, d2)>",
    "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>",
];

/// The most accumulators of a row-panel register tile (a panel's rows by
/// all its 16-column groups): 24 of the 32 AVX-512 registers, the rest for
/// the K step's loads of b.
pub const ROW_PANEL_ACCUMULATORS: i64 = 24;

/// The rows of one packed row panel of A (see [`product_on_row_panels`])
/// for an A of `m` rows, if it has whole panels, times `columns` columns of
/// b: the most of 16, 12 and 8 rows whose tile over every whole 16-column
/// group fits [`ROW_PANEL_ACCUMULATORS`] (48 columns: 8 rows), so that
/// each panel is read from memory once, in one sweep of K; else 16 or 12
/// (the groups then sweep the panel one after the other, from cache).
pub fn row_panel_rows(m: i64, columns: i64) -> Option<i64> {
    let groups = (columns / PANEL).max(1);
    let whole = |r: &i64| m % r == 0;
    [16, 12, 8].into_iter().filter(whole).find(|&r| row_panel_tile_spans_groups(r, groups)).or_else(|| [16, 12].into_iter().find(whole))
}

/// The most columns of a product computed on row panels of its weight.
const FEW_COLUMNS: i64 = 64;

/// Whether a product of an `m`-row weight by `cols` columns is computed on
/// row panels of the weight ([`product_on_row_panels`]): whole panels, and
/// few columns (at most [`FEW_COLUMNS`]: each row tile of the weight then
/// serves a few column tiles, so its first read from memory is most of
/// the kernel's wait).
pub fn row_panels_fit(m: i64, cols: i64) -> bool {
    row_panel_rows(m, cols).is_some() && (PANEL..=FEW_COLUMNS).contains(&cols)
}

/// Whether a register tile of a row panel of `rows` rows spans all its
/// `groups` 16-column groups: they fit [`ROW_PANEL_ACCUMULATORS`]. The
/// lowering picks the panels' rows by it, the kernel strategy the tile.
pub fn row_panel_tile_spans_groups(rows: i64, groups: i64) -> bool {
    rows * groups <= ROW_PANEL_ACCUMULATORS
}

/// `start[m] + a @ b` with a: [(B,) M, K] read as row panels
/// `[(B,) M/R, K, R]` (R = [`row_panel_rows`]), b: [(B,) K, N] (one
/// optional batch dim), `start` a per-row f32 value of shape [M] (a
/// convolution's bias; not batched) or zeros; f32 throughout. For products
/// of few columns by a weight: each K step of the micro-kernel broadcasts
/// its R elements of A from one contiguous chunk, so the weight, read once
/// from memory, streams through consecutive cache lines instead of R
/// streams a row apart (mobilenet_v2's 7x7 stage, 48 + 1 columns: the
/// micro-kernel waited on those loads; Winograd's products, batched,
/// likewise). The columns past the last multiple of [`PANEL`] are computed
/// with R as the vector dim (`[(B,) M/R, rest, R]`, broadcasting b): the
/// weight is not kept in its row-major form for dot products (see
/// [`matmul_ragged`]).
pub fn product_on_row_panels(e: &mut Emitter, a: &str, a_ty: &Ty, b: &str, b_ty: &Ty, start: Option<(&str, &Ty)>, out: &Ty) -> String {
    let rank = out.rank();
    let lead: Vec<i64> = out.shape[..rank - 2].to_vec();
    assert!(lead.is_empty() || start.is_none(), "a batched product on row panels starts from zeros");
    let (m, k, n) = (a_ty.shape[rank - 2], a_ty.shape[rank - 1], b_ty.shape[rank - 1]);
    let r = row_panel_rows(m, n).expect("whole row panels");
    let p = m / r;
    // shapes, reassociations, permutations and slices behind the batch dims
    let nb = lead.len();
    let shaped = |t: &Ty, dims: &[i64]| t.with_shape(lead.iter().chain(dims).copied().collect());
    // a reassociation: each batch dim alone, then groups of `sizes` dims
    let groups_of = |sizes: &[usize]| -> String {
        let mut next = 0;
        let groups: Vec<String> = std::iter::repeat_n(1, nb)
            .chain(sizes.iter().copied())
            .map(|size| {
                let dims: Vec<String> = (next..next + size).map(|d| d.to_string()).collect();
                next += size;
                format!("[{}]", dims.join(", "))
            })
            .collect();
        format!("[{}]", groups.join(", "))
    };
    let swap_last: Vec<usize> = (0..nb).chain([nb, nb + 2, nb + 1]).collect();
    let (product_maps, rest_maps) = if nb == 0 {
        (&ROW_PANEL_PRODUCT_MAPS, &ROW_PANEL_REST_MAPS)
    } else {
        (&BATCHED_ROW_PANEL_PRODUCT_MAPS, &BATCHED_ROW_PANEL_REST_MAPS)
    };
    // [M, K] -> [M/R, R, K] -> [M/R, K, R]: folded into the stored weight
    let split_ty = shaped(a_ty, &[p, r, k]);
    let split = e.assign(format!("tensor.expand_shape {a} {} output_shape [{}] : {a_ty} into {split_ty}", groups_of(&[2, 1]), dims_text(&split_ty)));
    let panels = transpose_value(e, &split, &split_ty, &swap_last);
    let panels = (panels, shaped(a_ty, &[p, k, r]));
    let start = start.map(|(s, s_ty)| (reshape_value(e, s, s_ty, &s_ty.with_shape(vec![p, r])), s_ty.with_shape(vec![p, r])));
    let rest = n % PANEL;
    let main = n - rest;
    let columns = |e: &mut Emitter, from: i64, count: i64| {
        if count == n {
            return b.to_string();
        }
        let ty = shaped(b_ty, &[k, count]);
        e.assign(format!("tensor.extract_slice {b}{} : {b_ty} to {ty}", columns_window(&lead, k, from, count)))
    };
    // The main part is computed in its slot of the result, seen in the
    // part's shape (an extract/insert pair around views, which bufferizes
    // in place); the last columns apart, then copied into place (one
    // column: M floats; more: a copy that transposes). Both parts are
    // inserted after both products: the products are then independent, and
    // the matmul strategy fuses their block loops (`aotc::kernels::matmul`),
    // so the last columns read each block of panels from cache right after
    // the main product. (A slot of the result for the last column would
    // not save the copy: bufferization sees it overlap the main part's
    // insert.)
    let mut result = empty(e, out);
    let mut main_part = None;
    if main > 0 {
        // the columns in groups of one vector: b [K, G, 16], out [M/R, R, G, 16]
        let groups = main / PANEL;
        let cols = columns(e, 0, main);
        let cols_ty = shaped(b_ty, &[k, groups, PANEL]);
        let cols = e.assign(format!(
            "tensor.expand_shape {cols} {} output_shape [{}] : {} into {cols_ty}",
            groups_of(&[1, 2]),
            dims_text(&cols_ty),
            shaped(b_ty, &[k, main])
        ));
        let (part, part2) = (shaped(out, &[p, r, groups, PANEL]), shaped(out, &[m, main]));
        let slot = e.assign(format!("tensor.extract_slice {result}{} : {out} to {part2}", columns_window(&lead, m, 0, main)));
        let slot = e.assign(format!("tensor.expand_shape {slot} {} output_shape [{}] : {part2} into {part}", groups_of(&[2, 2]), dims_text(&part)));
        let init = row_start(e, start.as_ref(), &slot, &part, "(d0, d1)");
        main_part = Some((product_generic(e, [(&panels.0, &panels.1), (&cols, &cols_ty)], &init, &part, product_maps), part, part2));
    }
    let mut insert_main = |e: &mut Emitter, result: &str| match main_part.take() {
        Some((product, part, part2)) => {
            let product = e.assign(format!("tensor.collapse_shape {product} {} : {part} into {part2}", groups_of(&[2, 2])));
            e.assign(format!("tensor.insert_slice {product} into {result}{} : {part2} into {out}", columns_window(&lead, m, 0, main)))
        }
        None => result.to_string(),
    };
    if rest > 0 {
        let cols = (columns(e, main, rest), shaped(b_ty, &[k, rest]));
        let (part, part2) = (shaped(out, &[p, rest, r]), shaped(out, &[m, rest]));
        // one column: its M rows are [M/R, 1, R] as they are
        let column = shaped(out, &[m]);
        let slot = empty(e, &part);
        let init = row_start(e, start.as_ref(), &slot, &part, "(d0, d2)");
        let product = product_generic(e, [(&cols.0, &cols.1), (&panels.0, &panels.1)], &init, &part, rest_maps);
        result = insert_main(e, &result);
        result = if rest == 1 {
            let back = e.assign(format!("tensor.collapse_shape {product} {} : {part} into {column}", groups_of(&[3])));
            e.assign(format!("tensor.insert_slice {back} into {result}{} : {column} into {out}", columns_window(&lead, m, main, 1)))
        } else {
            // [M/R, rest, R] -> [M/R, R, rest] -> [M, rest]
            let part3 = shaped(out, &[p, r, rest]);
            let back = transpose_value(e, &product, &part, &swap_last);
            let back = e.assign(format!("tensor.collapse_shape {back} {} : {part3} into {part2}", groups_of(&[2, 1])));
            e.assign(format!("tensor.insert_slice {back} into {result}{} : {part2} into {out}", columns_window(&lead, m, main, rest)))
        };
    }
    insert_main(e, &result)
}

/// The offsets, sizes and strides of a slice of `rows` rows and `cols`
/// columns from column `from` on, behind the batch dims `lead` (whole).
fn columns_window(lead: &[i64], rows: i64, from: i64, cols: i64) -> String {
    let join = |v: Vec<i64>| v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let offsets = lead.iter().map(|_| 0).chain([0, from]).collect();
    let sizes = lead.iter().copied().chain([rows, cols]).collect();
    format!("[{}] [{}] [{}]", join(offsets), join(sizes), vec!["1"; lead.len() + 2].join(", "))
}

/// A type's dims as `output_shape` lists them.
fn dims_text(t: &Ty) -> String {
    t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// The accumulators of one part of [`product_on_row_panels`], written
/// into `slot` (of type `part`): `start` ([M/R, R]) read through
/// `start_map` (the part's dims that are the panel and the row in it), or
/// zeros.
fn row_start(e: &mut Emitter, start: Option<&(String, Ty)>, slot: &str, part: &Ty, start_map: &str) -> String {
    match start {
        None => {
            let zero = e.assign("arith.constant 0.0 : f32".to_string());
            e.assign(format!("linalg.fill ins({zero} : f32) outs({slot} : {part}) -> {part}"))
        }
        Some((s, s_ty)) => {
            let rank = part.rank();
            let map = format!("affine_map<({}) -> {start_map}>", dim_list(rank));
            generic(e, &[(s.clone(), s_ty.clone(), map)], slot, part, None, &vec!["parallel"; rank], "", |_, v| v[0].clone())
        }
    }
}

/// `init += inputs[0] * inputs[1]` (f32) over parallel loops and a last
/// reduction loop, the two inputs and the init read through `maps`: the
/// forms of products on packed panels that the kernel strategy knows by
/// their maps.
fn product_generic(e: &mut Emitter, inputs: [(&str, &Ty); 2], init: &str, out: &Ty, maps: &[&str; 3]) -> String {
    let mut iterators = vec!["parallel"; out.rank()];
    iterators.push("reduction");
    generic(
        e,
        &[(inputs[0].0.to_string(), inputs[0].1.clone(), maps[0].to_string()), (inputs[1].0.to_string(), inputs[1].1.clone(), maps[1].to_string())],
        init,
        out,
        Some(maps[2].to_string()),
        &iterators,
        "",
        |e, v| {
            let product = e.assign(format!("arith.mulf {}, {} : f32", v[0], v[1]));
            e.assign(format!("arith.addf {}, {product} : f32", v[2]))
        },
    )
}

/// The indexing maps of a product on row panels of A, loops
/// `(panel, row in panel, column group, column in group, k)`: panels,
/// b `[K, G, 16]`, out `[M/R, R, G, 16]`. The groups are a dim of their
/// own so that a register tile can span all of them as 16-wide vectors.
pub const ROW_PANEL_PRODUCT_MAPS: [&str; 3] = [
    "affine_map<(d0, d1, d2, d3, d4) -> (d0, d4, d1)>",
    "affine_map<(d0, d1, d2, d3, d4) -> (d4, d2, d3)>",
    "affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>",
];

/// The same for the last few columns, loops `(panel, column, row in
/// panel, k)`: b, panels, out `[M/R, rest, R]`. The panel's rows are
/// innermost in the output and the second operand's parallel dim, so they
/// are the vector dim of each FMA (one per column and step of K).
pub const ROW_PANEL_REST_MAPS: [&str; 3] = [
    "affine_map<(d0, d1, d2, d3) -> (d3, d1)>",
    "affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>",
    "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>",
];

/// [`ROW_PANEL_PRODUCT_MAPS`] behind a batch dim: loops `(batch, panel,
/// row in panel, column group, column in group, k)`.
pub const BATCHED_ROW_PANEL_PRODUCT_MAPS: [&str; 3] = [
    "affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d5, d2)>",
    "affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d5, d3, d4)>",
    "affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4)>",
];

/// [`ROW_PANEL_REST_MAPS`] behind a batch dim: loops `(batch, panel,
/// column, row in panel, k)`.
pub const BATCHED_ROW_PANEL_REST_MAPS: [&str; 3] = [
    "affine_map<(d0, d1, d2, d3, d4) -> (d0, d4, d2)>",
    "affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d3)>",
    "affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>",
];

/// The accumulator a product starts from.
pub enum Init<'a> {
    /// A tensor of the product's type: a product split in parts computes
    /// each part in its slice of it, in place.
    Tensor(&'a str),
    /// Built for each part, of the part's type (zeros, a bias broadcast
    /// along rows: the same whichever columns): a product split in parts
    /// builds each part's own, so that every part's micro-kernel computes
    /// its init in its register tiles instead of a kernel filling the whole
    /// accumulator first (at 2 threads that kernel splits the rows while
    /// the product splits the columns, and the product reads what the other
    /// core wrote). The builder gets the part's type and the first of the
    /// product's rows it spans (a product split by rows builds each part's
    /// rows).
    PerPart(&'a dyn Fn(&mut Emitter, &Ty, i64) -> String),
    /// Built once for the whole product, in the shape it computes its
    /// result in (`[M, N]`, or `[M, N/P, P]` on packed panels): a bias
    /// along the columns, which parts split by columns cannot share. Built
    /// in the panels' shape, it is the product's own init, which the
    /// micro-kernel computes in its register tiles; built as `[M, N]` and
    /// reshaped, it would be a kernel of its own that fills the whole
    /// accumulator first (BERT's linear layers: a pass over every output
    /// before each product). The builder gets the type and the first of
    /// the product's rows it spans, as [`Init::PerPart`]'s.
    Shaped(&'a dyn Fn(&mut Emitter, &Ty, i64) -> String),
}

impl Init<'_> {
    /// The whole accumulator of type `out`.
    pub fn whole(&self, e: &mut Emitter, out: &Ty) -> String {
        match self {
            Init::Tensor(t) => t.to_string(),
            Init::PerPart(build) | Init::Shaped(build) => build(e, out, 0),
        }
    }
}

/// `init + a @ b` with a: [(B,) M, K], b: [(B,) K, N], init: [(B,) M, N]
/// (one optional batch dim): a `linalg.matmul` (`linalg.batch_matmul`)
/// over the columns up to the last multiple of [`PANEL`], and the few
/// columns past it as dot products of a's rows with those columns copied
/// into rows (`init + a @ (b^T)^T`, both read along K). The micro-kernel
/// tile for such a remainder is a column or a few: a walk down A's columns
/// at 4 GFLOP/s, 12% of resnet18's time for its 49- and 196-column
/// products. When K is not a multiple of 8 the dot products would be
/// scalar: from an init built per part the last columns are then a product
/// of their own, from one init tensor the whole is one product (as it is
/// when the types are not f32).
pub fn matmul_ragged(e: &mut Emitter, a: &str, a_ty: &Ty, b: &str, b_ty: &Ty, init: &Init, out: &Ty) -> String {
    let rank = out.rank();
    let (k, n) = (b_ty.shape[rank - 2], b_ty.shape[rank - 1]);
    let rest = n % PANEL;
    let f32 = [a_ty, b_ty, out].iter().all(|t| t.elem == "f32");
    let batched = rank == 3;
    let plain = |e: &mut Emitter, b: &str, b_ty: &Ty, init: &str, out: &Ty| {
        let op = if batched { "linalg.batch_matmul" } else { "linalg.matmul" };
        e.assign(format!("{op} ins({a}, {b} : {a_ty}, {b_ty}) outs({init} : {out}) -> {out}"))
    };
    let m = out.shape[rank - 2];
    if n == 1 && !batched && m > 1 && k > 1 && f32 {
        return matrix_times_column(e, a, a_ty, b, b_ty, init, out);
    }
    if let Some(main) = rows_in_whole_tiles(m).filter(|_| !batched) {
        // (each part's rows then have a divisor of 6 to 8, or are fewer)
        return by_row_parts(e, a, a_ty, main, init, out, &|e, a, a_ty, init, out| matmul_ragged(e, a, a_ty, b, b_ty, init, out));
    }
    if rest == 0 || n < PANEL || k == 0 || !f32 || (k % 8 != 0 && !matches!(init, Init::PerPart(_))) {
        let init = init.whole(e, out);
        return plain(e, b, b_ty, &init, out);
    }
    let main = n - rest;
    let lead: Vec<i64> = out.shape[..rank - 2].to_vec();
    let part_ty = |x_ty: &Ty, rows: i64, cols: i64| x_ty.with_shape(lead.iter().copied().chain([rows, cols]).collect());
    let window = |rows: i64, from: i64, cols: i64| columns_window(&lead, rows, from, cols);
    let slice = |e: &mut Emitter, x: &str, x_ty: &Ty, rows: i64, from: i64, cols: i64| -> (String, Ty) {
        let ty = part_ty(x_ty, rows, cols);
        (e.assign(format!("tensor.extract_slice {x}{} : {x_ty} to {ty}", window(rows, from, cols))), ty)
    };
    let insert = |e: &mut Emitter, part: &str, part_ty: &Ty, into: &str, from: i64| {
        let cols = part_ty.shape[rank - 1];
        e.assign(format!("tensor.insert_slice {part} into {into}{} : {part_ty} into {out}", window(m, from, cols)))
    };
    let (b_rest, b_rest_ty) = slice(e, b, b_ty, k, main, rest);
    // the last columns copied into rows, for their dot products; with K no
    // multiple of 8 those would be scalar, and the columns are a product
    // of their own instead (only from a per-part init, see above)
    let rows = (k % 8 == 0).then(|| {
        let perm: Vec<usize> = if batched { vec![0, 2, 1] } else { vec![1, 0] };
        let rows = transpose_value(e, &b_rest, &b_rest_ty, &perm);
        (rows, b_ty.with_shape(lead.iter().copied().chain([rest, k]).collect()))
    });
    let last_columns = |e: &mut Emitter, init: &str, init_ty: &Ty| match &rows {
        Some((rows, rows_ty)) => dot_products(e, a, a_ty, rows, rows_ty, init, init_ty),
        None => plain(e, &b_rest, &b_rest_ty, init, init_ty),
    };
    let (b_main, b_main_ty) = slice(e, b, b_ty, k, 0, main);
    match init {
        // Each part is computed in its slice of the accumulator and
        // inserted back before the other part reads it: an extract/insert
        // pair with no read of the whole between, which bufferizes in place.
        Init::Tensor(_) | Init::Shaped(_) => {
            let init = &init.whole(e, out);
            let (init_rest, init_rest_ty) = slice(e, init, out, m, main, rest);
            let last = last_columns(e, &init_rest, &init_rest_ty);
            let with_rest = insert(e, &last, &init_rest_ty, init, main);
            let (init_main, init_main_ty) = slice(e, &with_rest, out, m, 0, main);
            let product = plain(e, &b_main, &b_main_ty, &init_main, &init_main_ty);
            insert(e, &product, &init_main_ty, &with_rest, 0)
        }
        // Each part from its own init, inserted into an empty result:
        // bufferization computes each part in its slice of the result
        // (`eliminate-empty-tensors`), provided the result it is inserted
        // into is defined before the part's computation starts. Each
        // part's register tiles then make its init (squeezenet's stem, K =
        // 27 over 12321 columns, as one product that the matmul strategy
        // splits had its bias a kernel of its own).
        Init::PerPart(build) => {
            let result = empty(e, out);
            let main_ty = part_ty(out, m, main);
            let init_main = build(e, &main_ty, 0);
            let product = plain(e, &b_main, &b_main_ty, &init_main, &main_ty);
            let with_main = insert(e, &product, &main_ty, &result, 0);
            let rest_ty = part_ty(out, m, rest);
            let init_rest = build(e, &rest_ty, 0);
            let last = last_columns(e, &init_rest, &rest_ty);
            insert(e, &last, &rest_ty, &with_main, main)
        }
    }
}

/// `init[.., m, j] + sum_k a[.., m, k] * rows[.., j, k]` (f32, one optional
/// batch dim): a reduction along the contiguous dim of both operands.
fn dot_products(e: &mut Emitter, a: &str, a_ty: &Ty, rows: &str, rows_ty: &Ty, init: &str, out: &Ty) -> String {
    let (dims, a_map, rows_map, out_map, iterators) = if out.rank() == 3 {
        ("d0, d1, d2, d3", "(d0, d1, d3)", "(d0, d2, d3)", "(d0, d1, d2)", vec!["parallel", "parallel", "parallel", "reduction"])
    } else {
        ("d0, d1, d2", "(d0, d2)", "(d1, d2)", "(d0, d1)", vec!["parallel", "parallel", "reduction"])
    };
    generic(
        e,
        &[
            (a.to_string(), a_ty.clone(), format!("affine_map<({dims}) -> {a_map}>")),
            (rows.to_string(), rows_ty.clone(), format!("affine_map<({dims}) -> {rows_map}>")),
        ],
        init,
        out,
        Some(format!("affine_map<({dims}) -> {out_map}>")),
        &iterators,
        "",
        |e, v| {
            let p = e.assign(format!("arith.mulf {}, {} : f32", v[0], v[1]));
            e.assign(format!("arith.addf {}, {p} : f32", v[2]))
        },
    )
}

/// The accumulator a product starts from: `bias` broadcast to `out`
/// (converted to its element type), or zeros.
pub fn initial_accumulator(e: &mut Emitter, bias: Option<&Operand>, out: &Ty) -> String {
    match bias {
        None => filled(e, out, if out.is_float() { "0.0" } else { "0" }),
        Some(b) => {
            let (from, to) = (b.ty.elem.clone(), out.elem.clone());
            map(e, &[(&b.ssa, &b.ty)], out, |e, a| scalar::cast(e, &a[0], &from, &to))
        }
    }
}

/// A product's accumulator from `bias` (or zeros) broadcast to it, as
/// `[M, N]` or as a panel product's `[M, N/P, P]` ([`Init::Shaped`]). The
/// bias broadcasts to `[M, N]` (a linear layer's [N], addmm's [N], [1, N],
/// [M, 1], [M, N], a scalar); for the panels' shape its last dim is split
/// like N (or, of size 1, into two of size 1). `ty` spans the product's
/// rows from `first_row` on (a part of a product split by rows).
pub fn column_bias(e: &mut Emitter, bias: Option<&Operand>, ty: &Ty, first_row: i64) -> String {
    let rows = bias.map(|b| bias_rows(e, b, first_row, ty.shape[0]));
    let bias = rows.as_ref();
    let Some(b) = bias.filter(|b| b.ty.rank() > 0 && ty.rank() == 3) else {
        return initial_accumulator(e, bias, ty);
    };
    let (lead, last) = b.ty.shape.split_at(b.ty.rank() - 1);
    let split = if last[0] == 1 { [1, 1] } else { [ty.shape[1], ty.shape[2]] };
    let split_ty = b.ty.with_shape(lead.iter().copied().chain(split).collect());
    let split = Operand { ssa: reshape_value(e, &b.ssa, &b.ty, &split_ty), ty: split_ty, arg: b.arg.clone() };
    initial_accumulator(e, Some(&split), ty)
}

/// The rows `[first, first + count)` of a bias with a dim of rows (`[M, 1]`,
/// `[M, N]`); any other bias as it is.
fn bias_rows(e: &mut Emitter, b: &Operand, first: i64, count: i64) -> Operand {
    if b.ty.rank() < 2 || b.ty.shape[0] == 1 {
        return b.clone();
    }
    first_dim_slice(e, b, first, count)
}

/// The operand `x[first .. first + count]` along its first dim
/// ([`slice_dim`]).
pub(super) fn first_dim_slice(e: &mut Emitter, x: &Operand, first: i64, count: i64) -> Operand {
    let (ssa, ty) = slice_dim(e, &x.ssa, &x.ty, 0, first, count, 1);
    Operand { ssa, ty, arg: x.arg.clone() }
}

/// linear(input [..., K], weight [N, K], bias [N]?) = input @ weight.T + bias
pub fn linear(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (x, w) = (op.input("input")?, op.input("weight")?);
    let out = op.result();
    let k = *x.ty.shape.last().ok_or("linear: input must have at least one dim")?;
    let m: i64 = x.ty.shape[..x.ty.rank() - 1].iter().product();
    let n = if w.ty.rank() == 2 { w.ty.shape[0] } else { 1 };
    if w.ty.shape.last() != Some(&k) {
        return Err(format!("{}: input {} and weight {} do not match", op.name, x.ty, w.ty));
    }
    let mut shape = x.ty.shape[..x.ty.rank() - 1].to_vec();
    if w.ty.rank() == 2 {
        shape.push(n);
    }
    op.expect_shape(0, &shape)?;
    let a_ty = x.ty.with_shape(vec![m, k]);
    let a = reshape_value(e, &x.ssa, &x.ty, &a_ty);
    let w2_ty = w.ty.with_shape(vec![n, k]);
    let w2 = reshape_value(e, &w.ssa, &w.ty, &w2_ty);
    // (K a multiple of 8: rows the reduction strategy vectorizes)
    if m == 1 && n > 1 && k % 8 == 0 && out.is_float() && x.ty.elem == w.ty.elem && x.ty.elem == out.elem {
        let y_ty = out.with_shape(vec![n]);
        let init = initial_accumulator(e, op.opt_input("bias"), &y_ty);
        let y = row_dot_products(e, &a, &a_ty, &w2, &w2_ty, &init, &y_ty);
        return Ok(vec![reshape_value(e, &y, &y_ty, out)]);
    }
    let mm_ty = out.with_shape(vec![m, n]);
    let bias = op.opt_input("bias");
    if let Some(padded) = panels_padded(m, n, k, &a_ty, &w2_ty, out) {
        let mm = padded_columns_product(e, &a, &a_ty, &w2, &w2_ty, bias, padded, &mm_ty);
        return Ok(vec![reshape_value(e, &mm, &mm_ty, out)]);
    }
    let init = |e: &mut Emitter, ty: &Ty, first_row: i64| column_bias(e, bias, ty, first_row);
    let mm = product_by_transposed(e, &a, &a_ty, &w2, &w2_ty, &Init::Shaped(&init), &mm_ty);
    Ok(vec![reshape_value(e, &mm, &mm_ty, out)])
}

/// The fewest columns of a linear layer whose columns are no whole number
/// of panels that is multiplied on panels of its weight padded with zero
/// rows: a vocabulary projection (GPT-2's 50257 tokens) is 1.7x as fast on
/// panels as on the row-major transposed weight, and the zero columns cost
/// at most 15 of 256. Narrower layers keep their last columns apart
/// ([`matmul_ragged`]).
const PADDED_PANELS_FROM: i64 = 256;

/// The columns a linear layer `a [M, K] @ w^T` with `w [N, K]` is computed
/// in on zero-padded panels of w (see [`PADDED_PANELS_FROM`]), if it is.
fn panels_padded(m: i64, n: i64, k: i64, a_ty: &Ty, w_ty: &Ty, out: &Ty) -> Option<i64> {
    let padded = (n + PANEL - 1) / PANEL * PANEL;
    let b_ty = w_ty.with_shape(vec![k, padded]);
    (n % PANEL != 0 && n >= PADDED_PANELS_FROM && reads_panels(m, padded, k, a_ty, &b_ty, out)).then_some(padded)
}

/// `a @ w^T + bias` for `w [N, K]` computed on w's rows padded with zeros
/// to `padded` (and the bias likewise): a product of `padded` columns, of
/// which the first N are the result (a view). A weight's padding is folded
/// into its stored layout with the rest of the packing (the compiler's
/// `pack.rs`).
#[allow(clippy::too_many_arguments)]
fn padded_columns_product(e: &mut Emitter, a: &str, a_ty: &Ty, w: &str, w_ty: &Ty, bias: Option<&Operand>, padded: i64, out: &Ty) -> String {
    let (m, n, k) = (out.shape[0], w_ty.shape[0], w_ty.shape[1]);
    let w_padded = pad_value(e, w, w_ty, &[0, 0], &[padded - n, 0], "0.0");
    let w_padded_ty = w_ty.with_shape(vec![padded, k]);
    let bias = bias.map(|b| {
        let at_end: Vec<i64> = b.ty.shape.iter().map(|&d| if d == n { padded - n } else { 0 }).collect();
        let zeros = vec![0; b.ty.rank()];
        let ty = padded_ty(&b.ty, &zeros, &at_end);
        Operand { ssa: pad_value(e, &b.ssa, &b.ty, &zeros, &at_end, "0.0"), ty, arg: b.arg.clone() }
    });
    let init = |e: &mut Emitter, ty: &Ty, first_row: i64| column_bias(e, bias.as_ref(), ty, first_row);
    let product_ty = out.with_shape(vec![m, padded]);
    let product = product_by_transposed(e, a, a_ty, &w_padded, &w_padded_ty, &Init::Shaped(&init), &product_ty);
    e.assign(format!("tensor.extract_slice {product}[0, 0] [{m}, {n}] [1, 1] : {product_ty} to {out}"))
}

/// `init + a @ b` for a b of one column ([K, 1]: the 1x1 convolutions of a
/// squeeze-and-excite block on its pooled channels) as the dot products of
/// a's rows with it ([`row_dot_products`], b read as one row): a matmul
/// would fill 1 of the 16 columns of each of its column panels
/// (mobilenet_v3_small's 576 -> 144 took 24 us, 14 GB/s of weights).
fn matrix_times_column(e: &mut Emitter, a: &str, a_ty: &Ty, b: &str, b_ty: &Ty, init: &Init, out: &Ty) -> String {
    let (m, k) = (a_ty.shape[0], a_ty.shape[1]);
    let row_ty = b_ty.with_shape(vec![1, k]);
    let row = reshape_value(e, b, b_ty, &row_ty);
    let y_ty = out.with_shape(vec![m]);
    let init = init.whole(e, out);
    let init = reshape_value(e, &init, out, &y_ty);
    let y = row_dot_products(e, &row, &row_ty, a, a_ty, &init, &y_ty);
    reshape_value(e, &y, &y_ty, out)
}

/// One row times the transposed weight (a matrix-vector product):
/// `y[n] = init[n] + sum_k a[0, k] * w[n, k]`, read along the weight's
/// stored rows. As a matmul the row would walk the weight's columns, one
/// cache line per element of K (mobilenet_v2's 1280 -> 1000 classifier ran
/// at 3 GFLOP/s); as a reduction along K both operands are contiguous and
/// the reduction strategy vectorizes it.
fn row_dot_products(e: &mut Emitter, a: &str, a_ty: &Ty, w: &str, w_ty: &Ty, init: &str, out: &Ty) -> String {
    let elem = crate::types::mlir_elem(&out.elem);
    generic(
        e,
        &[
            (a.to_string(), a_ty.clone(), "affine_map<(d0, d1) -> (0, d1)>".to_string()),
            (w.to_string(), w_ty.clone(), "affine_map<(d0, d1) -> (d0, d1)>".to_string()),
        ],
        init,
        out,
        Some("affine_map<(d0, d1) -> (d0)>".to_string()),
        &["parallel", "reduction"],
        "",
        |e, v| {
            let product = e.assign(format!("arith.mulf {}, {} : {elem}", v[0], v[1]));
            e.assign(format!("arith.addf {}, {product} : {elem}", v[2]))
        },
    )
}

/// addmm(self, mat1, mat2, beta=1, alpha=1) = beta * self + alpha * (mat1 @ mat2)
pub fn addmm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (bias, a, b) = (op.input("self")?, op.input("mat1")?, op.input("mat2")?);
    check_product(op, &a.ty, &b.ty)?;
    let (beta, alpha) = (op.float("beta", 1.0)?, op.float("alpha", 1.0)?);
    let out = op.result().clone();
    if beta == 0.0 {
        // torch ignores self when beta is 0 (NaN and inf in it do not propagate)
        let zeros = initial_accumulator(e, None, &out);
        let mm = product(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &Init::Tensor(&zeros), &out);
        return Ok(vec![scaled_by(e, &mm, &out, alpha)]);
    }
    if beta == 1.0 && alpha == 1.0 {
        let init = |e: &mut Emitter, ty: &Ty, first_row: i64| column_bias(e, Some(bias), ty, first_row);
        return Ok(vec![product(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &Init::Shaped(&init), &out)]);
    }
    let zeros = initial_accumulator(e, None, &out);
    let mm = product(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &Init::Tensor(&zeros), &out);
    let elem = out.elem.clone();
    let bias_elem = bias.ty.elem.clone();
    let r = map(e, &[(&bias.ssa, &bias.ty), (&mm, &out)], &out, |e, v| {
        let s = scalar::cast(e, &v[0], &bias_elem, &elem);
        let (kb, ka) = (scalar::constant(e, beta, &elem), scalar::constant(e, alpha, &elem));
        let s = scalar::mul(e, &s, &kb, &elem);
        let p = scalar::mul(e, &v[1], &ka, &elem);
        scalar::add(e, &s, &p, &elem)
    });
    Ok(vec![r])
}

/// Checks `a [M, K] @ b [K, N]` against the declared result.
fn check_product(op: &AtenOp, a: &Ty, b: &Ty) -> Result<(), String> {
    if a.rank() != 2 || b.rank() != 2 || a.shape[1] != b.shape[0] {
        return Err(format!("{}: cannot multiply {a} by {b}", op.name));
    }
    op.expect_shape(0, &[a.shape[0], b.shape[1]])
}

/// mm(self [M, K], mat2 [K, N])
pub fn mm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (a, b) = (op.input("self")?, op.input("mat2")?);
    check_product(op, &a.ty, &b.ty)?;
    let out = op.result().clone();
    let init = initial_accumulator(e, None, &out);
    Ok(vec![product(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &Init::Tensor(&init), &out)])
}

/// `a @ b` for a: [.., M, K], b: [.., K, N] with broadcast batch dims, as
/// one `linalg.batch_matmul` (or a plain matmul when b has no batch and a's
/// batch folds into M).
pub fn batched_matmul(e: &mut Emitter, a: &str, a_ty: &Ty, b: &str, b_ty: &Ty, out: &Ty) -> String {
    let (ra, rb) = (a_ty.rank(), b_ty.rank());
    let (m, k) = (a_ty.shape[ra - 2], a_ty.shape[ra - 1]);
    let n = b_ty.shape[rb - 1];
    let acc_elem = out.elem.clone();
    let a = super::elementwise::convert(e, a, a_ty, &acc_elem);
    let b = super::elementwise::convert(e, b, b_ty, &acc_elem);
    let (a_ty, b_ty) = (a_ty.with_elem(&acc_elem), b_ty.with_elem(&acc_elem));
    if rb == 2 {
        let rows: i64 = a_ty.shape[..ra - 1].iter().product();
        let a2_ty = a_ty.with_shape(vec![rows, k]);
        let a2 = reshape_value(e, &a, &a_ty, &a2_ty);
        let mm_ty = out.with_shape(vec![rows, n]);
        let init = initial_accumulator(e, None, &mm_ty);
        let mm = product(e, &a2, &a2_ty, &b, &b_ty, &Init::Tensor(&init), &mm_ty);
        return reshape_value(e, &mm, &mm_ty, out);
    }
    // broadcast both to the output's batch dims, then flatten them
    let batch: Vec<i64> = out.shape[..out.rank() - 2].to_vec();
    let nb: i64 = batch.iter().product();
    let full = |shape_tail: [i64; 2]| {
        let mut s = batch.clone();
        s.extend(shape_tail);
        s
    };
    let af_ty = a_ty.with_shape(full([m, k]));
    let bf_ty = b_ty.with_shape(full([k, n]));
    let af = if af_ty.shape == a_ty.shape { a } else { map(e, &[(&a, &a_ty)], &af_ty, |_, v| v[0].clone()) };
    let bf = if bf_ty.shape == b_ty.shape { b } else { map(e, &[(&b, &b_ty)], &bf_ty, |_, v| v[0].clone()) };
    let a3_ty = af_ty.with_shape(vec![nb, m, k]);
    let b3_ty = bf_ty.with_shape(vec![nb, k, n]);
    let a3 = reshape_value(e, &af, &af_ty, &a3_ty);
    let b3 = reshape_value(e, &bf, &bf_ty, &b3_ty);
    let o3_ty = out.with_shape(vec![nb, m, n]);
    let init = initial_accumulator(e, None, &o3_ty);
    let r = e.assign(format!(
        "linalg.batch_matmul ins({a3}, {b3} : {a3_ty}, {b3_ty}) outs({init} : {o3_ty}) -> {o3_ty}"
    ));
    reshape_value(e, &r, &o3_ty, out)
}

/// Checks `a [B, M, K] @ b [B, K, N]` against the declared result.
fn check_batched_product(op: &AtenOp, a: &Ty, b: &Ty) -> Result<(), String> {
    if a.rank() != 3 || b.rank() != 3 || a.shape[0] != b.shape[0] || a.shape[2] != b.shape[1] {
        return Err(format!("{}: cannot multiply {a} by {b}", op.name));
    }
    op.expect_shape(0, &[a.shape[0], a.shape[1], b.shape[2]])
}

/// bmm(self [B, M, K], mat2 [B, K, N])
pub fn bmm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (a, b) = (op.input("self")?, op.input("mat2")?);
    check_batched_product(op, &a.ty, &b.ty)?;
    Ok(vec![batched_matmul(e, &a.ssa, &a.ty, &b.ssa, &b.ty, op.result())])
}

/// matmul(self, other) with torch's rules for 1-D operands (a vector is
/// a row on the left, a column on the right, and that dim is dropped).
pub fn matmul_op(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (a, b) = (op.input("self")?, op.input("other")?);
    let out = op.result().clone();
    if a.ty.rank() == 0 || b.ty.rank() == 0 {
        return Err("matmul: both arguments need at least one dim".into());
    }
    let a_ty = if a.ty.rank() == 1 { a.ty.with_shape(vec![1, a.ty.shape[0]]) } else { a.ty.clone() };
    let b_ty = if b.ty.rank() == 1 { b.ty.with_shape(vec![b.ty.shape[0], 1]) } else { b.ty.clone() };
    let a2 = reshape_value(e, &a.ssa, &a.ty, &a_ty);
    let b2 = reshape_value(e, &b.ssa, &b.ty, &b_ty);
    // the product with the vector dims kept
    let batch_a = &a_ty.shape[..a_ty.rank() - 2];
    let batch_b = &b_ty.shape[..b_ty.rank() - 2];
    let rank = batch_a.len().max(batch_b.len());
    let mut shape = Vec::new();
    for i in 0..rank {
        let x = if i + batch_a.len() >= rank { batch_a[i + batch_a.len() - rank] } else { 1 };
        let y = if i + batch_b.len() >= rank { batch_b[i + batch_b.len() - rank] } else { 1 };
        shape.push(if x == 1 { y } else { x });
    }
    shape.push(a_ty.shape[a_ty.rank() - 2]);
    shape.push(b_ty.shape[b_ty.rank() - 1]);
    if a_ty.shape[a_ty.rank() - 1] != b_ty.shape[b_ty.rank() - 2] {
        return Err(format!("{}: cannot multiply {} by {}", op.name, a.ty, b.ty));
    }
    // the declared result drops the dims of 1-D operands
    let mut declared = shape.clone();
    if b.ty.rank() == 1 {
        declared.pop();
    }
    if a.ty.rank() == 1 {
        declared.remove(declared.len() - if b.ty.rank() == 1 { 1 } else { 2 });
    }
    op.expect_shape(0, &declared)?;
    let full = out.with_shape(shape);
    let r = batched_matmul(e, &a2, &a_ty, &b2, &b_ty, &full);
    Ok(vec![reshape_value(e, &r, &full, &out)])
}

/// baddbmm(self, batch1, batch2, beta, alpha) = beta * self + alpha * (batch1 @ batch2)
pub fn baddbmm(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let (bias, a, b) = (op.input("self")?, op.input("batch1")?, op.input("batch2")?);
    check_batched_product(op, &a.ty, &b.ty)?;
    let (beta, alpha) = (op.float("beta", 1.0)?, op.float("alpha", 1.0)?);
    let out = op.result().clone();
    let prod = batched_matmul(e, &a.ssa, &a.ty, &b.ssa, &b.ty, &out);
    if beta == 0.0 {
        // torch ignores self when beta is 0 (NaN and inf in it do not propagate)
        return Ok(vec![scaled_by(e, &prod, &out, alpha)]);
    }
    let elem = out.elem.clone();
    let bias_elem = bias.ty.elem.clone();
    Ok(vec![map(e, &[(&bias.ssa, &bias.ty), (&prod, &out)], &out, |e, v| {
        let s = scalar::cast(e, &v[0], &bias_elem, &elem);
        let kb = scalar::constant(e, beta, &elem);
        let ka = scalar::constant(e, alpha, &elem);
        let s = scalar::mul(e, &s, &kb, &elem);
        let p = scalar::mul(e, &v[1], &ka, &elem);
        scalar::add(e, &s, &p, &elem)
    })])
}

/// `k * x` elementwise (`x` itself when k is 1).
fn scaled_by(e: &mut Emitter, x: &str, ty: &Ty, k: f64) -> String {
    if k == 1.0 {
        return x.to_string();
    }
    let elem = ty.elem.clone();
    map(e, &[(x, ty)], ty, |e, v| {
        let c = scalar::constant(e, k, &elem);
        scalar::mul(e, &v[0], &c, &elem)
    })
}

#[cfg(test)]
mod tests {
    use super::row_panel_rows;

    #[test]
    fn row_panels_are_as_tall_as_a_tile_over_all_column_groups_allows() {
        // mobilenet_v2's 7x7 stage: 48 + 1 columns, three groups: 8 rows
        assert_eq!(row_panel_rows(960, 49), Some(8));
        assert_eq!(row_panel_rows(40, 49), Some(8));
        // two groups: 12 rows where they divide, else 8
        assert_eq!(row_panel_rows(36, 36), Some(12));
        assert_eq!(row_panel_rows(64, 32), Some(8));
        // one group: 16 rows
        assert_eq!(row_panel_rows(32, 16), Some(16));
        assert_eq!(row_panel_rows(48, 20), Some(16));
        // four groups fit no tile: 16 or 12 rows, a group at a time
        assert_eq!(row_panel_rows(32, 64), Some(16));
        assert_eq!(row_panel_rows(36, 64), Some(12));
        assert_eq!(row_panel_rows(40, 64), None);
        assert_eq!(row_panel_rows(20, 49), None);
    }

    #[test]
    fn row_panels_for_whole_panels_and_few_columns() {
        // Winograd's products over 49 tiles (resnet18's 14x14 and 28x28 stages)
        assert!(super::row_panels_fit(256, 49));
        assert!(super::row_panels_fit(128, 49));
        // 196 tiles: a batched product
        assert!(!super::row_panels_fit(64, 196));
        // no whole panels, or fewer columns than a vector
        assert!(!super::row_panels_fit(20, 49));
        assert!(!super::row_panels_fit(64, 8));
    }
}
