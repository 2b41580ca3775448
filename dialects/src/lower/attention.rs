//! `scaled_dot_product_attention` as one tiled kernel with an online
//! softmax (the FlashAttention recurrence), for f32, with or without a
//! mask (causal, boolean or additive): the score matrix is never
//! materialized beyond one block of `QB` queries by `KB` keys.
//!
//! For each batch-head `b` and block of queries `Q_i` (`[QB, D]`), with
//! the keys in blocks `K_j`, `V_j`:
//!
//! ```text
//! S   = Q_i K_j^T                       (a product; K^T made once)
//! m'  = max(m, scale * rowmax S)        (running row maximum)
//! P   = exp(scale * S - m')             (arguments <= 0)
//! c   = exp(m - m')                     (rescales what came before)
//! l'  = c * l + rowsum P
//! O'  = c * O + P V_j
//! out = O / l                           after the last block
//! ```
//!
//! With one key block (sequences up to `KEY_BLOCK`) the recurrence is a
//! plain softmax of the block. A causal mask skips the key blocks past the
//! block's last query and masks the blocks it cuts. The products are
//! `linalg.matmul`s that the matmul strategy turns into its micro-kernel, the row statistics reductions and elementwise ops of
//! the other strategies; bufferization hoists the block's temporaries out
//! of the loops into the arena.
//!
//! The sum runs over blocks in order, so the result differs from the
//! unblocked softmax by rounding only (as torch's own CPU flash kernel).

use super::elementwise::{empty, filled, map, map_indexed, shared_map};
use super::linear::{matmul_ragged, Init};
use super::reduction::{reduce, reduced_map};
use super::scalar::{self, constant};
use super::shape::{index_const, reshape_value, transpose_value};
use super::{Emitter, PARALLEL};
use crate::types::Ty;

/// Queries per block: the micro-kernel's rows, a few register tiles.
const QUERY_BLOCK: i64 = 64;
/// Keys per block: one block's scores are at most 64 x 256 floats (64 KiB).
const KEY_BLOCK: i64 = 256;

/// The largest divisor of `n` up to `limit`, preferring multiples of 16
/// (whole vectors of scores).
fn block(n: i64, limit: i64) -> i64 {
    let divisors = || (1..=limit.min(n)).rev().filter(move |b| n % b == 0);
    divisors().find(|b| b % 16 == 0).or_else(|| divisors().next()).unwrap_or(1)
}

/// The blocks the kernel uses for `l` queries and `s` keys. Lengths with
/// no fair divisor (primes) take one block of the whole length instead.
pub fn blocks(l: i64, s: i64) -> (i64, i64) {
    // (65 queries: one block of 65, whose products take register tiles
    // of 5 rows, rather than 5 blocks of 13 in tiles of one row)
    let queries = match block(l, QUERY_BLOCK) {
        b if b < 16 && l <= 4 * QUERY_BLOCK => l,
        b => b,
    };
    let keys = match block(s, KEY_BLOCK) {
        _ if s <= KEY_BLOCK => s,
        b if b < 32 => s,
        b => b,
    };
    (queries, keys)
}

/// An attention operand: its SSA value and type, `[.., H, N, D]`, or
/// `[B, N, H, D]` with `heads_last` (rank 4: the heads read in place from
/// the layout the projection wrote, see the compiler's
/// `attention_pattern::heads_in_place`).
pub struct Tensor<'a> {
    pub ssa: &'a str,
    pub ty: &'a Ty,
    pub heads_last: bool,
}

impl Tensor<'_> {
    /// The type as `[.., H, N, D]`.
    pub fn logical_type(&self) -> Ty {
        if self.heads_last {
            heads_swapped(self.ty)
        } else {
            self.ty.clone()
        }
    }
}

/// `[B, X, Y, D]` as `[B, Y, X, D]`.
pub fn heads_swapped(ty: &Ty) -> Ty {
    let mut shape = ty.shape.clone();
    shape.swap(1, 2);
    ty.with_shape(shape)
}

