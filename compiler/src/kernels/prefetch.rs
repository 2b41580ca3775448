//! Software prefetch of the next row in row chains (softmax, log_softmax,
//! layer and RMS norm: see `rows`).
//!
//! A row chain makes several passes over each row: softmax reads the row
//! for its maximum, computes the exponentials, sums them, scales them. Only
//! the first pass reads from memory; the others work in L1 and keep the
//! FP units busy while memory idles, so each row starts with a stall the
//! hardware prefetcher does not hide (it follows the loads, and the loads
//! of the next row only start after the current row is done). Here the
//! heaviest pass over row i also prefetches row i + 1 of every input the
//! chain reads, one cache line per line of the pass's step:
//!
//! ```text
//! scf.for %i = 0 to R {                          // tagged `aotc.rows`
//!   %row = memref.subview %x[%i, 0] [1, N]
//!   scf.for %j = 0 to N step S { ... }           // max
//!   scf.for %j = 0 to N step S {                 // exp: the heaviest pass
//!     memref.prefetch %x[min(%i + 1, R - 1), %j + 16 k], read, locality<3>, data   (k = 0 .. S/16)
//!     ...
//! ```
//!
//! softmax over 1200 x 1024: 0.372 -> 0.342 ms.
//!
//! Software prefetch of the streams of products on packed panels (see
//! `matmul`, which tags their K loops): each K step reads the next line of
//! a panel of weights that comes from L3 or memory; the step also
//! prefetches the line 4-8 KiB further on in the buffer
//! of the largest operand (the others stay in cache), past the panel's end
//! into the next one:
//!
//! ```text
//! %buffer = memref.reinterpret_cast %panels to [N]   // the panels' buffer, flat
//! scf.for %k = 0 to K {                               // tagged `aotc.stream`
//!   memref.prefetch %buffer[min(offset + (%k + 64) * 16, N - 1)], read, locality<1>, data
//!   %row = memref.subview %panel[%k, 0] [1, 16]
//!   ...
//! ```
//!
//! Software prefetch of the next register tile's rows of B in tiled
//! products (a 1x1 convolution's `[channels, pixels]` input): each K step
//! prefetches the row the tile to the right reads at that step, a whole K
//! loop ahead (see [`prefetch_next_tiles`]).
//!
//! All run after bufferization, on memrefs: the loops come from the
//! `rows` and `matmul` strategies, which tag them.

use crate::mlir::{only_read, op_name, InsertBefore};
use melior::ir::attribute::{BoolAttribute, IntegerAttribute};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::r#type::IntegerType;
use melior::ir::{Attribute, BlockRef, Identifier, Module, OperationRef, Type, TypeLike, Value, ValueLike};
use melior::Context;
use mlir_sys::*;

/// The discardable attribute on the loop over rows of a row chain.
pub const ROW_LOOP: &str = "aotc.rows";

/// The discardable attribute on a product's K loop whose operands are
/// streams read once (see [`prefetch_streams`]).
pub const STREAM_LOOP: &str = "aotc.stream";

/// The discardable attribute on a tiled product's K loop whose step reads
/// a row of B's register tile: see [`prefetch_next_tiles`].
pub const NEXT_TILE_LOOP: &str = "aotc.next_tile";

/// Bytes in a cache line (x86 and most ARM cores).
const CACHE_LINE: i64 = 64;

/// Adds the next-row prefetches to every tagged row loop.
pub fn prefetch_next_rows(context: &Context, module: &Module) -> anyhow::Result<()> {
    for row_loop in super::ops_named(module, "scf.for") {
        if unsafe { has_attribute(row_loop, ROW_LOOP) } {
            unsafe { prefetch_in(context, row_loop)? };
        }
    }
    Ok(())
}

/// Adds to every K loop tagged [`STREAM_LOOP`] the prefetch of its
/// largest operand's lines [`STREAM_AHEAD`] bytes ahead.
pub fn prefetch_streams(context: &Context, module: &Module) -> anyhow::Result<()> {
    for k_loop in super::ops_named(module, "scf.for") {
        if unsafe { has_attribute(k_loop, STREAM_LOOP) } {
            unsafe { prefetch_ahead_in(context, k_loop)? };
        }
    }
    Ok(())
}

