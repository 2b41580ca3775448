//! Matrix products: every `linalg.matmul` (the GEMM of im2col
//! convolutions, products whose B is not whole 16-column panels), every
//! `linalg.batch_matmul` (bmm, attention's two products) and every product
//! on packed panels of B (linear, addmm, mm: a `linalg.generic`, see
//! `aotc_dialects::lower::linear`) becomes a register micro-kernel.
//!
//! The micro-kernel computes a `tile_m x tile_n` block of the result with
//! its accumulators in vector registers for the whole K loop (one step of K
//! at a time: broadcast one element of A per row, load one row of B,
//! `vector.fma`): rows x 16 columns with up to 6 rows when the target has 16
//! vector registers, or up to 12 rows x 32 columns (two vectors, where N is
//! a multiple of 32) when it has 32, or 8 x 8 when N is not a multiple of
//! 16. Around it, N and K are blocked so that the part of B the kernel
//! sweeps (`block_k x block_n`, at most 256 x 256 floats) stays in L2 while
//! every row tile of A passes over it. All sizes divide the problem, so no
//! masking is needed: the lowering computes columns past the last multiple
//! of 16 apart (`aotc_dialects::lower::linear::matmul_ragged`); where it
//! cannot (K not a multiple of 8, other types, bmm), they are split off
//! here into a product of their own with narrower tiles. A batch matmul is the same kernel per batch element. On packed
//! panels the tile is one or two panels wide ([`panel_tiling`]). When K is
//! one block, the init (zeros, a broadcast bias) is computed in the
//! register tiles themselves ([`tag_with_init`]), and on packed panels so
//! is the elementwise op that alone reads the product, when there is one
//! (`super::epilogue`, [`micro_kernel_with_epilogue`]). A product on row
//! panels and the product of its last columns on the same panels share
//! their block loops ([`main_and_last_columns`]); the K loops
//! of products on panels prefetch them ([`streams_prefetched`]).

use super::{ops_named, tag, Script, Target};
use anyhow::Result;
use crate::kernels::analysis::{value_type, Expr};
use aotc_dialects::lower::row_panel_tile_spans_groups;
use melior::ir::operation::{OperationLike, OperationRef};
use melior::ir::ValueLike;
use melior::ir::Module;
use melior::Context;
use mlir_sys::MlirOperation;

/// How one matmul `[M, K] x [K, N]` is tiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulTiling {
    /// Rows per block, 0 for all rows in one (see [`parallel_blocks`]).
    pub block_m: i64,
    pub block_n: i64,
    pub block_k: i64,
    pub tile_m: i64,
    pub tile_n: i64,
}

fn largest_divisor(d: i64, limit: i64) -> i64 {
    (1..=limit.min(d).max(1)).rev().find(|t| d % t == 0).unwrap_or(1)
}

/// The outermost loop of a product is what the worker pool's threads share
/// (see `crate::parallel`): it should have at least this many iterations.
const PARALLEL_BLOCKS: i64 = 8;

/// The row and column blocks `(block_m, block_n)` (block_m 0: all rows in
/// one block) for the threads to share: the cache's column blocks when
/// there are [`PARALLEL_BLOCKS`] of them; else narrower column blocks when
/// N has that many register tiles and is the larger side (each thread then
/// reads all of A and its share of B, the larger operand); else the rows in
/// about that many blocks of whole register tiles (each row block reads the
/// column blocks of B again, from L2 or L3).
fn parallel_blocks(m: i64, n: i64, tile_m: i64, tile_n: i64, block_n: i64) -> (i64, i64) {
    let (m_tiles, n_tiles) = (m / tile_m.max(1), n / tile_n.max(1));
    if n / block_n >= PARALLEL_BLOCKS {
        return (0, block_n);
    }
    if n_tiles >= PARALLEL_BLOCKS && n >= m {
        return (0, tile_n * largest_divisor(n_tiles, n_tiles / PARALLEL_BLOCKS));
    }
    if m_tiles < 2 {
        return (0, block_n);
    }
    (tile_m * largest_divisor(m_tiles, (m_tiles / PARALLEL_BLOCKS).max(1)), block_n)
}

/// The most bytes of B rows one K block of a column panel spans.
const PANEL_BYTES: i64 = 256 * 1024;

/// The longest K kept in one block whatever the pages its panel spans:
/// each further K block loads and stores the result's register tiles again
/// (from memory when the result is large), and with one block the init is
/// made in the registers instead of a pass over the result. resnet18's stem
/// (64 x 147 x 12544, a 3.2 MB result, in 3 blocks of 49 before): 0.988x
/// the model's time at 1 thread (ab); mobilenet_v2 (K 96, 144) 0.997.
const ONE_K_BLOCK_UP_TO: i64 = 160;

pub fn matmul_tiling(m: i64, n: i64, k: i64, vector_registers: u32) -> MatmulTiling {
    let max_rows = if vector_registers >= 32 { 12 } else { 6 };
    let one_vector = if n % 16 == 0 {
        tiling(m, n, k, largest_divisor(m, max_rows), 16)
    } else {
        tiling(m, n, k, largest_divisor(m, 8), largest_divisor(n, 8))
    };
    // With 32 vector registers a tile two vectors wide (up to 12 x 32, 24
    // accumulators) loads its step of B as two vectors per up to 24 FMAs,
    // not one per 12, each broadcast of A feeding two FMAs (Zen 5, ab at 1
    // thread: mobilenet_v2 0.96, resnet18 0.99, BERT 0.99). The threads'
    // blocks keep splitting the same dim: where the tiles of 16 split the
    // columns (the image positions of a convolution) and 32-wide ones would
    // leave too few column blocks (128 to 224 columns: 4 to 7), each block
    // is one tile rather than the rows split instead, which would have
    // each thread read all of B (mobilenet_v2's 14x14 projections, 6
    // blocks of 32 of 192 columns: 2 threads 0.978 near, 0.971 far).
    if vector_registers >= 32 && n % 32 == 0 {
        let mut two_vectors = tiling(m, n, k, one_vector.tile_m, 32);
        if (two_vectors.block_m == 0) != (one_vector.block_m == 0) {
            if two_vectors.block_m == 0 {
                return one_vector;
            }
            two_vectors.block_m = 0;
            two_vectors.block_n = 32;
        }
        return two_vectors;
    }
    one_vector
}

/// The blocks around register tiles of `tile_m` x `tile_n`.
fn tiling(m: i64, n: i64, k: i64, tile_m: i64, tile_n: i64) -> MatmulTiling {
    let block_n = tile_n * largest_divisor(n / tile_n, (256 / tile_n).max(1));
    // The K block bounds the pages one column panel of B spans (rows are N
    // floats apart): at most ~64 4-KiB pages, so the walk down the panel
    // stays in the first-level TLB (N = 4096: 64 -> 92 GFLOP/s). A short K
    // stays one block (see [`ONE_K_BLOCK_UP_TO`]).
    let pages_limit = (PANEL_BYTES / (n * 4).max(1)).clamp(64, 256);
    let block_k = if k <= ONE_K_BLOCK_UP_TO { k } else { largest_divisor(k, pages_limit) };
    let (block_m, block_n) = parallel_blocks(m, n, tile_m, tile_n, block_n);
    MatmulTiling { block_m, block_n, block_k, tile_m, tile_n }
}

impl MatmulTiling {
    fn tag(&self, batched: bool) -> String {
        let kind = if batched { "batch_matmul" } else { "matmul" };
        format!("{kind}_{}_{}_{}_{}_{}", self.block_m, self.block_n, self.block_k, self.tile_m, self.tile_n)
    }
}

/// The vector width of the micro-kernel's columns.
const TILE_N: i64 = 16;

