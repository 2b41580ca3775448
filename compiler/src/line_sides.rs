//! Which half of the worker pool touches each cache line of each buffer,
//! kernel by kernel: what the memory plan (`arena`) needs to put a buffer
//! where the threads that write it first were the last to touch those
//! bytes.
//!
//! With its threads' cores on two last-level caches, a core that writes a
//! line the other cache holds (it wrote or read it since this core did)
//! waits for the line to cross between them: ~3.2 ns a line on this
//! project's machine, against ~0.56 for reading a line the other wrote
//! (`tools/line_sharing.py`, fitted on resnet18). The pool gives each
//! thread one home range of a parallel loop (`aotc_runtime::pool::chunk`),
//! so the first half of a loop's iterations runs on the first half of the
//! threads: two *sides*, each a group of threads that shares a cache when
//! the threads are spread over two (2 threads on two dies, 16 on a 2-CCD
//! desktop). Side 0 also runs the serial kernels (the calling thread runs
//! range 0).
//!
//! The bytes a side touches are found on the bufferized IR, before the
//! kernels are outlined: for a top-level loop marked parallel, its
//! induction variable is bound to each side's iterations; loops inside are
//! enumerated while few, else their variable is bound to its whole range;
//! index arithmetic is evaluated over ranges; each access (a vector
//! transfer, load or store, a linalg op or a copy) touches, per side, the
//! box of elements its indices' ranges span in its buffer, through the
//! views it is made from (one term per index, so that a band of tiles in
//! each of 36 Winograd elements is 36 spans, not the span around them;
//! gaps of less than a line are filled). What cannot be evaluated touches
//! the whole view. It is an estimate: a range covers the values between
//! an index's lowest and highest, whatever its step.

use crate::kernels::PARALLEL;
use crate::mlir::{constant_integer, constant_loop_bounds, induction_variable, name_of};
use crate::parallel::trip_count;
use melior::ir::operation::{OperationLike, OperationRef};
use mlir_sys::*;
use std::collections::HashMap;

/// Bytes in a cache line.
pub const LINE: i64 = 64;
/// Flags of one line in one kernel: which sides read it and which write it.
pub const READ: [u8; 2] = [1, 4];
pub const WRITE: [u8; 2] = [2, 8];

/// Top-level ops that copy or fill a view: each side does its half of the
/// view's first dim of more than one element.
const COPIES: &[&str] = &["memref.copy", "linalg.copy", "linalg.fill", "linalg.map"];

/// Loops inside a parallel loop are walked once per iteration while the
/// walks of one access multiply to at most this many; deeper loops bind
/// their variable to their whole range.
const ENUMERATED: i64 = 64;

/// Where an allocation's bytes are: the buffer (an index of the plan) and
/// the byte offset in it (an allocation placed in a slice of another).
#[derive(Debug, Clone, Copy)]
pub struct Home {
    pub buffer: usize,
    pub shift: i64,
}

/// The lines each buffer's kernels touch, per kernel: for each top-level
/// op that touches buffers, its index and per buffer the flags of each of
/// its lines (`READ`/`WRITE` bits per side).
pub type Touches = Vec<(usize, HashMap<usize, Vec<u8>>)>;