/// Adds to every K loop tagged [`NEXT_TILE_LOOP`] the prefetch, at each
/// step, of the lines of B the next register tile to the right reads at
/// that step: a tiled product's K loop reads B rows N floats apart (a 1x1
/// convolution's input channels, a row of pixels each), too far apart for
/// a step-ahead prefetch and too many streams for the hardware's, so the
/// first row tile's pass over a block of B waits on each row. Prefetched a
/// whole K loop ahead, the rows arrive while the current tile computes,
/// from memory or the other core's cache (the next row tiles read the
/// block from L2; their prefetches hit it).
pub fn prefetch_next_tiles(context: &Context, module: &Module) -> anyhow::Result<()> {
    for k_loop in super::ops_named(module, "scf.for") {
        if unsafe { has_attribute(k_loop, NEXT_TILE_LOOP) } {
            unsafe { prefetch_next_tile_in(context, k_loop)? };
        }
    }
    Ok(())
}

/// See [`prefetch_next_tiles`]: each step view of `k_loop` that reads one
/// row of a 2-D operand (B's row of the register tile) is prefetched one
/// view width further along the row, clamped to the operand's buffer.
unsafe fn prefetch_next_tile_in(context: &Context, k_loop: MlirOperation) -> anyhow::Result<()> {
    let Some((index, views, first)) = k_steps(k_loop) else { return Ok(()) };
    let b = InsertBefore::new(context, OperationRef::from_raw(first));
    for view in views.iter().filter(|v| v.sizes.len() == 2 && v.dim == 0 && v.sizes[0] == 1) {
        let elements = root_bytes(view.source) / view.element_bytes;
        if elements == 0 {
            continue;
        }
        let buffer = b.flat_buffer(view.source, elements)?;
        for line in &view.lines {
            // the same step (row), one view width to the right
            let shift = [line[0], line[1] + view.sizes[1]];
            let element = b.line_element(view, &buffer, index, &shift)?;
            b.prefetch(buffer.flat, &[element], STREAM_LOCALITY)?;
        }
    }
    Ok(())
}

/// The K index of `k_loop` (a loop from 0 in steps of 1), the views of
/// the operands its body takes a step of ([`step_view`]), and the body's
/// first op.
unsafe fn k_steps(k_loop: MlirOperation) -> Option<(MlirValue, Vec<StepView>, MlirOperation)> {
    let Some((0, _, 1)) = crate::mlir::constant_loop_bounds(k_loop) else { return None };
    let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(k_loop, 0));
    let index = mlirBlockGetArgument(body, 0);
    let mut views = Vec::new();
    let mut op = mlirBlockGetFirstOperation(body);
    while !op.ptr.is_null() {
        views.extend(step_view(op, body, index));
        op = mlirOperationGetNextInBlock(op);
    }
    let first = mlirBlockGetFirstOperation(body);
    (!first.ptr.is_null()).then_some((index, views, first))
}

/// How many bytes ahead of its K step a stream is prefetched: 64 steps of
/// a 16-float panel. On Zen 4, one 512-channel 7x7 Winograd convolution
/// (ab against no prefetch, 1 thread): 512 bytes 0.93x the time, 1 KiB
/// 0.91, 2 KiB 0.84, 4 KiB 0.82, 8 KiB 0.86, 16 KiB 0.94; the MLP's
/// panels: 2 KiB and 8 KiB 1.01-1.02x 4 KiB's time. On Zen 5, prefetching
/// across panels (see [`prefetch_ahead_in`]), against 4 KiB (1 thread):
/// resnet18 2 KiB 1.05, 8 KiB 0.98, 16 KiB 0.96-0.98 (its 7x7 stage
/// streams 50 MB of transformed weights from memory); but the MLP 8 KiB
/// 1.03, 16 KiB 1.04-1.06, BERT 1.02-1.03, mobilenet_v2 0.99-1.01.
/// The products of the MLP and BERT read two panels a step, resnet18's 7x7
/// stage one: what each prefers is [`STREAMS_IN_FLIGHT`] bytes ahead in all.
const STREAM_AHEAD: i64 = 4096;