/// One product's plan: its tiling, or (when N is not a multiple of the
/// vector width) a split of N into a part that is and the remainder, each
/// tiled on its own, so the bulk keeps full vectors instead of every tile
/// shrinking to a divisor of N (7 columns for a 14x14 image's 196).
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Tiled(MatmulTiling),
    Split { at: i64, main: MatmulTiling, rest: MatmulTiling },
    /// A product on packed panels of B (loops m, panel, column, k).
    Panels(MatmulTiling),
    /// A product on packed panels whose init is made in its register tiles
    /// and that computes the elementwise op after it there too (see
    /// `super::epilogue`).
    PanelsWithEpilogue(MatmulTiling),
    /// A product on row panels of A (loops panel, row, column group,
    /// column, k, or panel, column, row, k for its last few columns): the
    /// cache blocks and the register tile of each loop, as
    /// [`micro_kernel`] takes them, and whether the register tiles run
    /// column groups outside panels (see [`groups_outside_panels`]).
    RowPanels { blocks: Vec<i64>, tiles: Vec<i64>, groups_first: bool },
}

/// The most bytes of A one row block of a product on packed panels spans
/// (`block_m x block_k` floats): each register tile of columns sweeps the
/// whole block, which must stay in L2 (half of Zen 4's 1 MiB) for that.
const PANEL_ROWS_BYTES: i64 = 512 * 1024;

/// The tiling of a product on packed panels of B. Each panel's K rows are
/// contiguous, so K blocks are not bounded by pages, only by L2 (up to
/// 1024 steps). With 32 vector registers the register tile is two panels
/// wide (8 rows x 32 columns: 16 accumulators, two B loads per 8
/// broadcasts); with 16, one panel of up to 6 rows. Measured on Zen 4,
/// MLP 32x1024x4096: one panel 8 rows, K blocks of 256: 6.2 ms; two
/// panels: 5.4 ms; K blocks of 1024: 5.2 ms.
///
/// A column block is one register tile wide, and all the rows of A that
/// fit [`PANEL_ROWS_BYTES`] pass over it: each tile's panels (K x 32
/// floats, 128 KiB for K = 1024) are read from memory once and reused by
/// every row tile from L2, and the rows of A are what stays in L2. Blocks
/// of 16 panels swept by one row tile after the other read a block of B
/// (1 MiB at K = 1024) once per row tile, from L3 or memory: the MLP
/// (32 x 1024 x 4096 and back) 5% slower at 1 thread and 11% at 2,
/// GPT-2 (128 tokens) 3% and 4%.
pub fn panel_tiling(m: i64, n: i64, k: i64, vector_registers: u32, row_groups: bool) -> MatmulTiling {
    let panels = n / TILE_N;
    let (max_rows, tile_panels) = match vector_registers {
        r if r >= 32 && panels % 2 == 0 => (8, 2),
        r if r >= 32 => (12, 1),
        _ => (6, 1),
    };
    let tile_n = tile_panels * TILE_N;
    let tile_m = largest_divisor(m, max_rows);
    let block_k = largest_divisor(k, 1024);
    let m_tiles = m / tile_m;
    let fitting_tiles = PANEL_ROWS_BYTES / (tile_m * block_k * 4).max(1);
    let (block_m, block_n) = if m_tiles <= fitting_tiles {
        match parallel_blocks(m, n, tile_m, tile_n, tile_n) {
            (0, block_n) if row_groups => (row_group_rows(m_tiles, tile_m, k * n * 4), block_n),
            blocks => blocks,
        }
    } else {
        (tile_m * largest_divisor(m_tiles, fitting_tiles.max(1)), tile_n)
    };
    MatmulTiling { block_m, block_n, block_k, tile_m, tile_n }
}

/// The most row groups of a product on packed panels (see
/// [`row_group_rows`]).
const ROW_GROUPS: i64 = 4;

/// The most bytes of B that the row groups of a product on packed panels
/// read in all: each group reads all of B, the first from memory, the
/// others mostly from L2 or L3.
const ROW_GROUPS_B_BYTES: i64 = 4 * 1024 * 1024;

/// The rows of each row group of a product on packed panels whose rows all
/// pass under each column tile (0: one group). The threads share its row
/// groups x column tiles, groups outer, so that a thread's home range is a
/// band of the rows (tokens) rather than of the columns: the rows of A it
/// reads and of the result it writes are those that the token-wise kernels
/// around it (layer norms, residual adds, which the threads share by rows)
/// wrote and read on the same thread. Split by columns, each thread read
/// all of A and wrote part of every row, and when the two threads' cores
/// share no last-level cache ("far") those lines moved between them. As
/// many groups as divide the row tiles, up to [`ROW_GROUPS`] and as long
/// as the groups read at most [`ROW_GROUPS_B_BYTES`] of B in all.
///
/// Not for a result that a loop nest reads (`panel_tiling`'s `row_groups`
/// false): that is an attention's query, key or value, whose threads take
/// the heads in order, and the heads are the columns in order, so the
/// column split keeps them on one thread from the projection on.
///
/// BERT (128 tokens; B of 256 KiB and 1 MiB), far cost per run predicted
/// by `tools/line_sharing.py`: 285 us with columns, 139 with row groups in
/// every product, 80 with the attention's projections split by columns;
/// at 2 threads far 0.94-0.96x the time (4 groups; 2 groups 0.98x, 8
/// 0.98x), near and at 1 thread level (ab, both orders).
fn row_group_rows(m_tiles: i64, tile_m: i64, b_bytes: i64) -> i64 {
    let groups = (1..=ROW_GROUPS).rev().find(|&g| m_tiles % g == 0 && g * b_bytes <= ROW_GROUPS_B_BYTES).unwrap_or(1);
    if groups < 2 {
        return 0;
    }
    m_tiles / groups * tile_m
}

/// `(m, n, k)` of a `linalg.generic` that multiplies by packed panels
/// (`aotc_dialects::lower::linear::PANEL_PRODUCT_MAPS`), or None.
fn panel_product(raw: MlirOperation) -> Option<(i64, i64, i64)> {
    use super::analysis::Expr::Dim;
    let g = super::analysis::generic(raw)?;
    let maps: Vec<&[super::analysis::Expr]> = g.operands.iter().map(|(_, m)| m.as_slice()).collect();
    let panels = g.parallel == [true, true, true, false]
        && g.inputs == 2
        && maps == [&[Dim(0), Dim(3)][..], &[Dim(1), Dim(3), Dim(2)][..], &[Dim(0), Dim(1), Dim(2)][..]]
        && g.ranges[2] == TILE_N;
    panels.then(|| (g.ranges[0], g.ranges[1] * g.ranges[2], g.ranges[3]))
}

/// The plan of a `linalg.generic` that multiplies row panels of A
/// (`aotc_dialects::lower::linear::ROW_PANEL_PRODUCT_MAPS` or
/// `ROW_PANEL_REST_MAPS`), or None. The threads share the panels, one at a
/// time (the columns are few; single panels rather than 8 or 10 blocks of
/// them: mobilenet_v2 at 2 threads 0.992-0.996, a thread done early takes
/// a smaller part of a slower one's range).
fn row_panel_plan(raw: MlirOperation, vector_registers: u32) -> Option<Plan> {
    let g = super::analysis::generic(raw)?;
    if g.inputs != 2 || g.ranges.iter().any(|&r| r <= 0) {
        return None;
    }
    let maps: Vec<Vec<Expr>> = g.operands.iter().map(|(_, m)| m.clone()).collect();
    row_panel_sizes_of(&g.parallel, &maps, &g.ranges, vector_registers, true).or_else(|| {
        // the same behind a batch dim (`BATCHED_ROW_PANEL_*_MAPS`)
        let maps = without_batch_dim(&maps)?;
        let plan = row_panel_sizes_of(&g.parallel[1..], &maps, &g.ranges[1..], vector_registers, false).map(one_at_a_time)?;
        // (the main form has 6 loops, the last columns' 5)
        Some(if g.ranges.len() == 6 { groups_outside_panels(plan, &g.ranges) } else { plan })
    })
}