/// The touches of every top-level op in `tops` but those `skipped` (the
/// copies that the plan drops). `homes`: each allocation op (by pointer)
/// and where its bytes are; `lines`: each buffer's lines.
/// A model too small for the pool (`parallel::MIN_MODEL_WORK`, its
/// buffers' bytes standing for all it touches) touches nothing apart.
pub fn touches(tops: &[MlirOperation], skipped: &[MlirOperation], homes: &HashMap<usize, Home>, lines: &[usize]) -> Touches {
    let mut all = Vec::new();
    let work = tops.iter().map(|&op| crate::parallel::work(op)).fold(0i64, i64::saturating_add);
    let bytes = lines.iter().sum::<usize>() as i64 * LINE;
    if work < crate::parallel::MIN_MODEL_WORK && bytes < crate::parallel::MIN_MODEL_BYTES {
        return all;
    }
    for (index, &op) in tops.iter().enumerate() {
        if skipped.iter().any(|s| s.ptr == op.ptr) {
            continue;
        }
        let mut walk = Walk { env: HashMap::new(), homes, lines, out: HashMap::new(), side: 0, enumerated: 1, split: false };
        if COPIES.contains(&name_of(op)) {
            // `kernels::copies` makes each a loop over its first dim of more than one
            // row, parallel, and joins a padded buffer's border fills to the
            // loop over the channels that writes its interior
            walk.split = true;
            for side in 0..2 {
                walk.side = side;
                walk.op(op);
            }
            all.push((index, walk.out));
            continue;
        }
        // serially first (side 0): what a kernel the pool does not share touches
        walk.op(op);
        if let Some(ranges) = side_ranges(op).filter(|_| is_worth_sharing(op, &walk.out)) {
            walk.out.clear();
            for (side, bindings) in ranges.into_iter().enumerate() {
                walk.side = side;
                for binding in bindings {
                    walk.env = binding.into_iter().collect();
                    walk.op(op);
                }
            }
        }
        if !walk.out.is_empty() {
            all.push((index, walk.out));
        }
    }
    all
}

/// Whether a parallel loop does enough to be shared by the pool (the rule
/// of `parallel::plan_kernel`), given what it touches.
fn is_worth_sharing(op: MlirOperation, touched: &HashMap<usize, Vec<u8>>) -> bool {
    let bytes: usize = touched.values().map(|flags| flags.iter().filter(|&&f| f != 0).count() * LINE as usize).sum();
    crate::parallel::work(op) >= crate::parallel::MIN_WORK || bytes as i64 >= crate::parallel::MIN_BYTES
}

/// An index value's range: the lowest and highest value it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Range {
    lo: i64,
    hi: i64,
}

impl Range {
    fn at(v: i64) -> Range {
        Range { lo: v, hi: v }
    }
    /// The values `lb + step * k` for `k` in `[first, end)`.
    fn iterations(lb: i64, step: i64, first: i64, end: i64) -> Range {
        Range { lo: lb + step * first, hi: lb + step * (end - 1) }
    }
}

/// For a top-level loop that the pool shares, per side, the bindings of
/// loop variables that walk the side's iterations: the outer loop's
/// variable bound to the side's home range, or, when the outer loop shares
/// its range with the parallel loop inside it (`parallel::COLLAPSE_BELOW`),
/// one binding per outer iteration with the inner loop's part of it.
fn side_ranges(op: MlirOperation) -> Option<Vec<Vec<Vec<(usize, Range)>>>> {
    if name_of(op) != "scf.for" || !unsafe { OperationRef::from_raw(op) }.has_attribute(PARALLEL) {
        return None;
    }
    let (lb, ub, step) = constant_loop_bounds(op)?;
    let trips = trip_count((lb, ub, step));
    let iv = induction_variable(op).ptr as usize;
    let inner = if trips < crate::parallel::COLLAPSE_BELOW { crate::parallel::collapsed_inner_loop(op) } else { None };
    let inner = inner.and_then(|i| Some((i, constant_loop_bounds(i)?)));
    let inner_trips = inner.map_or(1, |(_, bounds)| trip_count(bounds));
    let total = trips * inner_trips;
    if total < 2 {
        return None;
    }
    let mut sides = Vec::new();
    for side in 0..2 {
        let (begin, end) = aotc_runtime::pool::chunk(total, side, 2);
        let mut bindings = Vec::new();
        match inner {
            None => bindings.push(vec![(iv, Range::iterations(lb, step, begin, end))]),
            Some((inner_op, (ilb, _, istep))) => {
                let inner_iv = induction_variable(inner_op).ptr as usize;
                for o in 0..trips {
                    let (from, to) = ((begin - o * inner_trips).max(0), (end - o * inner_trips).min(inner_trips));
                    if from < to {
                        bindings.push(vec![(iv, Range::at(lb + step * o)), (inner_iv, Range::iterations(ilb, istep, from, to))]);
                    }
                }
            }
        }
        sides.push(bindings);
    }
    Some(sides)
}

