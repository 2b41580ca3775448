//! Static memory planning: after bufferization every intermediate is a
//! top-level `memref.alloc` with a static shape. Each gets a fixed offset in
//! one arena (the entry function's last argument, `memref<?xi8>`) so that
//! buffers whose live ranges overlap never share bytes; the arena's size is
//! known at compile time and nothing is allocated per run. A buffer whose
//! life ends in being copied whole into a slice of another is placed at
//! that slice instead (`arena_copies`), and the copy dropped.

use anyhow::{bail, Result};
use melior::ir::{
    attribute::IntegerAttribute, block::BlockLike, operation::OperationBuilder, operation::OperationLike,
    BlockRef, Identifier, Module, OperationRef, RegionLike, Type, Value, ValueLike,
};
use melior::ir::attribute::AttributeLike;
use mlir_sys::*;
use crate::line_sides::LineUse;
use std::collections::HashMap;

pub const ALIGNMENT: u64 = 64;

/// One buffer to place: its size and the top-level op range it is live in.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub size: u64,
    pub first: usize,
    pub last: usize,
}

/// How recently (in kernels) a buffer of the same size must have died for
/// a new buffer to take its slot rather than the lowest free one, when
/// nothing is known of the threads' lines. See [`assign_offsets`].
pub const TWIN_WINDOW_KERNELS: usize = 64;

/// Placements tried after the first, each scored against the last: each
/// starts from better holders than the one before, and by about ten they
/// stop changing (resnet18's lines moved per run, `tools/line_sharing.py`:
/// 3 refinements 1.95 ms, 10 1.87, 20 and 40 1.87-1.88; 0.3 s more to
/// compile).
const REFINEMENTS: usize = 10;

/// How much larger than the first placement's arena a later one may be.
const GROWTH_PERCENT: u64 = 10;

/// Greedy best-fit by decreasing size: each buffer goes to the lowest
/// aligned offset that overlaps no already placed buffer live at the same
/// time, unless a buffer of its size died in the last
/// [`TWIN_WINDOW_KERNELS`] kernels and its slot is free: then it takes the
/// latest such slot (the lowest of those that died last). The layers of a
/// network's stage write buffers of one size with the same kernels, which
/// split them the same way among the threads, so each thread writes the
/// bytes it wrote for the last layer.
///
/// Then, knowing which half of the pool touches each line (`uses`, see
/// `line_sides`), the placement is refined: with the threads' cores on two
/// last-level caches, writing a line that the other half holds (it wrote or
/// read the slot's previous buffer there last) waits for the line to cross
/// between them, ~3.2 ns a line. Each refinement places the buffers in the
/// same order, each at the candidate offset (the best-fit one, the lowest
/// free one, the free gaps' ends, offsets that put its first line of side 1
/// where a run of the arena's side-1 lines starts; none growing the arena
/// past the best-fit one) where its first kernels pay least for the lines'
/// holders: those that the buffers that died last before it (in this run,
/// or else in the run before) left there, at their offsets in this
/// refinement if placed already, else in the last. The placement that pays least in a
/// steady run ([`steady_cost`]) and grows the arena by at most
/// [`GROWTH_PERCENT`] wins (resnet18: 21% fewer lines moved per run,
/// `tools/line_sharing.py`, the arena's size unchanged). `kernels[i]`
/// counts the top-level ops before op `i` that compute (not views,
/// constants or allocations). Returns the offsets and the arena size.
pub fn assign_offsets(intervals: &[Interval], kernels: &[usize], uses: &[LineUse]) -> (Vec<u64>, u64) {
    let mut best = place(intervals, kernels, uses, None);
    let mut best_cost = steady_cost(intervals, uses, &best.0);
    if best_cost == 0 {
        return best;
    }
    let limit = best.1 + best.1 * GROWTH_PERCENT / 100;
    let mut last = best.0.clone();
    for _ in 0..REFINEMENTS {
        let next = place(intervals, kernels, uses, Some(&last));
        let cost = steady_cost(intervals, uses, &next.0);
        if cost < best_cost && next.1 <= limit {
            best_cost = cost;
            best = next.clone();
        }
        last = next.0;
    }
    best
}

/// How much larger than the plain plan's arena the plan that keeps loops
/// joinable may be.
const KEPT_GROWTH_PERCENT: u64 = 25;