/// The plan of a product on row panels from its loops (parallel or not,
/// and their ranges) and its operands' maps, if these are
/// `ROW_PANEL_PRODUCT_MAPS` or `ROW_PANEL_REST_MAPS`; `unbatched`: no
/// batch dim was taken off (see [`row_panel_rest_sizes`]).
fn row_panel_sizes_of(parallel: &[bool], maps: &[Vec<Expr>], ranges: &[i64], vector_registers: u32, unbatched: bool) -> Option<Plan> {
    use Expr::Dim;
    let maps: Vec<&[Expr]> = maps.iter().map(|m| m.as_slice()).collect();
    let main = [&[Dim(0), Dim(4), Dim(1)][..], &[Dim(4), Dim(2), Dim(3)][..], &[Dim(0), Dim(1), Dim(2), Dim(3)][..]];
    let rest = [&[Dim(3), Dim(1)][..], &[Dim(0), Dim(3), Dim(2)][..], &[Dim(0), Dim(1), Dim(2)][..]];
    if parallel == [true, true, true, true, false] && maps == main && ranges[3] == TILE_N {
        Some(row_panel_sizes(ranges[1], ranges[2], ranges[4], vector_registers))
    } else if parallel == [true, true, true, false] && maps == rest {
        Some(row_panel_rest_sizes(ranges[0], ranges[1], ranges[3], vector_registers, unbatched))
    } else {
        None
    }
}

/// The maps of a generic whose loop 0 is a batch dim (every operand's
/// first dim, and none of the others) without it, the other loops
/// renumbered; else None.
fn without_batch_dim(maps: &[Vec<Expr>]) -> Option<Vec<Vec<Expr>>> {
    maps.iter()
        .map(|m| {
            let (first, rest) = m.split_first()?;
            if *first != Expr::Dim(0) {
                return None;
            }
            rest.iter()
                .map(|e| match e {
                    Expr::Dim(0) => None,
                    Expr::Dim(d) => Some(Expr::Dim(d - 1)),
                    other => Some(other.clone()),
                })
                .collect()
        })
        .collect()
}

/// A row-panel plan behind a batch dim: one product of the batch at a
/// time (the threads share the batch and the panels as one loop).
fn one_at_a_time(plan: Plan) -> Plan {
    match plan {
        Plan::RowPanels { blocks, tiles, groups_first } => Plan::RowPanels {
            blocks: [1].into_iter().chain(blocks).collect(),
            tiles: [1].into_iter().chain(tiles).collect(),
            groups_first,
        },
        other => other,
    }
}

/// The register tiles' loops of a batched product on row panels with its
/// column groups outside its panels, in each block of one group: (batch,
/// group, row, panel, column, k).
const GROUPS_FIRST: [i64; 6] = [0, 3, 2, 1, 4, 5];

/// Bytes of one operand's part that a register tile loop may re-read from
/// L1 (48 KiB on Zen 5, 32 KiB on earlier x86 cores; the other operand's
/// slice and the accumulators' stores need the rest).
const L1_REREAD_BYTES: i64 = 32 * 1024;

/// A batched product on row panels (loops batch, panel, row, group,
/// column, k: `ranges`) that reads each batch element's columns from L2 on
/// every panel, because they do not fit in L1 while its panels do, runs
/// the column groups outside the panels instead: each group's columns
/// (K x 16 floats) then stay in L1 while every panel uses them, and the
/// panels, re-read for each group, come from L1. resnet18's 56x56
/// Winograd products (64 x 64 panels, 196 tiles: 16 KB of panels, 50 KB
/// of columns): that kernel 0.87x the time, resnet18 1 thread 0.98x; the
/// 28x28 and 14x14 ones (25 KB of columns; 256 KB of panels) keep panels
/// outside (groups first there: 1.05x and 1.03x their time).
///
/// The groups are the one block loop, outside the batch (loops group,
/// batch, row, panel, column, k): the threads share groups x elements,
/// groups outer, so a thread's home range is a range of tiles, a band of
/// the image's rows, rather than of Winograd elements (all 36 elements'
/// panels, 590 KB, stay in L2 across the groups). resnet18 1 thread 0.99x
/// (ab, both orders), 2 threads 1.00x.
fn groups_outside_panels(plan: Plan, ranges: &[i64]) -> Plan {
    let Plan::RowPanels { mut blocks, tiles, .. } = plan else { return plan };
    let (panels, rows, groups, k) = (ranges[1], ranges[2], ranges[3], ranges[5]);
    let columns_bytes = k * groups * TILE_N * 4;
    let panels_bytes = panels * rows * k * 4;
    let one_k_block = blocks.last() == Some(&k);
    // (a register tile that spans the groups leaves no group loop to move)
    let group_loop = groups >= 2 && tiles[3] == 1;
    if columns_bytes <= L1_REREAD_BYTES || panels_bytes > L1_REREAD_BYTES || !one_k_block || !group_loop {
        return Plan::RowPanels { blocks, tiles, groups_first: false };
    }
    blocks[0] = 0;
    blocks[1] = 0;
    blocks[3] = 1;
    Plan::RowPanels { blocks, tiles, groups_first: true }
}

/// The loops of a product on row panels of `rows` rows by `groups`
/// 16-column groups over `k` (panel, row, group, column, k): one panel at
/// a time; the register tile is the panel's rows by all its groups when
/// they fit ([`row_panel_tile_spans_groups`]: each K step then reads the panel's
/// chunk once, and the panel comes from memory once: mobilenet_v2's 7x7
/// stage, 8 rows x 48 columns against 16 x 16 three times over), else by
/// one group; with 16 vector registers up to 6 of the rows by one group.
fn row_panel_sizes(rows: i64, groups: i64, k: i64, vector_registers: u32) -> Plan {
    let wide = vector_registers >= 32;
    let tile_rows = if wide { rows } else { largest_divisor(rows, 6) };
    let tile_groups = if wide && row_panel_tile_spans_groups(rows, groups) { groups } else { 1 };
    Plan::RowPanels { blocks: vec![1, 0, 0, 0, largest_divisor(k, 1024)], tiles: vec![1, tile_rows, tile_groups, TILE_N, 1], groups_first: false }
}

/// The loops of the last few columns' form (panel, column, row, k): up to
/// 8 columns (4 with 16 vector registers) by the panel's rows, the vector,
/// in tiles of several panels so that there are [`REST_CHAINS`]
/// accumulators. Each accumulator is a chain of one FMA per step of K; one
/// alone waits on the FMA's latency every step. When the threads share
/// its panel blocks (`shared`: a product that is no batch, whose main
/// product takes the same blocks, see [`main_and_last_columns`]), fewer
/// panels per tile (two at least) if that makes [`PARALLEL_BLOCKS`]
/// blocks: mobilenet_v2's 960 x 160 weights, 20 panels, in 10 blocks of
/// 2 instead of 5 of 4, which two threads split 3 to 2 (those kernels
/// 1.63x and 1.58x as fast at 2 threads as at 1).
fn row_panel_rest_sizes(panels: i64, columns: i64, k: i64, vector_registers: u32, shared: bool) -> Plan {
    let tile_columns = largest_divisor(columns, if vector_registers >= 32 { 8 } else { 4 });
    let chains = (REST_CHAINS / tile_columns).max(1);
    let tile_panels = (2..=chains.min(panels))
        .rev()
        .find(|&t| shared && panels % t == 0 && panels / t >= PARALLEL_BLOCKS)
        .unwrap_or_else(|| largest_divisor(panels, chains));
    Plan::RowPanels {
        blocks: vec![tile_panels, 0, 0, largest_divisor(k, 1024)],
        tiles: vec![tile_panels, tile_columns, 0, 1],
        groups_first: false,
    }
}