/// Elements of a buffer: `Σ stride * x` over the terms, each `x` in its
/// range (one term per index of a view or of the views it is a part of,
/// so that a block of a buffer stays a block and not the span around it).
type Terms = Vec<(i64, Range)>;

/// A view's place in its buffer: where its element 0 is (in elements of
/// the view's type, from the buffer's first byte), its strides and shape,
/// its element's bytes.
struct Located {
    home: Home,
    offset: Option<Terms>,
    strides: Vec<i64>,
    shape: Vec<i64>,
    element_bytes: i64,
}

struct Walk<'a> {
    /// Loop variables bound to a value or a range.
    env: HashMap<usize, Range>,
    homes: &'a HashMap<usize, Home>,
    lines: &'a [usize],
    out: HashMap<usize, Vec<u8>>,
    side: usize,
    /// How many times the current access is walked (enumerated loops).
    enumerated: i64,
    /// Whether whole views are split by their first dim of more than one
    /// element, this side marking its half (see [`COPIES`]).
    split: bool,
}

impl Walk<'_> {
    fn op(&mut self, op: MlirOperation) {
        let name = name_of(op);
        match name {
            "scf.for" => self.for_loop(op),
            "memref.prefetch" => {}
            "vector.transfer_read" => self.access(op, 0, 1, vector_shape(unsafe { mlirOperationGetResult(op, 0) }), false),
            "vector.transfer_write" => self.access(op, 1, 2, vector_shape(unsafe { mlirOperationGetOperand(op, 0) }), true),
            "vector.load" | "vector.maskedload" => self.access(op, 0, 1, vector_shape(unsafe { mlirOperationGetResult(op, 0) }), false),
            "vector.store" => self.access(op, 1, 2, vector_shape(unsafe { mlirOperationGetOperand(op, 0) }), true),
            "vector.maskedstore" => {
                let value = unsafe { mlirOperationGetOperand(op, mlirOperationGetNumOperands(op) - 1) };
                self.access(op, 0, 1, vector_shape(value), true)
            }
            "memref.load" => self.access(op, 0, 1, Vec::new(), false),
            "memref.store" => self.access(op, 1, 2, Vec::new(), true),
            "memref.copy" => {
                self.whole(unsafe { mlirOperationGetOperand(op, 0) }, false);
                self.whole(unsafe { mlirOperationGetOperand(op, 1) }, true);
            }
            _ if name.starts_with("linalg.") => {
                // destination-passing style: the last `outs` operands are written
                let operands = unsafe { mlirOperationGetNumOperands(op) };
                let outs = unsafe { mlirOperationGetNumResults(op) }.max(dps_inits(op));
                for i in 0..operands {
                    self.whole(unsafe { mlirOperationGetOperand(op, i) }, i >= operands - outs);
                }
            }
            "memref.subview" | "memref.expand_shape" | "memref.collapse_shape" | "memref.cast" | "memref.reinterpret_cast"
            | "memref.view" | "memref.alloc" | "memref.dealloc" | "memref.extract_strided_metadata" | "scf.yield"
            | "scf.condition" => {}
            _ => {
                // an op this walk does not know reads all of its views
                for i in 0..unsafe { mlirOperationGetNumOperands(op) } {
                    self.whole(unsafe { mlirOperationGetOperand(op, i) }, false);
                }
                for r in 0..unsafe { mlirOperationGetNumRegions(op) } {
                    self.region(unsafe { mlirOperationGetRegion(op, r) });
                }
            }
        }
    }

    fn region(&mut self, region: MlirRegion) {
        let mut block = unsafe { mlirRegionGetFirstBlock(region) };
        while !block.ptr.is_null() {
            let mut op = unsafe { mlirBlockGetFirstOperation(block) };
            while !op.ptr.is_null() {
                self.op(op);
                op = unsafe { mlirOperationGetNextInBlock(op) };
            }
            block = unsafe { mlirBlockGetNextInRegion(block) };
        }
    }

    fn for_loop(&mut self, op: MlirOperation) {
        let region = unsafe { mlirOperationGetRegion(op, 0) };
        let iv = induction_variable(op).ptr as usize;
        if self.env.contains_key(&iv) {
            // a side's share, bound by `touches`
            return self.region(region);
        }
        let bound = |i| self.eval(unsafe { mlirOperationGetOperand(op, i) });
        let (Some(lb), Some(ub), Some(step)) = (bound(0), bound(1), bound(2)) else {
            self.env.remove(&iv);
            return self.region(region);
        };
        if lb.lo == lb.hi && ub.lo == ub.hi && step.lo == step.hi {
            let trips = trip_count((lb.lo, ub.lo, step.lo));
            if trips == 0 {
                return;
            }
            if self.enumerated * trips <= ENUMERATED {
                self.enumerated *= trips;
                for k in 0..trips {
                    self.env.insert(iv, Range::at(lb.lo + step.lo * k));
                    self.region(region);
                }
                self.enumerated /= trips;
            } else {
                self.env.insert(iv, Range::iterations(lb.lo, step.lo, 0, trips));
                self.region(region);
            }
        } else {
            self.env.insert(iv, Range { lo: lb.lo, hi: (ub.hi - 1).max(lb.lo) });
            self.region(region);
        }
        self.env.remove(&iv);
    }

    /// An access of `shape` (a vector's, or one element) at the indices
    /// that follow operand `memref` (from operand `first_index` on).
    fn access(&mut self, op: MlirOperation, memref: isize, first_index: isize, shape: Vec<i64>, write: bool) {
        let value = unsafe { mlirOperationGetOperand(op, memref) };
        let Some(at) = self.locate(value) else { return };
        let rank = at.shape.len();
        let indices: Option<Vec<Range>> = (0..rank).map(|d| self.eval(unsafe { mlirOperationGetOperand(op, first_index + d as isize) })).collect();
        let (Some(indices), Some(mut terms)) = (indices, at.offset.clone()) else {
            return self.mark_whole(&at, write);
        };
        // the vector's dims are the memref's last ones (a minor identity map)
        let mut extent = vec![1i64; rank];
        for (k, &size) in shape.iter().rev().enumerate() {
            if k < rank {
                extent[rank - 1 - k] = size;
            }
        }
        for d in 0..rank {
            terms.push((at.strides[d], Range { lo: indices[d].lo, hi: indices[d].hi + extent[d] - 1 }));
        }
        self.mark(&at, terms, write);
    }

    /// An op that reads or writes all of `value`'s view.
    fn whole(&mut self, value: MlirValue, write: bool) {
        if let Some(at) = self.locate(value) {
            self.mark_whole(&at, write);
        }
    }

    fn mark_whole(&mut self, at: &Located, write: bool) {
        let terms = match &at.offset {
            Some(offset) => {
                let mut terms = offset.clone();
                let split = if self.split { at.shape.iter().position(|&n| n > 1) } else { None };
                for (d, (&n, &s)) in at.shape.iter().zip(&at.strides).enumerate() {
                    let (begin, end) = if split == Some(d) { aotc_runtime::pool::chunk(n, self.side, 2) } else { (0, n) };
                    if begin >= end {
                        return;
                    }
                    terms.push((s, Range { lo: begin, hi: end - 1 }));
                }
                terms
            }
            None => vec![(1, Range { lo: 0, hi: i64::MAX / 16 })],
        };
        self.mark(at, terms, write)
    }

    /// The elements `terms` of `at`'s buffer, read or written by this side.
    fn mark(&mut self, at: &Located, terms: Terms, write: bool) {
        let lines = self.lines[at.home.buffer];
        let flags = self.out.entry(at.home.buffer).or_insert_with(|| vec![0; lines]);
        let bit = if write { WRITE[self.side] } else { READ[self.side] };
        for (start, length) in byte_spans(&terms, at.element_bytes) {
            let first = ((at.home.shift.saturating_add(start)) / LINE).max(0) as usize;
            let last = ((at.home.shift.saturating_add(start).saturating_add(length - 1) / LINE) as usize).min(lines.saturating_sub(1));
            for f in flags.iter_mut().take(last + 1).skip(first) {
                *f |= bit;
            }
        }
    }

    /// The buffer a memref value views and where (`None` for values that
    /// view no planned buffer: the model's inputs, outputs, parameters).
    fn locate(&self, value: MlirValue) -> Option<Located> {
        let ty = unsafe { mlirValueGetType(value) };
        if !unsafe { mlirTypeIsAMemRef(ty) } || !unsafe { mlirValueIsAOpResult(value) } {
            return None;
        }
        let def = unsafe { mlirOpResultGetOwner(value) };
        let rank = unsafe { mlirShapedTypeGetRank(ty) } as usize;
        let mut strides = vec![0i64; rank];
        let mut static_offset = 0i64;
        let strided = unsafe { mlirMemRefTypeGetStridesAndOffset(ty, strides.as_mut_ptr(), &mut static_offset) }.value != 0;
        let shape: Vec<i64> = (0..rank).map(|d| unsafe { mlirShapedTypeGetDimSize(ty, d as isize) }).collect();
        let element_bytes = crate::parallel::element_bytes(ty)?;
        let dynamic = |v: i64| unsafe { mlirShapedTypeIsDynamicStrideOrOffset(v) };
        if !strided || strides.iter().any(|&s| dynamic(s) || s < 0) || shape.iter().any(|&n| n < 0) {
            let home = self.home_of(def)?;
            return Some(Located { home, offset: None, strides, shape, element_bytes });
        }
        let offset = |source_offset: Option<Terms>| if dynamic(static_offset) { source_offset } else { Some(vec![(1, Range::at(static_offset))]) };
        let (home, offset) = match name_of(def) {
            "memref.alloc" => (*self.homes.get(&(def.ptr as usize))?, Some(Vec::new())),
            "memref.subview" => {
                let source = self.locate(unsafe { mlirOperationGetOperand(def, 0) })?;
                let begin = self.subview_begin(def, &source);
                (source.home, offset(begin))
            }
            "memref.expand_shape" | "memref.collapse_shape" | "memref.cast" | "memref.reinterpret_cast" => {
                let source = self.locate(unsafe { mlirOperationGetOperand(def, 0) })?;
                let same = if source.element_bytes == element_bytes { source.offset } else { None };
                (source.home, offset(same))
            }
            _ => return None,
        };
        Some(Located { home, offset, strides, shape, element_bytes })
    }

    fn home_of(&self, def: MlirOperation) -> Option<Home> {
        if name_of(def) == "memref.alloc" {
            return self.homes.get(&(def.ptr as usize)).copied();
        }
        if unsafe { mlirOperationGetNumOperands(def) } == 0 {
            return None;
        }
        let source = unsafe { mlirOperationGetOperand(def, 0) };
        if !unsafe { mlirValueIsAOpResult(source) } {
            return None;
        }
        self.home_of(unsafe { mlirOpResultGetOwner(source) })
    }

    /// Where a subview's element 0 is in its source's buffer, in elements.
    fn subview_begin(&self, subview: MlirOperation, source: &Located) -> Option<Terms> {
        let attr = unsafe { mlirOperationGetAttributeByName(subview, mlirStringRefCreateFromCString(c"static_offsets".as_ptr())) };
        if attr.ptr.is_null() || !unsafe { mlirAttributeIsADenseI64Array(attr) } {
            return None;
        }
        let mut at = source.offset.clone()?;
        let mut dynamic_operand = 1;
        for d in 0..unsafe { mlirDenseArrayGetNumElements(attr) } {
            let value = unsafe { mlirDenseI64ArrayGetElement(attr, d) };
            let offset = if value == i64::MIN {
                dynamic_operand += 1;
                self.eval(unsafe { mlirOperationGetOperand(subview, dynamic_operand - 1) })?
            } else {
                Range::at(value)
            };
            let stride = *source.strides.get(d as usize)?;
            at.push((stride, offset));
        }
        Some(at)
    }

    /// The range of an index value, when the ops that compute it are known.
    fn eval(&self, value: MlirValue) -> Option<Range> {
        if let Some(&r) = self.env.get(&(value.ptr as usize)) {
            return Some(r);
        }
        if let Some(c) = constant_integer(value) {
            return Some(Range::at(c));
        }
        if !unsafe { mlirValueIsAOpResult(value) } {
            return None;
        }
        let def = unsafe { mlirOpResultGetOwner(value) };
        let operand = |i| self.eval(unsafe { mlirOperationGetOperand(def, i) });
        let corners = |a: Range, b: Range, f: fn(i64, i64) -> i64| {
            let v = [f(a.lo, b.lo), f(a.lo, b.hi), f(a.hi, b.lo), f(a.hi, b.hi)];
            Range { lo: *v.iter().min().unwrap(), hi: *v.iter().max().unwrap() }
        };
        Some(match name_of(def) {
            "arith.addi" => corners(operand(0)?, operand(1)?, |a, b| a + b),
            "arith.subi" => corners(operand(0)?, operand(1)?, |a, b| a - b),
            "arith.muli" => corners(operand(0)?, operand(1)?, |a, b| a * b),
            "arith.minui" | "arith.minsi" => corners(operand(0)?, operand(1)?, i64::min),
            "arith.maxui" | "arith.maxsi" => corners(operand(0)?, operand(1)?, i64::max),
            "arith.divui" | "arith.divsi" | "arith.floordivsi" => {
                let (a, b) = (operand(0)?, operand(1)?);
                if b.lo != b.hi || b.lo <= 0 || a.lo < 0 {
                    return None;
                }
                Range { lo: a.lo / b.lo, hi: a.hi / b.lo }
            }
            "arith.remui" | "arith.remsi" => {
                let (a, b) = (operand(0)?, operand(1)?);
                if b.lo != b.hi || b.lo <= 0 || a.lo < 0 {
                    return None;
                }
                if a.lo / b.lo == a.hi / b.lo {
                    Range { lo: a.lo % b.lo, hi: a.hi % b.lo }
                } else {
                    Range { lo: 0, hi: b.lo - 1 }
                }
            }
            "arith.index_cast" | "arith.index_castui" => operand(0)?,
            "arith.select" => {
                let (a, b) = (operand(1)?, operand(2)?);
                Range { lo: a.lo.min(b.lo), hi: a.hi.max(b.hi) }
            }
            _ => return None,
        })
    }
}