/// `q` [.., L, D], `k` [.., S, D], `v` [.., S, Dv] with the same batch
/// dims, f32 and no dim 0 (each seen through [`Tensor::logical_type`]),
/// and an optional `mask` broadcastable to [.., L, S] (bool: where
/// attention is allowed; f32: added to the scaled scores); returns the
/// result `[.., L, Dv]`, of type `out`: `[B, L, H, Dv]` with `out_heads_last`.
#[allow(clippy::too_many_arguments)]
pub fn attention(e: &mut Emitter, q: Tensor, k: Tensor, v: Tensor, mask: Option<Tensor>, scale: f64, causal: bool, out: &Ty, out_heads_last: bool) -> String {
    let (q_ty, k_ty, v_ty) = (q.logical_type(), k.logical_type(), v.logical_type());
    let rank = q_ty.rank();
    let batch: i64 = q_ty.shape[..rank - 2].iter().product();
    let (l, d, s, dv) = (q_ty.shape[rank - 2], q_ty.shape[rank - 1], k_ty.shape[rank - 2], v_ty.shape[rank - 1]);
    let q_rows = Rows::new(e, &q, batch, l, d);
    let v_rows = Rows::new(e, &v, batch, s, dv);
    let kt_ty = k_ty.with_shape(vec![batch, d, s]);
    let kt = if k.heads_last {
        // [B, S, H, D] -> [B, H, D, S]: one copy, whose blocks of keys
        // are rows
        let t = transpose_value(e, k.ssa, k.ty, &[0, 2, 3, 1]);
        reshape_value(e, &t, &k.ty.with_shape(vec![k.ty.shape[0], k.ty.shape[2], d, s]), &kt_ty)
    } else {
        let k3_ty = k_ty.with_shape(vec![batch, s, d]);
        let k3 = reshape_value(e, k.ssa, k.ty, &k3_ty);
        transpose_value(e, &k3, &k3_ty, &[0, 2, 1])
    };
    let (qb, kb) = blocks(l, s);
    let out_rows = if out_heads_last { out.clone() } else { q_ty.with_shape(vec![batch, l, dv]) };
    let init = empty(e, &out_rows);
    let (c0, c1) = (index_const(e, 0), index_const(e, 1));
    let (c_batch, c_l, c_qb) = (index_const(e, batch), index_const(e, l), index_const(e, qb));
    let mask = mask.map(|m| full_mask(e, m, &q_ty.shape[..rank - 2], l, s));
    let heads = (q.heads_last || v.heads_last || out_heads_last).then(|| q_ty.shape[1]);
    let shapes = Shapes { d, dv, s, qb, kb, q: q_rows, kt, kt_ty, v: v_rows, mask, scale, causal };
    let (b, acc, result) = (e.fresh(), e.fresh(), e.fresh());
    e.line(format!("{result} = scf.for {b} = {c0} to {c_batch} step {c1} iter_args({acc} = {init}) -> ({out_rows}) {{"));
    e.indented(|e| {
        let head = Head::new(e, &b, heads);
        let (i, acc_i, rows) = (e.fresh(), e.fresh(), e.fresh());
        e.line(format!("{rows} = scf.for {i} = {c0} to {c_l} step {c_qb} iter_args({acc_i} = {acc}) -> ({out_rows}) {{"));
        e.indented(|e| {
            let block_out = query_block(e, &shapes, &head, &i);
            let block_ty = out_rows.with_shape(vec![1, qb, dv]);
            let updated = if out_heads_last {
                let head_ty = out_rows.with_shape(vec![1, qb, 1, dv]);
                let block = e.assign(format!("tensor.expand_shape {block_out} {HEAD_DIM} output_shape [1, {qb}, 1, {dv}] : {block_ty} into {head_ty}"));
                let place = format!("[{}, {i}, {}, 0] [1, {qb}, 1, {dv}] [1, 1, 1, 1]", head.batch, head.head);
                e.assign(format!("tensor.insert_slice {block} into {acc_i}{place} : {head_ty} into {out_rows}"))
            } else {
                let place = format!("[{b}, {i}, 0] [1, {qb}, {dv}] [1, 1, 1]");
                e.assign(format!("tensor.insert_slice {block_out} into {acc_i}{place} : {block_ty} into {out_rows}"))
            };
            e.line(format!("scf.yield {updated} : {out_rows}"));
        });
        e.line(format!("}} {{{PARALLEL}}}"));
        e.line(format!("scf.yield {rows} : {out_rows}"));
    });
    e.line(format!("}} {{{PARALLEL}}}"));
    reshape_value(e, &result, &out_rows, out)
}

/// The batch-head a block works on: its index `b` in `[.., H]`, and as
/// the batch `b / H` and the head `b % H` of a `[B, N, H, D]` operand.
struct Head {
    index: String,
    batch: String,
    head: String,
}