/// The accumulators of a row-panel product's last-columns tile (see
/// [`row_panel_rest_sizes`]).
const REST_CHAINS: i64 = 4;

fn plan_for(m: i64, n: i64, k: i64, vector_registers: u32) -> Plan {
    let rest = n % TILE_N;
    if rest == 0 || n < TILE_N {
        return Plan::Tiled(matmul_tiling(m, n, k, vector_registers));
    }
    let at = n - rest;
    Plan::Split { at, main: matmul_tiling(m, at, k, vector_registers), rest: matmul_tiling(m, rest, k, vector_registers) }
}

/// Tags every product with its plan and writes the script: cache blocks,
/// micro-kernel tiles (reduction tile 1), vectorization, the accumulators
/// hoisted out of the K loop, the contraction lowered to outer products.
pub fn plan(context: &Context, module: &Module, target: &Target, script: &mut Script) -> Result<()> {
    // (tag, op name, batched, plan); a split op gets a tag of its own (a
    // split needs a handle to exactly one op)
    let mut jobs: Vec<(String, &str, bool, Plan)> = Vec::new();
    // the tags of plain products at a function's top level, whose B comes
    // from memory or another core (not from a loop nest's own buffers, an
    // attention's per-head blocks in L1 or L2: BERT 1.005-1.011x the time
    // with those prefetched too)
    let (mut b_streamed, mut b_cached) = (Vec::new(), Vec::new());
    for (name, batched) in [("linalg.matmul", false), ("linalg.batch_matmul", true)] {
        for raw in ops_named(module, name) {
            let op = unsafe { OperationRef::from_raw(raw) };
            let type_of = |i: usize| op.operand(i).ok().and_then(|v| value_type(&v));
            let (Some(a), Some(c)) = (type_of(0), type_of(2)) else { continue };
            let (m, n, k) = if batched { (c.shape[1], c.shape[2], a.shape[2]) } else { (c.shape[0], c.shape[1], a.shape[1]) };
            if a.numel() == 0 || c.numel() == 0 || k == 1 {
                // nothing to tile (the plain loops run zero times, or fill the
                // init), or a single outer product
                continue;
            }
            let plan = plan_for(m, n, k, target.vector_registers);
            let tag_text = match &plan {
                Plan::Tiled(t) => t.tag(batched),
                // a split (panels are generics, planned below)
                _ => format!("{}_split{}", name.trim_start_matches("linalg."), jobs.len()),
            };
            let tag_text = tag_with_init(context, &op, &plan, k, tag_text);
            tag(context, raw, &tag_text);
            if batched || super::analysis::inside_loop(raw) { &mut b_cached } else { &mut b_streamed }.push(tag_text.clone());
            if !jobs.iter().any(|(t, ..)| *t == tag_text) {
                jobs.push((tag_text, name, batched, plan));
            }
        }
    }
    for raw in ops_named(module, "linalg.generic") {
        let Some((m, n, k)) = panel_product(raw) else { continue };
        if m == 0 || n == 0 || k <= 1 {
            continue;
        }
        // (a result that a loop nest reads, an attention's query, key or
        // value, keeps its columns split: see `row_group_rows`)
        let t = panel_tiling(m, n, k, target.vector_registers, !super::analysis::read_in_loops(raw));
        let op = unsafe { OperationRef::from_raw(raw) };
        let tag_text = format!("panels_{}_{}_{}_{}_{}", t.block_m, t.block_n, t.block_k, t.tile_m, t.tile_n);
        let epilogue = init_in_registers(&op, &Plan::Panels(t), k).and_then(|_| super::epilogue::panel_epilogue(raw));
        // (a tag of its own, and so an init tag of its own: the script of
        // the other products vectorizes their inits whole, before the
        // epilogue's tiles would fuse this one's)
        let (plan, tag_text) = match epilogue {
            Some(_) => (Plan::PanelsWithEpilogue(t), format!("{tag_text}_epilogue")),
            None => (Plan::Panels(t), tag_text),
        };
        let tag_text = tag_with_init(context, &op, &plan, k, tag_text);
        if let Some(epilogue) = epilogue {
            super::epilogue::reshape_to_panels(context, raw, epilogue)?;
            tag(context, epilogue, &epilogue_tag(&tag_text));
        }
        tag(context, raw, &tag_text);
        if !jobs.iter().any(|(t, ..)| *t == tag_text) {
            jobs.push((tag_text, "linalg.generic", false, plan));
        }
    }
    let row_panel_products: Vec<(MlirOperation, Plan)> = ops_named(module, "linalg.generic")
        .into_iter()
        .filter_map(|raw| Some((raw, row_panel_plan(raw, target.vector_registers)?)))
        .collect();
    let pairs = main_and_last_columns(&row_panel_products);
    // (main tag, its plan, last columns' tag, their plan, panels, batched)
    let mut pair_jobs: Vec<(String, Plan, String, Plan, i64, bool)> = Vec::new();
    // tags an op with its plan's tag, its init with the init's: the tag
    let tag_row_panels = |raw: MlirOperation, plan: &Plan, stem: String| {
        let op = unsafe { OperationRef::from_raw(raw) };
        let k = super::analysis::generic(raw).and_then(|g| g.ranges.last().copied()).unwrap_or(0);
        let tag_text = tag_with_init(context, &op, plan, k, stem);
        tag(context, raw, &tag_text);
        tag_text
    };
    for (i, (raw, plan)) in row_panel_products.iter().enumerate() {
        let Plan::RowPanels { blocks, tiles, .. } = plan else { continue };
        if pairs.iter().any(|&(_, rest, _)| rest == i) {
            // tagged with its main product below
            continue;
        }
        if let Some(&(_, rest, batched)) = pairs.iter().find(|&&(main, ..)| main == i) {
            // each pair's loops are fused: a tag, and so a handle, per op
            let p = pair_jobs.len();
            let main_tag = tag_row_panels(*raw, plan, format!("row_panels_pair{p}"));
            let (rest_raw, rest_plan) = &row_panel_products[rest];
            let rest_tag = tag_row_panels(*rest_raw, rest_plan, format!("row_panels_pair{p}_last"));
            let panels = super::analysis::generic(*raw).map_or(0, |g| g.ranges[usize::from(batched)]);
            pair_jobs.push((main_tag, plan.clone(), rest_tag, rest_plan.clone(), panels, batched));
            continue;
        }
        let sizes: Vec<String> = blocks.iter().chain(tiles).map(i64::to_string).collect();
        let tag_text = tag_row_panels(*raw, plan, format!("row_panels_{}", sizes.join("_")));
        if !jobs.iter().any(|(t, ..)| *t == tag_text) {
            jobs.push((tag_text, "linalg.generic", false, plan.clone()));
        }
    }
    if jobs.is_empty() && pair_jobs.is_empty() {
        return Ok(());
    }
    let mut k_loops = Vec::new();
    for (tag_text, name, batched, plan) in &jobs {
        let prefetch_next_tile = b_streamed.contains(tag_text) && !b_cached.contains(tag_text);
        let init = fused_init(tag_text);
        let init = init.as_ref().map(|(kind, tag)| (*kind, tag.as_str()));
        if let (Plan::PanelsWithEpilogue(t), Some(init)) = (plan, init) {
            let (blocks, tiles) = ([t.block_m, t.block_n / TILE_N, 0], [t.tile_m, t.tile_n / TILE_N, 0]);
            let k_loop = micro_kernel_with_epilogue(script, tag_text, &blocks, &tiles, init);
            streams_prefetched(script, &k_loop);
            k_loops.push(k_loop);
            continue;
        }
        let op = script.match_tagged(name, tag_text);
        match plan {
            Plan::Tiled(t) => {
                let (blocks, tiles) = matmul_sizes(t, *batched);
                let k_loop = micro_kernel(script, &op, &blocks, &tiles, init);
                if prefetch_next_tile {
                    next_tile_prefetched(script, &k_loop);
                }
                k_loops.push(k_loop);
            }
            Plan::Split { at, main, rest } => {
                let parts = script.handle("parts");
                let n_dim = if *batched { 2 } else { 1 };
                script.line(format!("{parts} = transform.structured.split {op} after {at} {{dimension = {n_dim}}} : !transform.any_op"));
                let (low, high) = (script.handle("main"), script.handle("rest"));
                script.line(format!(
                    "{low}, {high} = transform.split_handle {parts} : (!transform.any_op) -> (!transform.any_op, !transform.any_op)"
                ));
                for (part, t) in [(&low, main), (&high, rest)] {
                    let (blocks, tiles) = matmul_sizes(t, *batched);
                    let k_loop = micro_kernel(script, part, &blocks, &tiles, None);
                    // (the rest's tiles are its few last columns: none to their right)
                    if part == &low && prefetch_next_tile {
                        next_tile_prefetched(script, &k_loop);
                    }
                    k_loops.push(k_loop);
                }
            }
            // loops (m, panel, column, k)
            Plan::Panels(t) | Plan::PanelsWithEpilogue(t) => {
                let (blocks, tiles) = ([t.block_m, t.block_n / TILE_N, 0, t.block_k], [t.tile_m, t.tile_n / TILE_N, 0, 1]);
                let k_loop = micro_kernel(script, &op, &blocks, &tiles, init);
                streams_prefetched(script, &k_loop);
                k_loops.push(k_loop);
            }
            Plan::RowPanels { blocks, tiles, groups_first } => {
                let order = groups_first.then_some(&GROUPS_FIRST[..]);
                let k_loop = micro_kernel_nest_in_order(script, &op, blocks, tiles, init, order).k_loop;
                streams_prefetched(script, &k_loop);
                k_loops.push(k_loop);
            }
        }
    }
    // the two products of a pair, in the same blocks of (batch element,)
    // panels: the main product's panel blocks are the last columns' tiles
    // of panels; the two block loops are fused after the cleanups below
    let mut fused_pairs = Vec::new();
    for (main_tag, main_plan, rest_tag, rest_plan, panels, batched) in &pair_jobs {
        let (Plan::RowPanels { blocks: main_blocks, tiles: main_tiles, .. }, Plan::RowPanels { blocks: rest_blocks, tiles: rest_tiles, .. }) =
            (main_plan, rest_plan)
        else {
            unreachable!("pairs are of row-panel products")
        };
        let panel_dim = usize::from(*batched);
        let mut main_blocks = main_blocks.clone();
        main_blocks[panel_dim] = rest_blocks[panel_dim];
        // one block of panels is no loop once the cleanups fold it
        let panel_blocks = *panels / rest_blocks[panel_dim] > 1;
        let mut outer_loops = Vec::new();
        for ((tag_text, blocks, tiles), mark) in [(main_tag, &main_blocks, main_tiles), (rest_tag, rest_blocks, rest_tiles)].into_iter().zip(PAIR_BLOCK_MARKS) {
            let init = fused_init(tag_text);
            let op = script.match_tagged("linalg.generic", tag_text);
            let loops = micro_kernel_nest(script, &op, blocks, tiles, init.as_ref().map(|(kind, tag)| (*kind, tag.as_str())));
            streams_prefetched(script, &loops.k_loop);
            k_loops.push(loops.k_loop);
            if *batched && panel_blocks {
                // found again by the mark once the batch loops are fused (fusion
                // clones the loops it fuses)
                script.line(format!("transform.annotate {} \"{mark}\" : !transform.any_op", loops.blocks[1]));
            }
            outer_loops.push(loops.blocks[0].clone());
        }
        // unbatched, a single block of panels leaves no loop to fuse
        if *batched || panel_blocks {
            fused_pairs.push((outer_loops, *batched && panel_blocks));
        }
    }
    // The vectorizer emits mul + multi_reduction: fold that back into
    // vector.contract, hoist the accumulator tile out of the K loop (it
    // becomes a loop-carried vector in registers), then unroll the
    // contraction into broadcast + vector.fma per row.
    script.line("transform.apply_patterns to %func {");
    script.line("  transform.apply_patterns.vector.reduction_to_contract");
    script.line("  transform.apply_patterns.vector.transfer_permutation_patterns");
    script.line("  transform.apply_patterns.canonicalization");
    script.line("} : !transform.any_op");
    for k_loop in k_loops {
        script.line(format!("transform.loop.hoist_loop_invariant_subsets {k_loop} : !transform.any_op"));
    }
    script.line("transform.apply_patterns to %func {");
    script.line("  transform.apply_patterns.vector.lower_contraction lowering_strategy = \"outerproduct\"");
    script.line("  transform.apply_patterns.vector.lower_outerproduct");
    script.line("} : !transform.any_op");
    script.line("transform.apply_patterns to %func {");
    script.line("  transform.apply_patterns.canonicalization");
    script.line("} : !transform.any_op");
    for (outer_loops, panel_blocks) in fused_pairs {
        // the outer loops (batch, or panel blocks), then, batched, the
        // panel-block loops inside the fused one
        let outer = script.handle("fused");
        script.line(format!(
            "{outer} = transform.loop.fuse_sibling {} into {} : (!transform.any_op, !transform.any_op) -> !transform.any_op",
            outer_loops[0], outer_loops[1]
        ));
        script.mark_parallel(std::slice::from_ref(&outer));
        if !panel_blocks {
            continue;
        }
        let blocks: Vec<String> = PAIR_BLOCK_MARKS
            .iter()
            .map(|mark| {
                let h = script.handle("blocks");
                script.line(format!(
                    "{h} = transform.structured.match ops{{[\"scf.for\"]}} attributes{{{mark}}} in {outer} : (!transform.any_op) -> !transform.any_op"
                ));
                h
            })
            .collect();
        let fused = script.handle("fused");
        script.line(format!(
            "{fused} = transform.loop.fuse_sibling {} into {} : (!transform.any_op, !transform.any_op) -> !transform.any_op",
            blocks[0], blocks[1]
        ));
        script.mark_parallel(&[fused]);
    }
    Ok(())
}