/// The bytes a K step prefetches ahead over all its streams (each at least
/// [`STREAM_AHEAD`]): one panel a step 8 KiB ahead, two 4 KiB each. Against
/// 4 KiB for every stream (1 thread): resnet18 0.98 (both orders of 200
/// pairs; 2 threads 0.996), mobilenet_v2 1.000-1.001 (its products read
/// one or four panels a step); the MLP and BERT unchanged. The whole
/// budget split over four streams (2 KiB each): mobilenet_v2 1.01-1.02.
const STREAMS_IN_FLIGHT: i64 = 8192;

/// The locality hint of a stream's prefetch: 1, into L2 (`prefetcht2` on
/// x86), from where the L1's own prefetcher takes the lines; into L1 (3)
/// the prefetched lines take L1 miss buffers the loads need. Against 3
/// (ab, 1 thread): the 7x7 convolution 0.91x the time (2: 0.94), resnet18
/// 0.98-0.99, the MLP 0.95, mobilenet_v2 1.00. With hint 1, 2 KiB ahead is
/// 1.18x 4 KiB's time, 8 KiB 1.01x, 16 KiB 1.13x.
const STREAM_LOCALITY: i64 = 1;

/// The locality hint of the next row's prefetch in a row chain: into L1,
/// where its passes run.
const ROW_LOCALITY: i64 = 3;

/// One operand a K loop reads a step at a time: `memref.subview
/// %source[.., %k, ..]` with the K index at `dim` and every other offset
/// static or defined outside the loop.
struct StepView {
    source: MlirValue,
    /// Each dim's offset: a static value or an operand (the K index at `dim`).
    offsets: Vec<Result<i64, MlirValue>>,
    dim: usize,
    /// The source's strides, in elements (static).
    strides: Vec<i64>,
    /// Bytes of an element.
    element_bytes: i64,
    /// Bytes from one step to the next.
    step_bytes: i64,
    /// Where each cache line a step reads starts, relative to the view's
    /// offsets (one index per dim).
    lines: Vec<Vec<i64>>,
    /// The view's sizes.
    sizes: Vec<i64>,
}

/// The most cache lines one step of a stream prefetches: a step that reads
/// more is not one stream but many (rows of a matrix, columns apart).
const MAX_LINES_PER_STEP: usize = 4;

/// The first element of each cache line that a view of `sizes` (with
/// `strides` in elements of `bytes` each) reads at one step of `dim`, or
/// None when it reads more than [`MAX_LINES_PER_STEP`] lines.
fn lines_per_step(sizes: &[i64], strides: &[i64], bytes: i64, dim: usize) -> Option<Vec<Vec<i64>>> {
    let mut lines: Vec<(i64, Vec<i64>)> = Vec::new();
    let mut index = vec![0i64; sizes.len()];
    loop {
        let offset: i64 = index.iter().zip(strides).map(|(i, s)| i * s).sum();
        let line = offset * bytes / CACHE_LINE;
        if !lines.iter().any(|(l, _)| *l == line) {
            if lines.len() == MAX_LINES_PER_STEP {
                return None;
            }
            lines.push((line, index.clone()));
        }
        // the next index, the last dim fastest, `dim` held at 0
        let Some(d) = (0..sizes.len()).rev().find(|&d| d != dim && index[d] + 1 < sizes[d]) else { break };
        index[d] += 1;
        index[d + 1..].iter_mut().for_each(|i| *i = 0);
    }
    Some(lines.into_iter().map(|(_, index)| index).collect())
}

/// Whether `value` is defined in `block` (by one of its ops, or as its
/// argument).
unsafe fn defined_in(value: MlirValue, block: MlirBlock) -> bool {
    let owner = if mlirValueIsAOpResult(value) { mlirOperationGetBlock(mlirOpResultGetOwner(value)) } else { mlirBlockArgumentGetOwner(value) };
    mlirBlockEqual(owner, block)
}

/// The bytes of an element of the memref type `ty`, if they are floats.
unsafe fn float_bytes(ty: MlirType) -> Option<i64> {
    let element = mlirShapedTypeGetElementType(ty);
    mlirTypeIsAFloat(element).then(|| mlirFloatTypeGetWidth(element) as i64 / 8)
}