impl Head {
    fn new(e: &mut Emitter, b: &str, heads: Option<i64>) -> Head {
        let Some(h) = heads else { return Head { index: b.to_string(), batch: b.to_string(), head: b.to_string() } };
        let c_h = index_const(e, h);
        let batch = e.assign(format!("arith.divui {b}, {c_h} : index"));
        let head = e.assign(format!("arith.remui {b}, {c_h} : index"));
        Head { index: b.to_string(), batch, head }
    }
}

/// An operand whose blocks of rows the kernel reads: `[batch, N, D]`, or
/// `[B, N, H, D]` read in place ([`Tensor::heads_last`]).
struct Rows {
    ssa: String,
    ty: Ty,
    heads_last: bool,
}

impl Rows {
    fn new(e: &mut Emitter, t: &Tensor, batch: i64, n: i64, d: i64) -> Rows {
        if t.heads_last {
            return Rows { ssa: t.ssa.to_string(), ty: t.ty.clone(), heads_last: true };
        }
        let ty = t.ty.with_shape(vec![batch, n, d]);
        Rows { ssa: reshape_value(e, t.ssa, t.ty, &ty), ty, heads_last: false }
    }

    /// The rows `start..start + len` of batch-head `head`, `[1, len, D]`.
    fn block(&self, e: &mut Emitter, head: &Head, start: &str, len: i64) -> (String, Ty) {
        let d = *self.ty.shape.last().expect("rows have a last dim");
        let ty = self.ty.with_shape(vec![1, len, d]);
        if !self.heads_last {
            let place = format!("[{}, {start}, 0] [1, {len}, {d}] [1, 1, 1]", head.index);
            return (e.assign(format!("tensor.extract_slice {}{place} : {} to {ty}", self.ssa, self.ty)), ty);
        }
        let slice_ty = self.ty.with_shape(vec![1, len, 1, d]);
        let place = format!("[{}, {start}, {}, 0] [1, {len}, 1, {d}] [1, 1, 1, 1]", head.batch, head.head);
        let slice = e.assign(format!("tensor.extract_slice {}{place} : {} to {slice_ty}", self.ssa, self.ty));
        (e.assign(format!("tensor.collapse_shape {slice} {HEAD_DIM} : {slice_ty} into {ty}")), ty)
    }
}

/// A block of rows `[1, N, D]` seen as `[1, N, 1, D]`, in a `[B, N, H, D]`
/// tensor. (Not a rank-reducing slice: MLIR 22's canonicalizer, folding a
/// constant offset into `tensor.extract_slice %t[b, 0, h, 0] [1, 5, 1, 8]`
/// to `tensor<1x5x8xf32>`, makes its sizes `[1, 1, 5, 8]`.)
const HEAD_DIM: &str = "[[0], [1, 2], [3]]";

/// The mask as [Bm, L, S], f32 and added to the scaled scores: Bm = 1
/// when every batch-head shares it (a causal or padding mask given as
/// [1, 1, L, S]), else one per batch-head. Broadcast dims are made whole
/// (one copy of L x S per Bm). A bool mask becomes the additive mask torch
/// makes of it (0 where attention is allowed, -inf elsewhere), once: its
/// blocks are then added in vectors (ops on bools in memory stay scalar
/// loops, see the compiler's `kernels::analysis::Generic::vectorizable`),
/// and layers that share the mask share the conversion ([`shared_map`]).
fn full_mask(e: &mut Emitter, m: Tensor, batch: &[i64], l: i64, s: i64) -> (String, Ty) {
    let lead = m.ty.rank().saturating_sub(2);
    let shared = m.ty.shape[..lead].iter().all(|&n| n == 1);
    let per: i64 = if shared { 1 } else { batch.iter().product() };
    let target: Vec<i64> = if shared { vec![1; batch.len()] } else { batch.to_vec() }.into_iter().chain([l, s]).collect();
    let full_ty = m.ty.with_shape(target).with_elem("f32");
    let full = if m.ty.elem == "i1" {
        shared_map(e, &[(m.ssa, m.ty)], &full_ty, |e, a| {
            let (zero, inf) = (constant(e, 0.0, "f32"), constant(e, f64::NEG_INFINITY, "f32"));
            e.assign(format!("arith.select {}, {zero}, {inf} : f32", a[0]))
        })
    } else if m.ty.shape == full_ty.shape {
        m.ssa.to_string()
    } else {
        map(e, &[(m.ssa, m.ty)], &full_ty, |_, a| a[0].clone())
    };
    let mask3_ty = full_ty.with_shape(vec![per, l, s]);
    (reshape_value(e, &full, &full_ty, &mask3_ty), mask3_ty)
}