/// The marks on the panel-block loops of a batched pair's main product and
/// last columns (see [`main_and_last_columns`]).
const PAIR_BLOCK_MARKS: [&str; 2] = ["aotc.pair_main_blocks", "aotc.pair_last_blocks"];

/// The init of the product tagged `tag_text` that its register tiles
/// compute (see [`tag_with_init`]): the init's op name and tag.
fn fused_init(tag_text: &str) -> Option<(&'static str, String)> {
    tag_text.strip_suffix(FROM_INIT).map(|stem| {
        let kind = if stem.ends_with("_generic") { "linalg.generic" } else { "linalg.fill" };
        (kind, format!("{tag_text}_init"))
    })
}

/// The products on row panels (of `products`, by index) whose last
/// columns are a product of their own on the same panels (`aotc_dialects::
/// lower::linear::product_on_row_panels`: the Winograd products of 49
/// tiles, batched; mobilenet_v2's 7x7 stage, 48 + 1 columns): (main, last
/// columns, batched). Both are computed in the same blocks of (batch
/// element,) panels, the last columns' tile of panels, and their block
/// loops fused: the last columns read the panels from cache right after
/// the main product, rather than all of them again from L3 or memory
/// (resnet18's 14x14 and 28x28 stages: 4 MB and 2.4 MB per convolution;
/// mobilenet_v2's 960 x 160 weight: 0.6 MB). The threads share the blocks
/// (resnet18: 16 x 8 and 36 x 4; mobilenet_v2: 30 blocks of 4 panels).
/// A main product with its column groups outside its panels
/// ([`groups_outside_panels`]: its panels are a few KB in L1) keeps its last
/// columns apart: the threads then share its groups and batch as one loop.
fn main_and_last_columns(products: &[(MlirOperation, Plan)]) -> Vec<(usize, usize, bool)> {
    let loops = |raw: MlirOperation| super::analysis::generic(raw).map(|g| g.ranges.len()).unwrap_or(0);
    let operand = |raw: MlirOperation, i: usize| unsafe { OperationRef::from_raw(raw) }.operand(i).ok().map(|v| v.to_raw());
    let mut pairs = Vec::new();
    for (main, (main_raw, plan)) in products.iter().enumerate() {
        let main_raw = *main_raw;
        if matches!(plan, Plan::RowPanels { groups_first: true, .. }) {
            continue;
        }
        // main form: 5 loops (panel, row, group, column, k), and a batch
        // loop before them when batched, panels its first operand; the last
        // columns: 4 loops (and the batch loop), panels second. (A batch of
        // one is no loop once the cleanups fold it.)
        let batched = match loops(main_raw) {
            5 => false,
            6 if super::analysis::generic(main_raw).is_some_and(|g| g.ranges[0] >= 2) => true,
            _ => continue,
        };
        let Some(panels) = operand(main_raw, 0) else { continue };
        let rest_loops = if batched { 5 } else { 4 };
        let rest = products.iter().position(|&(raw, _)| {
            loops(raw) == rest_loops && operand(raw, 1).is_some_and(|v| unsafe { mlir_sys::mlirValueEqual(v, panels) })
        });
        if let Some(rest) = rest {
            pairs.push((main, rest, batched));
        }
    }
    pairs
}