/// Most spans one access is marked as; past it, the span around them.
const SPANS: i64 = 1 << 14;

/// The byte spans `(start, length)` of the elements `terms` (element
/// bytes `element`): the terms of small strides that leave no gap of a
/// line between their values join into one span, the others are walked.
fn byte_spans(terms: &Terms, element: i64) -> Vec<(i64, i64)> {
    let mut base = 0i64;
    let mut varying: Vec<(i64, i64)> = Vec::new(); // (stride in bytes, values - 1)
    for &(stride, range) in terms {
        base = base.saturating_add(range.lo.saturating_mul(stride).saturating_mul(element));
        if range.hi > range.lo && stride != 0 {
            varying.push((stride.saturating_mul(element), range.hi - range.lo));
        }
    }
    varying.sort();
    let mut length = element;
    let mut walked: Vec<(i64, i64)> = Vec::new();
    let mut count = 1i64;
    for (stride, n) in varying {
        if walked.is_empty() && stride <= length + LINE {
            length = length.max(stride.saturating_mul(n).saturating_add(length));
        } else {
            count = count.saturating_mul(n + 1);
            walked.push((stride, n));
        }
    }
    if count > SPANS {
        // the span around them all
        let extent: i64 = walked.iter().map(|&(stride, n)| stride.saturating_mul(n)).fold(0, i64::saturating_add);
        return vec![(base, extent.saturating_add(length))];
    }
    let mut starts = vec![base];
    for (stride, n) in walked {
        starts = starts.iter().flat_map(|&s| (0..=n).map(move |k| s + stride * k)).collect();
    }
    starts.into_iter().map(|s| (s, length)).collect()
}