/// What every block reads.
struct Shapes {
    d: i64,
    dv: i64,
    s: i64,
    qb: i64,
    kb: i64,
    q: Rows,
    /// K^T, `[batch, D, S]`
    kt: String,
    kt_ty: Ty,
    v: Rows,
    /// [Bm, L, S] (see [`full_mask`])
    mask: Option<(String, Ty)>,
    scale: f64,
    causal: bool,
}

/// The running statistics of a block of queries: O [1, QB, Dv], the row
/// maximum m and the row sum l [1, QB].
struct Running {
    o: String,
    m: String,
    l: String,
}

/// The output of the queries `i..i+QB` of batch-head `b`, `[1, QB, Dv]`.
fn query_block(e: &mut Emitter, sh: &Shapes, head: &Head, i: &str) -> String {
    let (qb, kb) = (sh.qb, sh.kb);
    let (q, q_ty) = sh.q.block(e, head, i, qb);
    let o_ty = q_ty.with_shape(vec![1, qb, sh.dv]);
    let row_ty = q_ty.with_shape(vec![1, qb]);
    let last = if kb == sh.s {
        let zero = index_const(e, 0);
        key_block(e, sh, &q, head, i, &zero, None)
    } else {
        // the blocks before the first key past the block's last query (causal)
        let c0 = index_const(e, 0);
        let c_kb = index_const(e, kb);
        let end = if sh.causal {
            let c_s = index_const(e, sh.s);
            let c_reach = index_const(e, qb + kb - 1);
            let reach = e.assign(format!("arith.addi {i}, {c_reach} : index"));
            let whole = e.assign(format!("arith.divui {reach}, {c_kb} : index"));
            let upto = e.assign(format!("arith.muli {whole}, {c_kb} : index"));
            e.assign(format!("arith.minui {upto}, {c_s} : index"))
        } else {
            index_const(e, sh.s)
        };
        let start = Running { o: filled(e, &o_ty, "0.0"), m: filled(e, &row_ty, "0xFF800000"), l: filled(e, &row_ty, "0.0") };
        let (j, o, m, l, r) = (e.fresh(), e.fresh(), e.fresh(), e.fresh(), e.fresh());
        e.line(format!(
            "{r}:3 = scf.for {j} = {c0} to {end} step {c_kb} iter_args({o} = {}, {m} = {}, {l} = {}) -> ({o_ty}, {row_ty}, {row_ty}) {{",
            start.o, start.m, start.l
        ));
        e.indented(|e| {
            let next = key_block(e, sh, &q, head, i, &j, Some(Running { o: o.clone(), m: m.clone(), l: l.clone() }));
            e.line(format!("scf.yield {}, {}, {} : {o_ty}, {row_ty}, {row_ty}", next.o, next.m, next.l));
        });
        e.line("}");
        Running { o: format!("{r}#0"), m: format!("{r}#1"), l: format!("{r}#2") }
    };
    // out = O / l: one division per row, a multiply per element; zeros
    // for a row masked whole (its maximum is -inf), as torch's attention
    // (its `_safe_softmax`)
    let inverse = map(e, &[(last.l.as_str(), &row_ty), (last.m.as_str(), &row_ty)], &row_ty, |e, a| {
        let one = constant(e, 1.0, "f32");
        let inverse = scalar::div(e, &one, &a[0], "f32");
        let (inf, zero) = (constant(e, f64::NEG_INFINITY, "f32"), constant(e, 0.0, "f32"));
        let none = e.assign(format!("arith.cmpf oeq, {}, {inf} : f32", a[1]));
        e.assign(format!("arith.select {none}, {zero}, {inverse} : f32"))
    });
    let per_row = reduced_map(3, &[2]);
    map_indexed(e, &[(last.o.as_str(), &o_ty, super::elementwise::identity_map(3)), (inverse.as_str(), &row_ty, per_row)], &o_ty, |e, a| {
        scalar::mul(e, &a[0], &a[1], "f32")
    })
}