/// Marks the K loop of a product on packed panels (of B, or row panels of
/// A) for `super::prefetch::prefetch_streams`: each K step reads the next
/// line of its panels, a stream from L3 or memory whose lines the hardware
/// prefetcher fetches too late (resnet18's 7x7 Winograd products, 16 tiles
/// per 64-byte step of their filters: 32 GFMA/s, 53 with the filters in
/// L2). Measured with the prefetch (ab, 1 thread): one 512-channel 7x7
/// convolution 0.83x the time, resnet18 0.93, mobilenet_v2 0.98, the MLP
/// 0.96, BERT 0.98. The plain tiled products read B rows N floats apart,
/// each reused by every row tile from L2: a step or a few KiB ahead gains
/// nothing there (resnet18 1.00, mobilenet_v2 1.00); they prefetch the next
/// tile's rows instead ([`next_tile_prefetched`]).
fn streams_prefetched(script: &mut Script, k_loop: &str) {
    script.annotate(&[k_loop.to_string()], super::prefetch::STREAM_LOOP);
}

/// Tags the K loop `k_loop` of a tiled product for
/// `super::prefetch::prefetch_next_tiles`: each step prefetches the row of
/// B that the next register tile to the right reads at that step. Against
/// no prefetch (ab, both orders, 150-600 pairs; Zen 4): 1 thread resnet50
/// 0.986 (its 14x14 products, split at 192 of 196 columns, gain most),
/// squeezenet 0.981-0.995, mobilenet_v2 and efficientnet 0.996, resnet18,
/// convnext and mobilenet_v3_small 1.000 +- 0.005; 2 threads near level;
/// 2 threads far (two cores without a shared cache: B rows that the other
/// thread wrote come from its cache) resnet50 0.987-0.991, mobilenet_v2
/// 0.991, resnet18 0.995, the other three level.
fn next_tile_prefetched(script: &mut Script, k_loop: &str) {
    script.annotate(&[k_loop.to_string()], super::prefetch::NEXT_TILE_LOOP);
}

/// The tag of the epilogue of the products tagged `product_tag`.
fn epilogue_tag(product_tag: &str) -> String {
    format!("{product_tag}_op")
}

/// The suffix of the tag of a product whose accumulators start from its
/// init computed in registers (see [`tag_with_init`]).
const FROM_INIT: &str = "_from_init";

/// A product whose whole K is one block and whose init is computed for it
/// alone ([`init_producer`]: zeros, a broadcast bias) gets that computation
/// fused into its register tiles: the accumulators start as vectors made in
/// registers, where they were loaded from a buffer the init had written in
/// a pass of its own (4% of mobilenet_v2's time, 3% of attention's). With K
/// in several blocks, each block adds to the one before, so the init stays.
/// The init op is tagged `<tag>_init` for the script; the product's tag
/// names the init's kind and ends with [`FROM_INIT`].
fn tag_with_init(context: &Context, op: &OperationRef, plan: &Plan, k: i64, tag_text: String) -> String {
    let Some((init, kind)) = init_in_registers(op, plan, k) else { return tag_text };
    // the init's op name is in the tag: the script matches it by name
    let tag_text = format!("{tag_text}_{}{FROM_INIT}", kind.trim_start_matches("linalg."));
    tag(context, init, &format!("{tag_text}_init"));
    tag_text
}

/// The op that computes the init of `op` (planned `plan`, reducing `k`) if
/// the register tiles make it (see [`tag_with_init`]): the whole K is one
/// block and [`init_producer`] takes it.
fn init_in_registers(op: &OperationRef, plan: &Plan, k: i64) -> Option<(MlirOperation, &'static str)> {
    let one_block = match plan {
        Plan::Tiled(t) | Plan::Panels(t) | Plan::PanelsWithEpilogue(t) => t.block_k == k,
        Plan::RowPanels { blocks, .. } => blocks.last() == Some(&k),
        Plan::Split { .. } => false,
    };
    one_block.then(|| init_producer(op)).flatten()
}

/// The op that computes `op`'s init (its last operand), if nothing else
/// uses it and it can be computed tile by tile: a `linalg.fill` (zero
/// accumulators) or a parallel `linalg.generic` (a broadcast bias).
fn init_producer(op: &OperationRef) -> Option<(MlirOperation, &'static str)> {
    let init = op.operand(op.operand_count().checked_sub(1)?).ok()?.to_raw();
    unsafe {
        if !mlir_sys::mlirValueIsAOpResult(init) || crate::mlir::single_user(init).is_none() {
            return None;
        }
        let producer = mlir_sys::mlirOpResultGetOwner(init);
        match crate::mlir::op_name(producer).as_str() {
            "linalg.fill" => Some((producer, "linalg.fill")),
            "linalg.generic" if super::analysis::generic(producer)?.parallel.iter().all(|&p| p) => Some((producer, "linalg.generic")),
            _ => None,
        }
    }
}

/// The block and register tile sizes of a matmul's loops ((batch,) m, n,
/// k): batch elements one at a time, then the 2-D blocking of one matmul.
fn matmul_sizes(t: &MatmulTiling, batched: bool) -> (Vec<i64>, Vec<i64>) {
    let lead: &[i64] = if batched { &[1] } else { &[] };
    // the batch loop is the one threads share
    let block_m = if batched { 0 } else { t.block_m };
    let blocks = lead.iter().copied().chain([block_m, t.block_n, t.block_k]).collect();
    let tiles = lead.iter().map(|_| 0).chain([t.tile_m, t.tile_n, 1]).collect();
    (blocks, tiles)
}