/// [`assign_offsets`], or the same with every buffer whose last use is a
/// parallel loop kept live through the next parallel loop when that one has
/// the same bounds (`loops[i]`: top-level op `i`'s bounds if it is a
/// parallel loop with constant ones), whichever pays less in a steady run
/// ([`steady_cost`]; the kept plan's arena at most [`KEPT_GROWTH_PERCENT`]
/// larger). Two such loops may join into one after planning
/// (`slab_loops`: a max pool and the copy into the next convolution's
/// padded input and its Winograd input transform, an output transform and
/// the next input transform), which a buffer of the second taking the slot
/// of one the first reads prevents: resnet18 60 kernels instead of 65, its
/// predicted lines moved per run 1.87 -> 1.76 ms (`tools/line_sharing.py`),
/// 2 threads on two dies 0.954-0.962x the time, on one die 1.006-1.009x,
/// 1 thread 1.004-1.010x (ab, both orders), the arena 6.9 -> 8.3 MB;
/// mobilenet_v2's kept plan costs more (1 thread 1.00-1.02x, 2 threads
/// 1.02-1.04x), and it keeps the plain one.
fn plan_keeping_joins(intervals: &[Interval], kernels: &[usize], uses: &[LineUse], loops: &[Option<(i64, i64, i64)>]) -> (Vec<u64>, u64) {
    let plain = assign_offsets(intervals, kernels, uses);
    let kept = kept_joinable(intervals, loops);
    if kept == intervals {
        return plain;
    }
    let joinable = assign_offsets(&kept, kernels, uses);
    let cheaper = steady_cost(intervals, uses, &joinable.0) < steady_cost(intervals, uses, &plain.0);
    if cheaper && joinable.1 <= plain.1 + plain.1 * KEPT_GROWTH_PERCENT / 100 {
        joinable
    } else {
        plain
    }
}

/// `intervals` with each buffer live through [`joinable_through`] its last use.
fn kept_joinable(intervals: &[Interval], loops: &[Option<(i64, i64, i64)>]) -> Vec<Interval> {
    intervals.iter().map(|it| Interval { last: joinable_through(it.last, loops), ..it.clone() }).collect()
}

/// The op through which a buffer last used at `last` stays live to keep
/// that loop joinable with the next (see [`plan_keeping_joins`]).
fn joinable_through(last: usize, loops: &[Option<(i64, i64, i64)>]) -> usize {
    let Some(bounds) = loops[last] else { return last };
    match (last + 1..loops.len()).find(|&j| loops[j].is_some()) {
        Some(next) if loops[next] == Some(bounds) => next,
        _ => last,
    }
}