/// The operand that `subview`, in the K loop's `body` with K index `index`,
/// takes a step of, if it is one: f32 or another float, only read.
unsafe fn step_view(subview: MlirOperation, body: MlirBlock, index: MlirValue) -> Option<StepView> {
    if op_name(subview) != "memref.subview" {
        return None;
    }
    let source = mlirOperationGetOperand(subview, 0);
    let (static_offsets, sizes, view_strides) =
        (static_array(subview, c"static_offsets")?, static_array(subview, c"static_sizes")?, static_array(subview, c"static_strides")?);
    let dynamic = static_offsets.iter().filter(|&&o| o == i64::MIN).count();
    let static_sizes_and_strides = sizes.iter().chain(&view_strides).all(|&v| v != i64::MIN);
    if defined_in(source, body) || !static_sizes_and_strides || mlirOperationGetNumOperands(subview) != 1 + dynamic as isize {
        return None;
    }
    let mut operand = 0;
    let mut dim = None;
    let mut offsets = Vec::new();
    for (d, &o) in static_offsets.iter().enumerate() {
        if o != i64::MIN {
            offsets.push(Ok(o));
            continue;
        }
        operand += 1;
        let value = mlirOperationGetOperand(subview, operand);
        if mlirValueEqual(value, index) && dim.is_none() {
            dim = Some(d);
        } else if defined_in(value, body) {
            return None;
        }
        offsets.push(Err(value));
    }
    let dim = dim?;
    let source_type = mlirValueGetType(source);
    if !mlirTypeIsAMemRef(source_type) {
        return None;
    }
    let bytes = float_bytes(source_type)?;
    let mut strides = vec![0i64; static_offsets.len()];
    let mut offset = 0i64;
    if mlirMemRefTypeGetStridesAndOffset(source_type, strides.as_mut_ptr(), &mut offset).value == 0 || strides.contains(&i64::MIN) {
        return None;
    }
    let lines = lines_per_step(&sizes, &strides, bytes, dim)?;
    let step_bytes = strides[dim] * bytes;
    only_read(mlirOperationGetResult(subview, 0), None).then_some(StepView { source, offsets, dim, strides, element_bytes: bytes, step_bytes, lines, sizes })
}

/// The bytes of the memref that `view` is a subview of (through any
/// chain of subviews), or 0 when its shape is not static.
unsafe fn root_bytes(mut view: MlirValue) -> i64 {
    while mlirValueIsAOpResult(view) && op_name(mlirOpResultGetOwner(view)) == "memref.subview" {
        view = mlirOperationGetOperand(mlirOpResultGetOwner(view), 0);
    }
    let ty = mlirValueGetType(view);
    if !mlirTypeIsAMemRef(ty) || !mlirShapedTypeHasStaticShape(ty) {
        return 0;
    }
    let elements: i64 = (0..mlirShapedTypeGetRank(ty) as isize).map(|d| mlirShapedTypeGetDimSize(ty, d)).product();
    float_bytes(ty).map_or(0, |bytes| elements * bytes)
}