/// The loops of one product around its register micro-kernel, K the last
/// loop in both size lists: cache blocks (`blocks`), then the register tile
/// (`tiles`, K one step at a time), vectorized; returns the handle of the K
/// loop whose accumulators are hoisted. With `init` (the op name and tag of
/// an init fused per [`tag_with_init`]), K is not blocked: the init is
/// fused into the blocks, then into the register tiles, and vectorized with
/// them.
fn micro_kernel(script: &mut Script, op: &str, blocks: &[i64], tiles: &[i64], init: Option<(&str, &str)>) -> String {
    micro_kernel_nest(script, op, blocks, tiles, init).k_loop
}

/// The loops of a micro-kernel that later steps refer to.
struct KernelLoops {
    /// The K loop whose accumulators are hoisted.
    k_loop: String,
    /// The cache-block loops, outermost first.
    blocks: Vec<String>,
}

/// [`micro_kernel`], returning its cache-block loops too.
fn micro_kernel_nest(script: &mut Script, op: &str, blocks: &[i64], tiles: &[i64], init: Option<(&str, &str)>) -> KernelLoops {
    micro_kernel_nest_in_order(script, op, blocks, tiles, init, None)
}

/// [`micro_kernel_nest`] with the register tiles' loops nested in
/// `tile_order` (the dims, outermost first, K last), if given.
fn micro_kernel_nest_in_order(script: &mut Script, op: &str, blocks: &[i64], tiles: &[i64], init: Option<(&str, &str)>, tile_order: Option<&[i64]>) -> KernelLoops {
    let Some((kind, init)) = init else {
        let (blocked, block_loops) = script.tile(op, blocks);
        // the last is the K block loop, accumulating
        script.mark_parallel(&block_loops[..block_loops.len() - 1]);
        let (tiled, loops) = script.tile_in_order(false, &blocked, tiles, tile_order);
        script.mark_parallel(&loops[..loops.len() - 1]);
        script.vectorize(&tiled, None);
        return KernelLoops { k_loop: loops.last().expect("a K loop").clone(), blocks: block_loops };
    };
    let k = blocks.len() - 1;
    let with_k = |sizes: &[i64], size: i64| {
        let mut sizes = sizes.to_vec();
        sizes[k] = size;
        sizes
    };
    let (blocked, block_loops) = script.tile_and_fuse(op, &with_k(blocks, 0));
    script.mark_parallel(&block_loops);
    let (tiled, tile_loops) = script.tile_in_order(true, &blocked, &with_k(tiles, 0), tile_order);
    script.mark_parallel(&tile_loops);
    let (stepped, loops) = script.tile(&tiled, &with_k(&vec![0; k + 1], 1));
    script.vectorize(&stepped, None);
    let inits = script.match_tagged(kind, init);
    script.vectorize(&inits, None);
    KernelLoops { k_loop: loops[0].clone(), blocks: block_loops }
}