/// The number of `outs` operands of a linalg op (its operand segments).
fn dps_inits(op: MlirOperation) -> isize {
    let attr = unsafe { mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(c"operandSegmentSizes".as_ptr())) };
    if attr.ptr.is_null() || unsafe { mlirDenseArrayGetNumElements(attr) } < 2 {
        return 1;
    }
    unsafe { mlirDenseI32ArrayGetElement(attr, 1) as isize }
}

fn vector_shape(value: MlirValue) -> Vec<i64> {
    let ty = unsafe { mlirValueGetType(value) };
    if !unsafe { mlirTypeIsAVector(ty) } {
        return Vec::new();
    }
    (0..unsafe { mlirShapedTypeGetRank(ty) }).map(|d| unsafe { mlirShapedTypeGetDimSize(ty, d as isize) }).collect()
}

/// How a buffer's lines meet the sides over its life, for the plan: per
/// line, the flags of the first kernel that touches it, and which sides
/// hold it after the last (bit `s` for side `s`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineUse {
    pub entry: Vec<u8>,
    pub exit: Vec<u8>,
}

/// Each buffer's [`LineUse`], from the kernels' [`touches`] in order.
pub fn line_uses(touches: &Touches, lines: &[usize]) -> Vec<LineUse> {
    let mut uses: Vec<LineUse> = lines.iter().map(|&n| LineUse { entry: vec![0; n], exit: vec![0; n] }).collect();
    for (_, buffers) in touches {
        for (&buffer, flags) in buffers {
            let use_ = &mut uses[buffer];
            for (line, &f) in flags.iter().enumerate() {
                if f == 0 {
                    continue;
                }
                if use_.entry[line] == 0 {
                    use_.entry[line] = f;
                }
                use_.exit[line] = holders_after(use_.exit[line], f);
            }
        }
    }
    uses
}