/// Prefetches, at the start of each step of `k_loop`, the lines its
/// largest operand's step reads some steps on ([`STREAMS_IN_FLIGHT`]
/// bytes over all, at least [`STREAM_AHEAD`] each). The address is
/// taken in the buffer the operand is a view of, not in the view: the last
/// steps of a panel prefetch the start of what follows it in memory, which
/// is the next panel the loops around read (the panels of a packed weight
/// lie in the order they are used). Clamped to the buffer's last element,
/// so no prefetch leaves it. Against stopping at the view's last line (1
/// thread, ab): resnet18 0.90x the time (its 7x7 stage's Winograd products
/// start each 32 KB panel from memory), mobilenet_v2 0.94, the MLP, BERT
/// and GPT-2 0.99; 2 threads resnet18 0.92, mobilenet_v2 0.95.
unsafe fn prefetch_ahead_in(context: &Context, k_loop: MlirOperation) -> anyhow::Result<()> {
    let Some((index, views, first)) = k_steps(k_loop) else { return Ok(()) };
    let b = InsertBefore::new(context, OperationRef::from_raw(first));
    // the largest operand is the one that does not stay in cache; a step of
    // a row of A (4 bytes) is no stream, a step of 8-row panels (32 bytes)
    // is: resnet18 0.99x the time with them prefetched too, mobilenet_v2 0.99
    let largest = views.iter().map(|v| root_bytes(v.source)).max().unwrap_or(0);
    // (a buffer of unknown size cannot bound the addresses)
    if largest == 0 {
        return Ok(());
    }
    let streams: Vec<&StepView> = views.iter().filter(|v| v.step_bytes >= CACHE_LINE / 2 && root_bytes(v.source) == largest).collect();
    let lines: i64 = streams.iter().map(|v| v.lines.len() as i64).sum();
    let bytes_ahead = (STREAMS_IN_FLIGHT / lines.max(1)).max(STREAM_AHEAD);
    for view in streams {
        let buffer = b.flat_buffer(view.source, largest / view.element_bytes)?;
        let ahead = (bytes_ahead / view.step_bytes).max(1);
        let at = b.index_op("arith.addi", index, b.index(ahead)?)?;
        for line in &view.lines {
            // (a line's index along K is 0: `lines_per_step`)
            let element = b.line_element(view, &buffer, at, line)?;
            b.prefetch(buffer.flat, &[element], STREAM_LOCALITY)?;
        }
    }
    Ok(())
}

/// The buffer a view lies in, seen as one dim of elements (see
/// [`InsertBefore::flat_buffer`]).
struct FlatBuffer {
    /// `memref<N x T>` from the buffer's first element.
    flat: MlirValue,
    /// The view's offset in it, in elements.
    offset: MlirValue,
    elements: i64,
}

unsafe fn has_attribute(op: MlirOperation, name: &str) -> bool {
    let name = std::ffi::CString::new(name).expect("no NUL");
    !mlirOperationGetDiscardableAttributeByName(op, mlirStringRefCreateFromCString(name.as_ptr())).ptr.is_null()
}

fn static_array(op: MlirOperation, name: &std::ffi::CStr) -> Option<Vec<i64>> {
    unsafe {
        let attr = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name.as_ptr()));
        if attr.ptr.is_null() || !mlirAttributeIsADenseI64Array(attr) {
            return None;
        }
        Some((0..mlirDenseArrayGetNumElements(attr)).map(|i| mlirDenseI64ArrayGetElement(attr, i)).collect())
    }
}

/// One row of an input: `memref.subview %source[.., %i, .., 0] [1, .., 1, N] [1, ..]`
/// with the row loop's index at `dim`.
struct InputRow {
    source: MlirValue,
    rank: usize,
    dim: usize,
    length: i64,
    element_bytes: i64,
}

/// The row of an input that `subview` takes, if it is one: a unit-stride
/// row of a static memref defined outside the loop, indexed by the loop's
/// index alone, and only read.
unsafe fn input_row(subview: MlirOperation, body: MlirBlock, index: MlirValue) -> Option<InputRow> {
    if op_name(subview) != "memref.subview" || mlirOperationGetNumOperands(subview) != 2 {
        return None;
    }
    let source = mlirOperationGetOperand(subview, 0);
    if defined_in(source, body) || !mlirValueEqual(mlirOperationGetOperand(subview, 1), index) {
        return None;
    }
    let (offsets, sizes, strides) =
        (static_array(subview, c"static_offsets")?, static_array(subview, c"static_sizes")?, static_array(subview, c"static_strides")?);
    let rank = offsets.len();
    let dim = offsets.iter().position(|&o| o == i64::MIN)?;
    let unit_rows = sizes[..rank - 1].iter().all(|&s| s == 1);
    let starts_at_zero = offsets.iter().enumerate().all(|(d, &o)| d == dim || o == 0);
    if rank < 2 || dim + 1 >= rank || !unit_rows || !starts_at_zero || strides.iter().any(|&s| s != 1) {
        return None;
    }
    let source_type = mlirValueGetType(source);
    if !mlirTypeIsAMemRef(source_type) || !mlirShapedTypeHasStaticShape(source_type) {
        return None;
    }
    let element_bytes = float_bytes(source_type)?;
    only_read(mlirOperationGetResult(subview, 0), None).then_some(InputRow { source, rank, dim, length: sizes[rank - 1], element_bytes })
}