/// One placement by decreasing size (see [`assign_offsets`]); with the
/// `last` one, scored by the lines' holders.
fn place(intervals: &[Interval], kernels: &[usize], uses: &[LineUse], last: Option<&[u64]>) -> (Vec<u64>, u64) {
    let mut order: Vec<usize> = (0..intervals.len()).collect();
    order.sort_by(|&a, &b| intervals[b].size.cmp(&intervals[a].size).then(a.cmp(&b)));
    let mut offsets = vec![0u64; intervals.len()];
    let mut is_placed = vec![false; intervals.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut total = 0u64;
    for i in order {
        let it = &intervals[i];
        let mut conflicts: Vec<(u64, u64)> = placed
            .iter()
            .filter(|&&j| intervals[j].first <= it.last && it.first <= intervals[j].last)
            .map(|&j| (offsets[j], offsets[j] + intervals[j].size))
            .collect();
        conflicts.sort();
        let free = |offset: u64| conflicts.iter().all(|&(start, end)| offset + it.size <= start || end <= offset);
        let twin = placed
            .iter()
            .filter(|&&j| {
                let died = &intervals[j];
                died.size == it.size && died.last < it.first && kernels[it.first] - kernels[died.last + 1] <= TWIN_WINDOW_KERNELS
            })
            .max_by_key(|&&j| (intervals[j].last, std::cmp::Reverse(offsets[j])))
            .map(|&j| offsets[j])
            .filter(|&offset| free(offset));
        let lowest = lowest_free(&conflicts, it.size);
        let fit = twin.unwrap_or(lowest);
        let offset = match (last, uses.get(i)) {
            (Some(last), Some(use_)) => {
                let at = |j: usize| if is_placed[j] { offsets[j] } else { last[j] };
                let holders = holders_before(intervals, uses, it.first, at);
                let mut candidates = vec![fit, lowest];
                for &(start, end) in &conflicts {
                    candidates.push(end.div_ceil(ALIGNMENT) * ALIGNMENT);
                    if let Some(below) = start.checked_sub(it.size) {
                        candidates.push(below / ALIGNMENT * ALIGNMENT);
                    }
                }
                if let Some(split) = split_line(use_) {
                    let line = crate::line_sides::LINE as u64;
                    candidates.extend(side_boundaries(&holders).into_iter().filter(|&b| b >= split).map(|b| (b - split) as u64 * line));
                }
                let grows = |o: u64| (o + it.size).saturating_sub(total.max(fit + it.size));
                candidates
                    .into_iter()
                    .enumerate()
                    .filter(|&(_, o)| free(o) && grows(o) == 0)
                    .min_by_key(|&(k, o)| (entry_cost(use_, &holders, o), k))
                    .map_or(fit, |(_, o)| o)
            }
            _ => fit,
        };
        offsets[i] = offset;
        is_placed[i] = true;
        total = total.max(offset + it.size);
        placed.push(i);
    }
    (offsets, total.div_ceil(ALIGNMENT) * ALIGNMENT)
}

/// Who holds each line of the arena when a buffer first used at `first`
/// comes to life, buffer `j` being at `at(j)`: the exits of the buffers
/// that died before `first`, over those of the run before that died after.
fn holders_before(intervals: &[Interval], uses: &[LineUse], first: usize, at: impl Fn(usize) -> u64) -> Vec<u8> {
    let mut order: Vec<usize> = (0..intervals.len()).filter(|&j| j < uses.len()).collect();
    // the run before first, from `first` on; then this run up to `first`
    order.sort_by_key(|&j| (intervals[j].last < first, intervals[j].last, j));
    let mut holders = Vec::new();
    for j in order {
        leave(&uses[j], &mut holders, at(j));
    }
    holders
}

/// What a steady run (each starting where the last one ended) pays for
/// the buffers' lines that the other side holds when their first kernels
/// touch them (in tenths of a nanosecond, `line_sides::entry_cost`).
fn steady_cost(intervals: &[Interval], uses: &[LineUse], offsets: &[u64]) -> u64 {
    let mut order: Vec<usize> = (0..intervals.len().min(uses.len())).collect();
    order.sort_by_key(|&i| (intervals[i].first, i));
    let mut holders = Vec::new();
    let mut cost = 0;
    for round in 0..2 {
        for &i in &order {
            if round == 1 {
                cost += entry_cost(&uses[i], &holders, offsets[i]);
            }
            leave(&uses[i], &mut holders, offsets[i]);
        }
    }
    cost
}

/// What the first kernels to touch a buffer's lines pay, at `offset`, for
/// lines that the other side holds (`line_sides::entry_cost`).
fn entry_cost(use_: &LineUse, holders: &[u8], offset: u64) -> u64 {
    let first = (offset / crate::line_sides::LINE as u64) as usize;
    use_.entry.iter().enumerate().map(|(l, &flags)| crate::line_sides::entry_cost(flags, holders.get(first + l).copied().unwrap_or(0))).sum()
}

/// Lines this long or longer held by one side on both sides of a boundary
/// make it a place to align a buffer's split to.
const RUN: usize = 16;

/// The first line of a buffer that side 1 writes first, after lines that
/// side 0 does.
fn split_line(use_: &LineUse) -> Option<usize> {
    use crate::line_sides::WRITE;
    let only = |f: u8, s: usize| f & WRITE[s] != 0 && f & WRITE[1 - s] == 0;
    (RUN..use_.entry.len()).find(|&l| only(use_.entry[l], 1) && (l - RUN..l).all(|k| only(use_.entry[k], 0)))
}

/// The lines of the arena where a run of lines side 0 holds ends and a run
/// of lines side 1 holds begins.
fn side_boundaries(holders: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut side0_run = 0;
    for l in 0..holders.len() {
        if holders[l] == 0b01 {
            side0_run += 1;
            continue;
        }
        if side0_run >= RUN && holders[l..].iter().take(RUN).all(|&h| h == 0b10) && holders.len() >= l + RUN {
            found.push(l);
        }
        side0_run = 0;
    }
    found
}

/// Records who holds a buffer's lines after its last kernel.
fn leave(use_: &LineUse, holders: &mut Vec<u8>, offset: u64) {
    let first = (offset / crate::line_sides::LINE as u64) as usize;
    if holders.len() < first + use_.exit.len() {
        holders.resize(first + use_.exit.len(), 0);
    }
    for (l, &h) in use_.exit.iter().enumerate() {
        if h != 0 {
            holders[first + l] = h;
        }
    }
}

/// The lowest aligned offset where `size` bytes overlap none of the
/// `conflicts` (byte ranges, sorted).
fn lowest_free(conflicts: &[(u64, u64)], size: u64) -> u64 {
    let mut offset = 0u64;
    for &(start, end) in conflicts {
        if offset + size <= start {
            break;
        }
        offset = offset.max(end.div_ceil(ALIGNMENT) * ALIGNMENT);
    }
    offset
}

fn elem_bytes(elem: &str) -> Option<u64> {
    Some(match elem {
        "i1" | "i8" => 1,
        "i16" | "f16" | "bf16" => 2,
        "i32" | "f32" => 4,
        "i64" | "f64" | "index" => 8,
        _ => return None,
    })
}

/// Bytes of a static memref type such as `memref<1x6x28x28xf32>`.
fn memref_bytes(ty: &str) -> Option<u64> {
    let inner = ty.strip_prefix("memref<")?.strip_suffix('>')?;
    if inner.contains(',') {
        return None; // non-identity layout or memory space
    }
    let mut parts: Vec<&str> = inner.split('x').collect();
    let elem = elem_bytes(parts.pop()?)?;
    let mut n = 1u64;
    for p in parts {
        n *= p.parse::<u64>().ok()?;
    }
    Some(n * elem)
}

/// The top-level op of `body` that contains `op`.
pub(crate) fn top_level_ancestor(op: MlirOperation, body: MlirBlock) -> Option<MlirOperation> {
    let mut op = op;
    unsafe {
        loop {
            let block = mlirOperationGetBlock(op);
            if block.ptr.is_null() {
                return None;
            }
            if block.ptr == body.ptr {
                return Some(op);
            }
            op = mlirBlockGetParentOperation(block);
            if op.ptr.is_null() {
                return None;
            }
        }
    }
}

/// The index of the last top-level op that uses `value` or any memref
/// derived from it (views, reshapes, casts, and the results of the region
/// op that a branch or loop body yields it to).
pub(crate) fn last_use(value: MlirValue, body: MlirBlock, index: &HashMap<usize, usize>) -> usize {
    let mut last = 0;
    let mut work = vec![value];
    unsafe {
        while let Some(v) = work.pop() {
            let mut use_ = mlirValueGetFirstUse(v);
            while !use_.ptr.is_null() {
                let owner = mlirOpOperandGetOwner(use_);
                if let Some(top) = top_level_ancestor(owner, body) {
                    last = last.max(index.get(&(top.ptr as usize)).copied().unwrap_or(0));
                }
                // a yielded buffer lives on in the region op's results
                let terminator = matches!(
                    OperationRef::from_raw(owner).name().as_string_ref().as_str(),
                    Ok("scf.yield") | Ok("scf.condition")
                );
                let produces = if terminator { mlirBlockGetParentOperation(mlirOperationGetBlock(owner)) } else { owner };
                for r in 0..mlirOperationGetNumResults(produces) {
                    let result = mlirOperationGetResult(produces, r);
                    if mlirTypeIsAMemRef(mlirValueGetType(result)) {
                        work.push(result);
                    }
                }
                use_ = mlirOpOperandGetNextUse(use_);
            }
        }
    }
    last
}

/// Moves every allocation inside a region (a branch of `scf.if`, the body
/// of `scf.while`) to the function's body, just before the op that holds
/// it, so that it gets an arena slot like any other. Sizes are static, so
/// this is always possible; and it is right: what a loop iteration
/// allocates is only used within that iteration (a loop's carried values
/// are updated in place, see the lowering of `scf.while`), so one buffer
/// serves every iteration, and a branch's buffers are simply reserved
/// whichever branch runs.
fn hoist_nested_allocations(function: OperationRef, block: BlockRef) -> Result<()> {
    let mut nested = Vec::new();
    function.walk(melior::ir::operation::WalkOrder::PreOrder, |o| {
        if o.name().as_string_ref().as_str() == Ok("memref.alloc") && o.block().map(|b| b.to_raw().ptr) != Some(block.to_raw().ptr) {
            nested.push(o.to_raw());
        }
        melior::ir::operation::WalkResult::Advance
    });
    for alloc in nested {
        unsafe {
            if mlirOperationGetNumOperands(alloc) != 0 {
                bail!("internal error: an allocation of dynamic size after bufferization");
            }
            let top = top_level_ancestor(alloc, block.to_raw())
                .ok_or_else(|| anyhow::anyhow!("internal error: an allocation outside the function body"))?;
            mlirOperationMoveBefore(alloc, top);
        }
    }
    Ok(())
}

/// A `memref.view` of `source` (bytes) at byte `offset`, as `ty`, built
/// before `anchor`.
fn view_at<'c, 'a>(context: &'c melior::Context, block: &BlockRef<'c, 'a>, anchor: OperationRef<'c, 'a>, source: Value<'c, 'a>, offset: u64, ty: Type<'c>) -> Result<Value<'c, 'a>> {
    let location = anchor.location();
    let index_type = Type::index(context);
    let constant = OperationBuilder::new("arith.constant", location)
        .add_attributes(&[(Identifier::new(context, "value"), IntegerAttribute::new(index_type, offset as i64).into())])
        .add_results(&[index_type])
        .build()?;
    let constant = block.insert_operation_before(anchor, constant);
    let view = OperationBuilder::new("memref.view", location).add_operands(&[source, constant.result(0)?.into()]).add_results(&[ty]).build()?;
    let view = block.insert_operation_before(anchor, view);
    Ok(view.result(0)?.into())
}

/// Replaces every allocation in the entry function with a view of the
/// arena and returns the arena's size in bytes.
pub fn plan(context: &melior::Context, module: &Module) -> Result<u64> {
    let function = crate::mlir::entry_function(module)?;
    let region = function.region(0)?;
    let block: BlockRef = region.first_block().ok_or_else(|| anyhow::anyhow!("function has no body"))?;
    let arena: Value = block.argument(block.argument_count() - 1)?.into();

    hoist_nested_allocations(function, block)?;
    let mut tops: Vec<OperationRef> = Vec::new();
    let mut op = block.first_operation();
    while let Some(o) = op {
        tops.push(o);
        op = o.next_in_block();
    }
    let index: HashMap<usize, usize> = tops.iter().enumerate().map(|(i, o)| (o.to_raw().ptr as usize, i)).collect();

    // buffers copied whole into a slice of another live in that slice
    let raw: Vec<MlirOperation> = tops.iter().map(|o| o.to_raw()).collect();
    let placements = crate::arena_copies::find(&raw, block.to_raw(), &index);
    let placed: HashMap<usize, &crate::arena_copies::Placement> = placements.iter().map(|p| (p.alloc, p)).collect();

    // see `assign_offsets`
    let mut kernels = vec![0usize];
    for o in &tops {
        let id = o.name();
        let name = id.as_string_ref().as_str().unwrap_or_default();
        let computes = name != "memref.alloc" && !crate::border_fills::PURE.contains(&name);
        kernels.push(kernels[kernels.len() - 1] + computes as usize);
    }
    let mut allocs = Vec::new();
    let mut intervals = Vec::new();
    let mut interval_of: HashMap<usize, usize> = HashMap::new();
    for (i, o) in tops.iter().enumerate() {
        if o.name().as_string_ref().as_str() != Ok("memref.alloc") || placed.contains_key(&i) {
            continue;
        }
        let result = o.result(0)?;
        let ty = result.r#type().to_string();
        let size = memref_bytes(&ty).ok_or_else(|| anyhow::anyhow!("internal error: cannot plan allocation of {ty}"))?;
        let last = last_use(result.to_raw(), block.to_raw(), &index).max(i);
        interval_of.insert(i, intervals.len());
        allocs.push(*o);
        intervals.push(Interval { size: size.max(1), first: i, last });
    }
    // a buffer holding another is live from that one's allocation on
    for p in &placements {
        let into = &mut intervals[interval_of[&p.into]];
        into.first = into.first.min(p.alloc);
    }
    // which half of the pool touches which lines of each buffer
    let mut homes: HashMap<usize, crate::line_sides::Home> = HashMap::new();
    for (&top, &k) in &interval_of {
        homes.insert(raw[top].ptr as usize, crate::line_sides::Home { buffer: k, shift: 0 });
    }
    for p in &placements {
        homes.insert(raw[p.alloc].ptr as usize, crate::line_sides::Home { buffer: interval_of[&p.into], shift: p.offset as i64 });
    }
    let lines: Vec<usize> = intervals.iter().map(|it| it.size.div_ceil(crate::line_sides::LINE as u64) as usize).collect();
    let dropped: Vec<MlirOperation> = placements.iter().map(|p| p.copy).collect();
    let touches = crate::line_sides::touches(&raw, &dropped, &homes, &lines);
    let uses = crate::line_sides::line_uses(&touches, &lines);
    let loops: Vec<Option<(i64, i64, i64)>> = tops
        .iter()
        .map(|o| unsafe { crate::border_fills::is_parallel_loop(o.to_raw()) }.then(|| crate::mlir::constant_loop_bounds(o.to_raw())).flatten())
        .collect();
    let (offsets, total) = plan_keeping_joins(&intervals, &kernels, &uses, &loops);

    // A buffer holding others and those it holds are views of one byte
    // view of their slot, not of the arena: what one kernel writes through
    // one of them another reads through the other, so none of them is a
    // kernel's private scratch (`parallel::is_scratch` looks for views of
    // the arena that only one kernel uses).
    let mut shared: HashMap<usize, Value> = HashMap::new();
    for p in &placements {
        if !shared.contains_key(&p.into) {
            let k = interval_of[&p.into];
            let bytes_type = Type::parse(context, &format!("memref<{}xi8>", intervals[k].size)).expect("a byte memref type");
            let bytes = view_at(context, &block, tops[0], arena, offsets[k], bytes_type)?;
            shared.insert(p.into, bytes);
        }
    }
    let mut views: Vec<(OperationRef, Value, u64)> = Vec::new();
    for (k, alloc) in allocs.into_iter().enumerate() {
        let top = index[&(alloc.to_raw().ptr as usize)];
        views.push(match shared.get(&top) {
            Some(&bytes) => (alloc, bytes, 0),
            None => (alloc, arena, offsets[k]),
        });
    }
    views.extend(placements.iter().map(|p| (tops[p.alloc], shared[&p.into], p.offset)));
    for (alloc, source, offset) in views {
        let result = alloc.result(0)?;
        let view = view_at(context, &block, alloc, source, offset, result.r#type())?;
        // Views of two buffers that share a slot at different times must
        // stay two values: CSE would merge alike ones, and a temporary of
        // one kernel would then look used by another (to
        // `parallel::is_scratch`), and be shared by its threads.
        let buffer = IntegerAttribute::new(Type::index(context), index[&(alloc.to_raw().ptr as usize)] as i64);
        unsafe {
            let name = Identifier::new(context, "aotc.buffer");
            mlirOperationSetAttributeByName(mlirOpResultGetOwner(view.to_raw()), mlirIdentifierStr(name.to_raw()), buffer.to_raw());
        }
        unsafe {
            mlirValueReplaceAllUsesOfWith(result.to_raw(), view.to_raw());
            mlirOperationRemoveFromParent(alloc.to_raw());
            mlirOperationDestroy(alloc.to_raw());
        }
    }
    // each of these now copies memory onto itself
    for p in &placements {
        unsafe {
            mlirOperationRemoveFromParent(p.copy);
            mlirOperationDestroy(p.copy);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(size: u64, first: usize, last: usize) -> Interval {
        Interval { size, first, last }
    }

    /// Places `intervals` with every op a kernel, knowing nothing of their
    /// lines.
    fn assign(intervals: &[Interval]) -> (Vec<u64>, u64) {
        assign_offsets(intervals, &kernels(intervals), &[])
    }

    fn kernels(intervals: &[Interval]) -> Vec<usize> {
        let ops = intervals.iter().map(|it| it.last + 2).max().unwrap_or(1);
        (0..ops).collect()
    }

    #[test]
    fn a_buffer_takes_the_slot_of_the_last_dead_buffer_of_its_size() {
        // the second dies last: the third takes its slot, not the lowest
        let (offsets, _) = assign(&[interval(100, 0, 1), interval(100, 0, 3), interval(100, 4, 5)]);
        assert_eq!(offsets, vec![0, 128, 128]);
        // a buffer of another size takes the lowest free slot
        let (offsets, _) = assign(&[interval(100, 0, 1), interval(100, 0, 3), interval(90, 4, 5)]);
        assert_eq!(offsets, vec![0, 128, 0]);
        // and so does one whose twin died too long ago (its lines are gone
        // from the caches anyway)
        let late = 4 + TWIN_WINDOW_KERNELS + 1;
        let (offsets, _) = assign(&[interval(100, 0, 1), interval(100, 0, 3), interval(100, late, late + 1)]);
        assert_eq!(offsets, vec![0, 128, 0]);
    }

    /// A buffer of two lines written first and left, line by line, by the
    /// sides `sides` (the first line's, the second's).
    fn used(sides: [usize; 2]) -> LineUse {
        use crate::line_sides::WRITE;
        LineUse { entry: sides.iter().map(|&s| WRITE[s]).collect(), exit: sides.iter().map(|&s| 1 << s).collect() }
    }

    #[test]
    fn a_buffer_goes_where_its_writers_held_the_lines() {
        // q (written bottom-up: side 1 its first line) and p (top-down) die
        // together; a is live; r (top-down) takes p's slot, not q's, the
        // lower, which the twin rule takes
        let intervals = [interval(128, 0, 2), interval(128, 1, 2), interval(128, 2, 4), interval(128, 3, 4)];
        let uses = [used([1, 0]), used([0, 1]), used([0, 1]), used([0, 1])];
        let (offsets, total) = assign_offsets(&intervals, &kernels(&intervals), &uses);
        assert_eq!(offsets[3], offsets[1]);
        assert_eq!(total, 384);
        assert_eq!(assign(&intervals).0[3], assign(&intervals).0[0]);
        assert_eq!(steady_cost(&intervals, &uses, &offsets), 0);
        assert_eq!(steady_cost(&intervals, &uses, &assign(&intervals).0), 4 * 32);
    }

    #[test]
    fn a_loop_keeps_what_it_reads_from_the_next_loop_of_its_bounds() {
        let (b, c) = (Some((0, 64, 1)), Some((0, 32, 1)));
        // ops: 0 alloc, 1 loop, 2 copy, 3 loop (same bounds), 4 loop (others)
        let loops = [None, b, None, b, c];
        assert_eq!(joinable_through(1, &loops), 3);
        assert_eq!(joinable_through(3, &loops), 3);
        assert_eq!(joinable_through(0, &loops), 0);
        assert_eq!(joinable_through(2, &loops), 2);
        // a read last by loop 1 and b first written by loop 3: kept apart,
        // they cannot share a slot; with no line sides (a steady run costs
        // nothing either way) the plain plan, which shares it, stays
        let intervals = [interval(128, 0, 1), interval(128, 2, 3)];
        let kept = kept_joinable(&intervals, &loops);
        assert_ne!(assign(&kept).0[0], assign(&kept).0[1]);
        let (offsets, total) = plan_keeping_joins(&intervals, &kernels(&intervals), &[], &loops);
        assert_eq!((offsets[0], offsets[1], total), (0, 0, 128));
    }

    #[test]
    fn disjoint_lifetimes_share_memory() {
        let (offsets, total) = assign(&[
            interval(100, 0, 1),
            interval(100, 2, 3),
        ]);
        assert_eq!(offsets, vec![0, 0]);
        assert_eq!(total, 128);
    }

    #[test]
    fn overlapping_lifetimes_do_not_overlap_in_memory() {
        let intervals = [
            interval(100, 0, 2),
            interval(64, 1, 3),
            interval(30, 2, 2),
        ];
        let (offsets, total) = assign(&intervals);
        for i in 0..3 {
            for j in 0..i {
                let (a, b) = (&intervals[i], &intervals[j]);
                if a.first <= b.last && b.first <= a.last {
                    let disjoint = offsets[i] + a.size <= offsets[j] || offsets[j] + b.size <= offsets[i];
                    assert!(disjoint, "{i} and {j} overlap: {offsets:?}");
                }
            }
            assert_eq!(offsets[i] % ALIGNMENT, 0);
        }
        assert!(total >= 194);
    }

    #[test]
    fn sizes_of_memref_types() {
        assert_eq!(memref_bytes("memref<1x6x28x28xf32>"), Some(6 * 28 * 28 * 4));
        assert_eq!(memref_bytes("memref<6x14x14xi1>"), Some(6 * 14 * 14));
        assert_eq!(memref_bytes("memref<?xf32>"), None);
    }
}