/// Which sides hold a line after a kernel with `flags` touches it, when
/// `holders` held it before: a write leaves it with the writers (and the
/// sides that read it in the same kernel), a read adds the readers.
pub fn holders_after(holders: u8, flags: u8) -> u8 {
    let (readers, writers) = sides_of(flags);
    if writers != 0 {
        writers | readers
    } else {
        holders | readers
    }
}

/// The sides that read and that write, from a line's flags (bit `s`).
pub fn sides_of(flags: u8) -> (u8, u8) {
    let bits = |b: [u8; 2]| (0..2).filter(|&s| flags & b[s] != 0).fold(0u8, |m, s| m | 1 << s);
    (bits(READ), bits(WRITE))
}

/// What a kernel pays, in tenths of a nanosecond, to touch a line with
/// `flags` that `holders` hold: writing a line the other side holds
/// (~3.2 ns), reading one only the other side holds (~0.56 ns).
pub fn entry_cost(flags: u8, holders: u8) -> u64 {
    let (readers, writers) = sides_of(flags);
    if writers != 0 {
        if holders & !writers != 0 { 32 } else { 0 }
    } else if holders != 0 && readers & !holders != 0 {
        6
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_costs_when_the_other_side_holds_the_line() {
        assert_eq!(entry_cost(WRITE[0], 0b01), 0);
        assert_eq!(entry_cost(WRITE[0], 0b10), 32);
        assert_eq!(entry_cost(WRITE[1], 0b11), 32);
        assert_eq!(entry_cost(READ[1], 0b01), 6);
        assert_eq!(entry_cost(READ[1], 0b11), 0);
        assert_eq!(entry_cost(READ[0], 0), 0);
    }

    /// The lines each side reads and writes of two buffers that a parallel
    /// loop of 16384 rows (one line each) copies, `b`'s rows from `a`'s in
    /// reverse order, through a slice of `b`.
    #[test]
    fn each_side_touches_the_rows_of_its_iterations() {
        let context = aotc_dialects::new_context();
        let module = crate::mlir::parse(
            &context,
            "func.func @f() {
               %c0 = arith.constant 0 : index
               %c1 = arith.constant 1 : index
               %c16383 = arith.constant 16383 : index
               %c16384 = arith.constant 16384 : index
               %cst = arith.constant 0.0 : f32
               %a = memref.alloc() : memref<16384x16xf32>
               %b = memref.alloc() : memref<16384x16xf32>
               scf.for %i = %c0 to %c16384 step %c1 {
                 %j = arith.subi %c16383, %i : index
                 %v = vector.transfer_read %a[%j, %c0], %cst {in_bounds = [true, true]} : memref<16384x16xf32>, vector<1x16xf32>
                 %row = memref.subview %b[%i, 0] [1, 16] [1, 1] : memref<16384x16xf32> to memref<1x16xf32, strided<[16, 1], offset: ?>>
                 vector.transfer_write %v, %row[%c0, %c0] {in_bounds = [true, true]} : vector<1x16xf32>, memref<1x16xf32, strided<[16, 1], offset: ?>>
               } {aotc.parallel}
               return
             }",
            "test module",
        )
        .unwrap();
        let function = crate::mlir::entry_function(&module).unwrap().to_raw();
        let mut tops = Vec::new();
        let mut op = unsafe { mlirBlockGetFirstOperation(mlirRegionGetFirstBlock(mlirOperationGetRegion(function, 0))) };
        while !op.ptr.is_null() {
            tops.push(op);
            op = unsafe { mlirOperationGetNextInBlock(op) };
        }
        let allocs: Vec<MlirOperation> = tops.iter().copied().filter(|&o| name_of(o) == "memref.alloc").collect();
        let homes: HashMap<usize, Home> = allocs.iter().enumerate().map(|(k, o)| (o.ptr as usize, Home { buffer: k, shift: 0 })).collect();
        let touched = touches(&tops, &[], &homes, &[16384, 16384]);
        assert_eq!(touched.len(), 1);
        let (a, b) = (&touched[0].1[&0], &touched[0].1[&1]);
        assert!(a[..8192].iter().all(|&f| f == READ[1]) && a[8192..].iter().all(|&f| f == READ[0]), "{a:?}");
        assert!(b[..8192].iter().all(|&f| f == WRITE[0]) && b[8192..].iter().all(|&f| f == WRITE[1]), "{b:?}");
        let uses = line_uses(&touched, &[16384, 16384]);
        assert_eq!((uses[1].entry[0], uses[1].exit[0], uses[1].exit[16383]), (WRITE[0], 0b01, 0b10));
    }

    #[test]
    fn blocks_of_a_buffer_are_marked_apart() {
        // rows 0..=1 of 4 columns of a 4 x 64 f32 matrix: two spans of 16 bytes
        let terms = vec![(64, Range { lo: 0, hi: 1 }), (1, Range { lo: 0, hi: 3 })];
        assert_eq!(byte_spans(&terms, 4), vec![(0, 16), (256, 16)]);
        // whole rows join
        let terms = vec![(64, Range { lo: 1, hi: 2 }), (1, Range { lo: 0, hi: 63 })];
        assert_eq!(byte_spans(&terms, 4), vec![(256, 512)]);
    }

    #[test]
    fn holders_follow_the_writers_and_readers() {
        assert_eq!(holders_after(0b11, WRITE[1]), 0b10);
        assert_eq!(holders_after(0b10, READ[0]), 0b11);
        assert_eq!(holders_after(0b01, READ[0] | WRITE[1]), 0b11);
    }
}