/// How many ops `op` holds, itself included.
fn weight(op: MlirOperation) -> usize {
    let mut count = 0;
    unsafe { OperationRef::from_raw(op) }.walk(melior::ir::operation::WalkOrder::PreOrder, |_| {
        count += 1;
        melior::ir::operation::WalkResult::Advance
    });
    count
}

unsafe fn prefetch_in(context: &Context, row_loop: MlirOperation) -> anyhow::Result<()> {
    let Some((0, rows, 1)) = crate::mlir::constant_loop_bounds(row_loop) else { return Ok(()) };
    let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(row_loop, 0));
    let index = mlirBlockGetArgument(body, 0);
    let mut inputs = Vec::new();
    let mut passes = Vec::new();
    let mut op = mlirBlockGetFirstOperation(body);
    while !op.ptr.is_null() {
        if let Some(row) = input_row(op, body, index) {
            inputs.push(row);
        } else if op_name(op) == "scf.for" {
            passes.push(op);
        }
        op = mlirOperationGetNextInBlock(op);
    }
    // Prefetching pays when other passes follow the one that reads the row.
    if rows < 2 || passes.len() < 2 || inputs.is_empty() {
        return Ok(());
    }
    let Some(&heaviest) = passes.iter().max_by_key(|&&p| weight(p)) else { return Ok(()) };
    let Some((0, length, step)) = crate::mlir::constant_loop_bounds(heaviest) else { return Ok(()) };
    let inner_body = BlockRef::from_raw(mlirRegionGetFirstBlock(mlirOperationGetRegion(heaviest, 0)));
    let Some(first) = inner_body.first_operation() else { return Ok(()) };
    let b = InsertBefore::new(context, first);
    let column = inner_body.argument(0)?.to_raw();
    let next_row = b.index_op("arith.addi", index, b.index(1)?)?;
    let next_row = b.index_op("arith.minui", next_row, b.index(rows - 1)?)?;
    for row in inputs.iter().filter(|r| r.length == length) {
        let per_line = (CACHE_LINE / row.element_bytes).max(1);
        let zero = b.index(0)?;
        for line in 0..(step + per_line - 1) / per_line {
            let offset = b.index(line * per_line)?;
            let at = b.index_op("arith.addi", column, offset)?;
            let indices: Vec<MlirValue> = (0..row.rank)
                .map(|d| if d == row.dim { next_row } else if d + 1 == row.rank { at } else { zero })
                .collect();
            b.prefetch(row.source, &indices, ROW_LOCALITY)?;
        }
    }
    Ok(())
}

/// The ops of the prefetches.
impl InsertBefore<'_, '_> {
    /// The first `elements` elements of the buffer that `view` is a view
    /// of, as `memref<N x T>`, and the view's offset in them:
    /// `memref.extract_strided_metadata`, then `memref.reinterpret_cast` of
    /// its base. `elements` is the size of the memref that `view` is a
    /// chain of subviews of (`root_bytes`): that memref lies in the buffer
    /// at some offset, so the buffer has at least as many elements (for a
    /// function argument or an arena slot, the offset is 0 and the two are
    /// the same).
    fn flat_buffer(&self, view: MlirValue, elements: i64) -> anyhow::Result<FlatBuffer> {
        let ty = unsafe { Type::from_raw(mlirValueGetType(view)) };
        let rank = unsafe { mlirShapedTypeGetRank(ty.to_raw()) } as usize;
        let element = unsafe { Type::from_raw(mlirShapedTypeGetElementType(ty.to_raw())) };
        let base_ty = Type::parse(self.context, &format!("memref<{element}>")).ok_or_else(|| anyhow::anyhow!("memref<{element}>"))?;
        let index = Type::index(self.context);
        let results: Vec<Type> = std::iter::once(base_ty).chain(std::iter::repeat_n(index, 1 + 2 * rank)).collect();
        let metadata = OperationBuilder::new("memref.extract_strided_metadata", self.location)
            .add_operands(&[unsafe { Value::from_raw(view) }])
            .add_results(&results)
            .build()?;
        let metadata = self.block.insert_operation_before(self.anchor, metadata);
        let (base, offset) = (metadata.result(0)?, metadata.result(1)?.to_raw());
        let flat_ty = Type::parse(self.context, &format!("memref<{elements}x{element}>")).ok_or_else(|| anyhow::anyhow!("memref<{elements}x{element}>"))?;
        let array = |text: &str| Attribute::parse(self.context, text).ok_or_else(|| anyhow::anyhow!("{text}"));
        let cast = OperationBuilder::new("memref.reinterpret_cast", self.location)
            .add_operands(&[base.into()])
            .add_attributes(&[
                (Identifier::new(self.context, "static_offsets"), array("array<i64: 0>")?),
                (Identifier::new(self.context, "static_sizes"), array(&format!("array<i64: {elements}>"))?),
                (Identifier::new(self.context, "static_strides"), array("array<i64: 1>")?),
                (Identifier::new(self.context, "operandSegmentSizes"), array("array<i32: 1, 0, 0, 0>")?),
            ])
            .add_results(&[flat_ty])
            .build()?;
        Ok(FlatBuffer { flat: self.insert(cast)?, offset, elements })
    }