/// [`micro_kernel`] for a product with an epilogue (see
/// `super::epilogue`): the epilogue is tiled into the blocks, then into
/// the register tiles (`blocks` and `tiles` without K), with the product
/// and its init fused in; the product's slice is then stepped along K and
/// vectorized, and the epilogue reads its accumulators. Returns the K loop.
fn micro_kernel_with_epilogue(script: &mut Script, product_tag: &str, blocks: &[i64], tiles: &[i64], init: (&str, &str)) -> String {
    let root = script.match_tagged("linalg.generic", &epilogue_tag(product_tag));
    let (blocked, block_loops) = script.tile_and_fuse(&root, blocks);
    script.mark_parallel(&block_loops);
    let (tiled, tile_loops) = script.tile_and_fuse(&blocked, tiles);
    script.mark_parallel(&tile_loops);
    let product = script.match_tagged("linalg.generic", product_tag);
    let (stepped, loops) = script.tile(&product, &[0, 0, 0, 1]);
    script.vectorize(&stepped, None);
    script.vectorize(&tiled, None);
    let (kind, init) = init;
    let inits = script.match_tagged(kind, init);
    script.vectorize(&inits, None);
    loops[0].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_groups_go_outside_panels_only_where_the_columns_leave_l1_and_the_panels_fit() {
        // loops (batch, panel, row, group, column, k) of resnet18's Winograd products
        let groups_first = |ranges: [i64; 6]| {
            let plan = one_at_a_time(row_panel_sizes(ranges[2], ranges[3], ranges[5], 32));
            match groups_outside_panels(plan, &ranges) {
                Plan::RowPanels { blocks, groups_first, .. } => (groups_first, blocks),
                _ => unreachable!(),
            }
        };
        // 56x56, 64 channels: 50 KB of tiles, 16 KB of panels; the groups
        // are the block loop (one group a block), all panels one block
        assert_eq!(groups_first([36, 4, 16, 12, 16, 64]), (true, vec![0, 0, 0, 1, 0, 64]));
        // 28x28, 128 channels: 25 KB of tiles stay in L1
        assert_eq!(groups_first([36, 8, 16, 3, 16, 128]), (false, vec![1, 1, 0, 0, 0, 128]));
        // 14x14, 256 channels: 256 KB of panels would not
        assert_eq!(groups_first([16, 16, 16, 3, 16, 256]), (false, vec![1, 1, 0, 0, 0, 256]));
        // one group: nothing to reorder
        assert_eq!(groups_first([4, 4, 16, 1, 16, 1024]), (false, vec![1, 1, 0, 0, 0, 1024]));
    }

    #[test]
    fn tilings_divide_the_problem() {
        // (block_m, block_n, block_k, tile_m, tile_n) with 16 or 32 vector registers
        let t = |m, n, k, registers| {
            let t = matmul_tiling(m, n, k, registers);
            (t.block_m, t.block_n, t.block_k, t.tile_m, t.tile_n)
        };
        assert_eq!(t(6, 784, 75, 16), (0, 16, 75, 6, 16));
        assert_eq!(t(1, 10, 1176, 16), (0, 10, 196, 1, 5));
        assert_eq!(t(64, 1024, 1024, 16), (0, 128, 64, 4, 16));
        assert_eq!(t(64, 3136, 576, 16), (0, 224, 64, 4, 16));
        assert_eq!(t(64, 256, 1024, 16), (0, 32, 256, 4, 16));
        assert_eq!(t(7, 13, 5, 16), (0, 1, 5, 7, 1));
        // 32 registers: two vectors wide where N is whole pairs of them...
        assert_eq!(t(64, 1024, 1024, 32), (0, 128, 64, 8, 32));
        assert_eq!(t(576, 192, 96, 32), (72, 192, 96, 12, 32));
        assert_eq!(t(144, 3136, 24, 32), (0, 224, 24, 12, 32));
        // ...and the threads' blocks split the same dim: not 8 row blocks
        // where the tiles of 16 made 12 column blocks (mobilenet_v2's
        // 384 -> 64) but 6 column blocks of one tile
        assert_eq!(t(64, 192, 384, 32), (0, 32, 192, 8, 32));
        // a short K is one block even where its panel spans many pages
        assert_eq!(t(64, 12544, 147, 16).2, 147);
        assert_eq!(t(64, 12544, 576, 16).2, 64);
    }

    #[test]
    fn panel_tiles_are_two_panels_wide_with_32_registers() {
        let t = |m, n, k, r| {
            let t = panel_tiling(m, n, k, r, true);
            (t.block_n, t.block_k, t.tile_m, t.tile_n)
        };
        assert_eq!(t(32, 4096, 1024, 32), (32, 1024, 8, 32));
        assert_eq!(t(128, 768, 3072, 32), (32, 1024, 8, 32));
        assert_eq!(t(49, 48, 768, 32), (16, 768, 7, 16));
        assert_eq!(t(32, 4096, 1024, 16), (16, 1024, 4, 16));
    }

    /// `(block_m, block_n)` of a product on packed panels, 32 registers.
    fn panel_blocks(m: i64, n: i64, k: i64, row_groups: bool) -> (i64, i64) {
        let t = panel_tiling(m, n, k, 32, row_groups);
        (t.block_m, t.block_n)
    }

    #[test]
    fn panel_column_blocks_are_one_tile_under_rows_that_fit_l2() {
        let blocks = |m, n, k| panel_blocks(m, n, k, true);
        // 128 tokens x K 1024 (512 KiB of A): all rows under each tile of columns
        assert_eq!(blocks(128, 768, 1024), (0, 32));
        // 4096 rows: blocks of 128 rows (8 x 16 tiles), each under every column tile
        assert_eq!(blocks(4096, 768, 1024), (128, 32));
        assert_eq!(blocks(4096, 768, 256), (512, 32));
        // too few column tiles to share: the rows are shared instead
        assert_eq!(blocks(256, 64, 256), (32, 32));
    }

    #[test]
    fn panel_rows_go_in_row_groups_while_b_is_small() {
        let blocks = |m, n, k| panel_blocks(m, n, k, true);
        // BERT's projections (B 256 KiB, 1 MiB): 4 groups of 32 tokens
        assert_eq!(blocks(128, 256, 256), (32, 32));
        assert_eq!(blocks(128, 1024, 256), (32, 32));
        assert_eq!(blocks(128, 256, 1024), (32, 32));
        // B of 2.25 MiB: 4 MiB allow one pass only
        assert_eq!(blocks(128, 768, 768), (0, 32));
        // 3 row tiles of 8: 3 groups of one tile
        assert_eq!(blocks(24, 512, 256), (8, 32));
        // 5 row tiles of 5: no count of groups up to 4 divides them
        assert_eq!(blocks(25, 512, 256), (0, 32));
        // an attention's projection keeps the columns split
        assert_eq!(panel_blocks(128, 256, 256, false), (0, 32));
        assert_eq!(row_group_rows(16, 8, 1 << 20), 32);
        assert_eq!(row_group_rows(16, 8, 3 << 20), 0);
        assert_eq!(row_group_rows(1, 8, 1024), 0);
    }

    #[test]
    fn threads_share_at_least_eight_blocks_when_there_are_enough_tiles() {
        // enough column blocks: as the cache wants them
        assert_eq!(parallel_blocks(64, 3136, 4, 16, 224), (0, 224));
        // N the larger side: narrower column blocks (resnet18's last 3x3s: 7 -> 8 blocks)
        assert_eq!(parallel_blocks(49, 512, 7, 32, 256), (0, 64));
        // M the larger side, or too few column tiles: row blocks
        assert_eq!(parallel_blocks(256, 192, 8, 16, 192), (32, 192));
        assert_eq!(parallel_blocks(49, 48, 7, 16, 48), (7, 48));
        // one row tile and one column block: nothing to share
        assert_eq!(parallel_blocks(8, 16, 8, 16, 16), (0, 16));
    }

    #[test]
    fn row_panel_tiles_span_column_groups_or_panels() {
        let sizes = |plan| match plan {
            Plan::RowPanels { blocks, tiles, .. } => (blocks, tiles),
            _ => panic!("row panels"),
        };
        // mobilenet_v2's 960 x 160 weight by 48 + 1 columns: 8-row panels one
        // at a time, each by all 3 column groups in one sweep of K
        assert_eq!(sizes(row_panel_sizes(8, 3, 160, 32)), (vec![1, 0, 0, 0, 160], vec![1, 8, 3, 16, 1]));
        // its 49th column: 4 panels at a time, 4 accumulators
        assert_eq!(sizes(row_panel_rest_sizes(120, 1, 160, 32, true)), (vec![4, 0, 0, 160], vec![4, 1, 0, 1]));
        assert_eq!(sizes(row_panel_rest_sizes(6, 1, 160, 32, true)), (vec![3, 0, 0, 160], vec![3, 1, 0, 1]));
        assert_eq!(sizes(row_panel_rest_sizes(10, 2, 160, 32, true)), (vec![2, 0, 0, 160], vec![2, 2, 0, 1]));
        // its 960 x 160 weight (20 panels): 10 blocks of 2 for the threads
        // to share, not 5 of 4; as a batch's elements' products, 4 at a time
        assert_eq!(sizes(row_panel_rest_sizes(20, 1, 960, 32, true)), (vec![2, 0, 0, 960], vec![2, 1, 0, 1]));
        assert_eq!(sizes(row_panel_rest_sizes(20, 1, 960, 32, false)), (vec![4, 0, 0, 960], vec![4, 1, 0, 1]));
        // 64 columns by 16 rows: more than 24 accumulators, one group at a time
        assert_eq!(sizes(row_panel_sizes(16, 4, 64, 32)), (vec![1, 0, 0, 0, 64], vec![1, 16, 1, 16, 1]));
        // 16 vector registers: 6 of a panel's 12 rows by one group, 4 of the last columns
        assert_eq!(sizes(row_panel_sizes(12, 2, 2048, 16)), (vec![1, 0, 0, 0, 1024], vec![1, 6, 1, 16, 1]));
        assert_eq!(sizes(row_panel_rest_sizes(3, 12, 64, 16, true)), (vec![1, 0, 0, 64], vec![1, 4, 0, 1]));
        // behind a batch dim (Winograd's 16 products of 256 x 256 by 48 + 1
        // columns): one product at a time, each tiled as above
        assert_eq!(sizes(one_at_a_time(row_panel_sizes(8, 3, 256, 32))), (vec![1, 1, 0, 0, 0, 256], vec![1, 1, 8, 3, 16, 1]));
        assert_eq!(sizes(one_at_a_time(row_panel_rest_sizes(32, 1, 256, 32, false))), (vec![1, 4, 0, 0, 256], vec![1, 4, 1, 0, 1]));
    }

    #[test]
    fn a_batch_dim_is_loop_0_first_in_every_operand() {
        use Expr::{Const, Dim};
        let batched = vec![vec![Dim(0), Dim(4), Dim(2)], vec![Dim(0), Dim(1), Dim(4), Dim(3)], vec![Dim(0), Dim(1), Dim(2), Dim(3)]];
        let rest = vec![vec![Dim(3), Dim(1)], vec![Dim(0), Dim(3), Dim(2)], vec![Dim(0), Dim(1), Dim(2)]];
        assert_eq!(without_batch_dim(&batched), Some(rest));
        // loop 0 elsewhere, or not first
        assert_eq!(without_batch_dim(&[vec![Dim(0), Dim(0)]]), None);
        assert_eq!(without_batch_dim(&[vec![Dim(1), Dim(0)]]), None);
        assert_eq!(without_batch_dim(&[vec![Dim(0), Const(0), Dim(1)]]), Some(vec![vec![Const(0), Dim(0)]]));
    }

    #[test]
    fn ragged_columns_split_off() {
        assert_eq!(plan_for(64, 1024, 64, 16), Plan::Tiled(matmul_tiling(64, 1024, 64, 16)));
        assert_eq!(plan_for(8, 13, 64, 16), Plan::Tiled(matmul_tiling(8, 13, 64, 16)));
        let Plan::Split { at, main, rest } = plan_for(256, 196, 2304, 32) else { panic!("196 columns split") };
        // (the 192 columns in tiles two vectors wide: 32 registers)
        assert_eq!((at, main.tile_n, rest.tile_n), (192, 32, 4));
    }
}