/// One step of the recurrence over the keys `j..j+KB` (the first step
/// when `running` is `None`).
fn key_block(e: &mut Emitter, sh: &Shapes, q: &str, head: &Head, i: &str, j: &str, running: Option<Running>) -> Running {
    let (qb, kb) = (sh.qb, sh.kb);
    let b = &head.index;
    let q_ty = sh.kt_ty.with_shape(vec![1, qb, sh.d]);
    let kt_ty = sh.kt_ty.with_shape(vec![1, sh.d, kb]);
    let kt = e.assign(format!("tensor.extract_slice {}[{b}, 0, {j}] [1, {}, {kb}] [1, 1, 1] : {} to {kt_ty}", sh.kt, sh.d, sh.kt_ty));
    let (v, v_ty) = sh.v.block(e, head, j, kb);
    let s_ty = q_ty.with_shape(vec![1, qb, kb]);
    let mut scores = product(e, q, &q_ty, &kt, &kt_ty, &s_ty);
    let mut scale = sh.scale;
    if let Some((mask, mask_ty)) = &sh.mask {
        // the scaled scores, masked; the softmax then scales by 1
        let slice_ty = mask_ty.with_shape(vec![1, qb, kb]);
        let bm = if mask_ty.shape[0] == 1 { index_const(e, 0) } else { b.to_string() };
        let m = e.assign(format!("tensor.extract_slice {mask}[{bm}, {i}, {j}] [1, {qb}, {kb}] [1, 1, 1] : {mask_ty} to {slice_ty}"));
        scores = map(e, &[(scores.as_str(), &s_ty), (m.as_str(), &slice_ty)], &s_ty, |e, a| {
            let k = constant(e, scale, "f32");
            let x = scalar::mul(e, &a[0], &k, "f32");
            scalar::add(e, &x, &a[1], "f32")
        });
        scale = 1.0;
    }
    if sh.causal {
        scores = causal_mask(e, &scores, &s_ty, i, j);
    }
    let row_ty = q_ty.with_shape(vec![1, qb]);
    let per_row = reduced_map(3, &[2]);
    let identity = super::elementwise::identity_map(3);
    let (row_max, _) = reduce(e, &scores, &s_ty, &[2], "f32", f64::NEG_INFINITY, scalar::max_of_finite);
    // scale * x
    let scaled = |e: &mut Emitter, x: &str| {
        let k = constant(e, scale, "f32");
        scalar::mul(e, x, &k, "f32")
    };
    // m' = max(m, scale * rowmax S). A row masked whole so far has
    // m' = -inf: it subtracts 0 instead (its exponentials are ~0, not
    // NaN; a row masked to the end is zeros at the end, see `query_block`).
    let safe_max = |e: &mut Emitter, old: Option<&str>, row_max: &str| {
        let mut m = scaled(e, row_max);
        if let Some(old) = old {
            m = scalar::max_of_finite(e, old, &m, "f32");
        }
        let inf = constant(e, f64::NEG_INFINITY, "f32");
        let zero = constant(e, 0.0, "f32");
        let none = e.assign(format!("arith.cmpf oeq, {m}, {inf} : f32"));
        e.assign(format!("arith.select {none}, {zero}, {m} : f32"))
    };
    let m_safe = match &running {
        None => map(e, &[(row_max.as_str(), &row_ty)], &row_ty, |e, a| safe_max(e, None, &a[0])),
        Some(r) => map(e, &[(r.m.as_str(), &row_ty), (row_max.as_str(), &row_ty)], &row_ty, |e, a| safe_max(e, Some(&a[0]), &a[1])),
    };
    // exp(scale * s - m'), the argument <= 0 (or NaN)
    let p = map_indexed(e, &[(scores.as_str(), &s_ty, identity.clone()), (m_safe.as_str(), &row_ty, per_row.clone())], &s_ty, |e, a| {
        let x = scaled(e, &a[0]);
        let x = scalar::sub(e, &x, &a[1], "f32");
        scalar::exp_of_nonpositive(e, &x, "f32")
    });
    let (row_sum, _) = reduce(e, &p, &s_ty, &[2], "f32", 0.0, scalar::add);
    let o_ty = q_ty.with_shape(vec![1, qb, sh.dv]);
    let pv = product(e, &p, &s_ty, &v, &v_ty, &o_ty);
    let Some(r) = running else {
        let m = map(e, &[(row_max.as_str(), &row_ty)], &row_ty, |e, a| scaled(e, &a[0]));
        return Running { o: pv, m, l: row_sum };
    };
    // c = exp(m - m') rescales the sum and the output so far
    let c = map(e, &[(r.m.as_str(), &row_ty), (m_safe.as_str(), &row_ty)], &row_ty, |e, a| {
        let x = scalar::sub(e, &a[0], &a[1], "f32");
        scalar::exp_of_nonpositive(e, &x, "f32")
    });
    // The new state is written over the old (the loop's tensors bufferize
    // in place): l and O elementwise from themselves, m last (c and m'
    // read the old m before).
    let rows = super::elementwise::identity_map(2);
    let l_new = in_place(e, &r.l, &row_ty, &[(c.clone(), row_ty.clone(), rows.clone()), (row_sum, row_ty.clone(), rows.clone())], |e, a| {
        let x = scalar::mul(e, &a[2], &a[0], "f32");
        scalar::add(e, &x, &a[1], "f32")
    });
    let o_new = in_place(e, &r.o, &o_ty, &[(c, row_ty.clone(), per_row), (pv, o_ty.clone(), identity)], |e, a| {
        let x = scalar::mul(e, &a[2], &a[0], "f32");
        scalar::add(e, &x, &a[1], "f32")
    });
    let m_new = in_place(e, &r.m, &row_ty, &[(row_max, row_ty.clone(), rows)], |e, a| {
        let m = scaled(e, &a[0]);
        scalar::max_of_finite(e, &a[1], &m, "f32")
    });
    Running { o: o_new, m: m_new, l: l_new }
}