    /// The element of `buffer` (`view`'s buffer seen flat) where `view`'s
    /// step `k` reads, `shift` elements on along each dim (a line of the
    /// step: [`StepView::lines`]), clamped to the buffer's last element.
    fn line_element(&self, view: &StepView, buffer: &FlatBuffer, k: MlirValue, shift: &[i64]) -> anyhow::Result<MlirValue> {
        let mut element = buffer.offset;
        for (d, offset) in view.offsets.iter().enumerate() {
            let i = match offset {
                _ if d == view.dim && shift[d] == 0 => k,
                _ if d == view.dim => self.index_op("arith.addi", k, self.index(shift[d])?)?,
                Ok(o) => self.index(*o + shift[d])?,
                Err(v) if shift[d] == 0 => *v,
                Err(v) => self.index_op("arith.addi", *v, self.index(shift[d])?)?,
            };
            let step = self.index_op("arith.muli", i, self.index(view.strides[d])?)?;
            element = self.index_op("arith.addi", element, step)?;
        }
        self.index_op("arith.minui", element, self.index(buffer.elements - 1)?)
    }

    /// `memref.prefetch %source[indices], read, locality<locality>, data`.
    fn prefetch(&self, source: MlirValue, indices: &[MlirValue], locality: i64) -> anyhow::Result<()> {
        let operands: Vec<Value> = std::iter::once(source).chain(indices.iter().copied()).map(|v| unsafe { Value::from_raw(v) }).collect();
        let op = OperationBuilder::new("memref.prefetch", self.location)
            .add_operands(&operands)
            .add_attributes(&[
                (Identifier::new(self.context, "isWrite"), BoolAttribute::new(self.context, false).into()),
                (Identifier::new(self.context, "localityHint"), IntegerAttribute::new(IntegerType::new(self.context, 32).into(), locality).into()),
                (Identifier::new(self.context, "isDataCache"), BoolAttribute::new(self.context, true).into()),
            ])
            .build()?;
        self.insert_without_result(op);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_reads_the_lines_of_its_panels_and_no_more_than_four() {
        // one 16-float row of a panel [K, 16]: one line
        assert_eq!(lines_per_step(&[1, 16], &[16, 1], 4, 0), Some(vec![vec![0, 0]]));
        // two panels [2, K, 16], 64 KiB apart: one line in each
        assert_eq!(lines_per_step(&[2, 1, 16], &[16384, 16, 1], 4, 1), Some(vec![vec![0, 0, 0], vec![1, 0, 0]]));
        // 32 floats of a row: two lines
        assert_eq!(lines_per_step(&[1, 32], &[32, 1], 4, 0), Some(vec![vec![0, 0], vec![0, 16]]));
        // eight rows of A, K floats apart: not one stream
        assert_eq!(lines_per_step(&[8, 1], &[1024, 1], 4, 1), None);
    }
}