/// An elementwise op that writes `dest` (of type `ty`): `body` gets the
/// inputs' elements and then `dest`'s own.
fn in_place(e: &mut Emitter, dest: &str, ty: &Ty, inputs: &[(String, Ty, String)], body: impl FnOnce(&mut Emitter, &[String]) -> String) -> String {
    super::elementwise::generic(e, inputs, dest, ty, None, &vec!["parallel"; ty.rank()], "", body)
}

/// `a @ b` for `a` [1, M, K] and `b` [1, K, N] into `out` [1, M, N]: a 2-D
/// `linalg.matmul` from zeros on the operands seen without their unit
/// batch dim (by `matmul_ragged`: rows and columns of no whole tiles in
/// parts, ViT's 197 queries and keys). The reshapes keep the matmul strategy from fusing what
/// computes the operands into its register tiles (`P`'s exponentials, K's
/// transpose: they would run once per tile); the zeros it does fuse.
fn product(e: &mut Emitter, a: &str, a_ty: &Ty, b: &str, b_ty: &Ty, out: &Ty) -> String {
    // [1, X, Y] <-> [X, Y] (a view also of a strided slice: a block of K^T)
    let flat = |t: &Ty| t.with_shape(t.shape[1..].to_vec());
    let collapse = |e: &mut Emitter, x: &str, t: &Ty| e.assign(format!("tensor.collapse_shape {x} [[0, 1], [2]] : {t} into {}", flat(t)));
    let (a2_ty, b2_ty, out2_ty) = (flat(a_ty), flat(b_ty), flat(out));
    let a2 = collapse(e, a, a_ty);
    let b2 = collapse(e, b, b_ty);
    let (m, n) = (out.shape[1], out.shape[2]);
    let zeros = |e: &mut Emitter, t: &Ty, _: i64| filled(e, t, "0.0");
    let r = matmul_ragged(e, &a2, &a2_ty, &b2, &b2_ty, &Init::PerPart(&zeros), &out2_ty);
    e.assign(format!("tensor.expand_shape {r} [[0, 1], [2]] output_shape [1, {m}, {n}] : {out2_ty} into {out}"))
}

/// -inf where the key comes after the query (`j0 + c > i0 + r`), as
/// `is_causal`'s lower-triangular mask aligned at the first query and key.
fn causal_mask(e: &mut Emitter, scores: &str, ty: &Ty, i0: &str, j0: &str) -> String {
    let init = empty(e, ty);
    let maps = [(scores.to_string(), ty.clone(), super::elementwise::identity_map(3))];
    super::elementwise::generic(e, &maps, &init, ty, None, &["parallel"; 3], "", |e, a| {
        let r = e.assign("linalg.index 1 : index");
        let c = e.assign("linalg.index 2 : index");
        let query = e.assign(format!("arith.addi {i0}, {r} : index"));
        let key = e.assign(format!("arith.addi {j0}, {c} : index"));
        let after = e.assign(format!("arith.cmpi ugt, {key}, {query} : index"));
        let inf = e.assign("arith.constant 0xFF800000 : f32");
        e.assign(format!("arith.select {after}, {inf}, {} : f32", a[0]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_divide_the_sequences() {
        assert_eq!(blocks(128, 128), (64, 128));
        assert_eq!(blocks(1024, 1024), (64, 256));
        assert_eq!(blocks(77, 77), (77, 77));
        assert_eq!(blocks(65, 65), (65, 65));
        assert_eq!(blocks(5, 600), (5, 200));
        assert_eq!(blocks(48, 257), (48, 257));
    }
}
