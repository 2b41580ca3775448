//! What the strategies need to know about a linalg op: its loop ranges,
//! which loops are parallel, and how each operand is indexed; and the
//! use-def links between the ops of a function body.

use aotc_dialects::types::Ty;
use melior::ir::operation::{OperationLike, OperationRef, WalkOrder, WalkResult};
use melior::ir::{Module, Value, ValueLike};
use mlir_sys::*;

/// The static tensor (or memref) type of a value.
pub fn value_type(v: &Value) -> Option<Ty> {
    Ty::parse(&v.r#type().to_string())
}

/// The math ops that lower to LLVM vector instructions or intrinsics.
const VECTOR_MATH: &[&str] = &[
    "fma", "absf", "absi", "floor", "ceil", "roundeven", "round", "trunc", "copysign", "sqrt", "rsqrt", "exp", "exp2", "log",
    "log2", "log10", "sin", "cos", "powf", "ctlz", "cttz", "ctpop",
];

/// One result of an indexing map.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The loop `d<k>`.
    Dim(usize),
    /// A constant index (a broadcast unit dim).
    Const(i64),
    /// Anything else (`d0 * 2 + d3`): a window or a gather.
    Other,
}

/// A `linalg.generic` as the strategies see it.
#[derive(Debug, Clone)]
pub struct Generic {
    pub op: MlirOperation,
    /// Per loop: true for parallel, false for reduction.
    pub parallel: Vec<bool>,
    /// Per loop: its trip count.
    pub ranges: Vec<i64>,
    /// Per operand (inputs, then outputs): its type and map results.
    pub operands: Vec<(Ty, Vec<Expr>)>,
    pub inputs: usize,
    /// Whether the body reads tensors at computed positions (`tensor.extract`).
    pub gathers: bool,
    /// Whether the body calls a math function that has no vector lowering
    /// (it becomes a libm call per element: acosh, atan2, erf in f64, ...).
    pub scalar_math: bool,
    /// Whether the body reads its loop indices (`linalg.index`): they
    /// change when the op's loops are reshaped.
    pub reads_indices: bool,
}

impl Generic {
    pub fn rank(&self) -> usize {
        self.parallel.len()
    }

    pub fn all_parallel(&self) -> bool {
        self.parallel.iter().all(|&p| p)
    }

    /// Every operand indexed by loops and constants only (no windows).
    pub fn projected(&self) -> bool {
        self.operands.iter().all(|(_, m)| m.iter().all(|e| *e != Expr::Other))
    }

    /// Every operand indexed by the identity map (a pure elementwise op).
    pub fn identity(&self) -> bool {
        let rank = self.rank();
        self.operands.iter().all(|(_, m)| m.len() == rank && m.iter().enumerate().all(|(i, e)| *e == Expr::Dim(i)))
    }

    /// Some operand or result holds bools (`i1` in memory would be packed as
    /// bits by vector stores, not one byte per element).
    pub fn has_bool_operand(&self) -> bool {
        self.operands.iter().any(|(t, _)| t.elem == "i1")
    }

    pub fn elements(&self) -> i64 {
        self.ranges.iter().product()
    }

    /// Whether the op can be vectorized at all: static, non-empty loops,
    /// no gathers, no bools in memory, only math that vectorizes.
    pub fn vectorizable(&self) -> bool {
        !self.gathers && !self.scalar_math && !self.has_bool_operand() && self.rank() > 0 && self.ranges.iter().all(|&r| r > 0)
    }
}

fn parse_map(text: &str) -> Option<Vec<Expr>> {
    let results = text.split("->").nth(1)?.trim();
    let inner = results.strip_prefix('(')?.split(')').next()?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    Some(
        inner
            .split(',')
            .map(str::trim)
            .map(|r| {
                if let Some(d) = r.strip_prefix('d').and_then(|d| d.parse().ok()) {
                    Expr::Dim(d)
                } else if let Ok(c) = r.parse() {
                    Expr::Const(c)
                } else {
                    Expr::Other
                }
            })
            .collect(),
    )
}

/// The facts about a `linalg.generic` with static shapes, or None.
pub fn generic(raw: MlirOperation) -> Option<Generic> {
    let op = unsafe { OperationRef::from_raw(raw) };
    let iterators = op.attribute("iterator_types").ok()?.to_string();
    let parallel: Vec<bool> = iterators
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.contains("parallel"))
        .collect();
    let maps_text = op.attribute("indexing_maps").ok()?.to_string();
    let maps: Vec<Vec<Expr>> = maps_text.split("affine_map<").skip(1).map(parse_map).collect::<Option<_>>()?;
    let mut operands = Vec::new();
    for (i, v) in op.operands().enumerate() {
        operands.push((value_type(&v)?, maps.get(i)?.clone()));
    }
    let inputs = op.operand_count() - op.result_count();
    let mut ranges = vec![0i64; parallel.len()];
    let mut known = vec![false; parallel.len()];
    for (ty, map) in &operands {
        for (pos, e) in map.iter().enumerate() {
            if let Expr::Dim(d) = e {
                if *d < ranges.len() && !known[*d] {
                    ranges[*d] = *ty.shape.get(pos)?;
                    known[*d] = true;
                }
            }
        }
    }
    if known.iter().any(|k| !k) {
        return None;
    }
    let (mut gathers, mut scalar_math, mut reads_indices) = (false, false, false);
    op.walk(WalkOrder::PreOrder, |o| {
        let name = o.name().as_string_ref().as_str().unwrap_or("").to_string();
        gathers |= name == "tensor.extract";
        scalar_math |= name.strip_prefix("math.").is_some_and(|f| !VECTOR_MATH.contains(&f));
        reads_indices |= name == "linalg.index";
        WalkResult::Advance
    });
    Some(Generic { op: raw, parallel, ranges, operands, inputs, gathers, scalar_math, reads_indices })
}

/// The ops that define each operand of `op` (None for a block argument).
pub fn producers(op: MlirOperation) -> Vec<Option<MlirOperation>> {
    unsafe {
        (0..mlirOperationGetNumOperands(op))
            .map(|i| {
                let v = mlirOperationGetOperand(op, i);
                mlirValueIsAOpResult(v).then(|| mlirOpResultGetOwner(v))
            })
            .collect()
    }
}

/// Whether every operand of `op` is a contiguous block of memory once
/// bufferized: not a strided slice (nor a reshape of one), which flattening
/// could only collapse by copying it first.
pub fn operands_contiguous(op: MlirOperation) -> bool {
    unsafe { (0..mlirOperationGetNumOperands(op)).all(|i| contiguous(mlirOperationGetOperand(op, i))) }
}

fn contiguous(mut value: MlirValue) -> bool {
    loop {
        if !unsafe { mlirValueIsAOpResult(value) } {
            return true;
        }
        let producer = unsafe { mlirOpResultGetOwner(value) };
        match crate::mlir::op_name(producer).as_str() {
            "tensor.collapse_shape" | "tensor.expand_shape" => value = unsafe { mlirOperationGetOperand(producer, 0) },
            "tensor.extract_slice" => return slice_is_contiguous(producer),
            _ => return true,
        }
    }
}

/// A static slice with unit strides whose dims inside the outermost
/// partial one are whole (and outside it are single).
fn slice_is_contiguous(slice: MlirOperation) -> bool {
    let op = unsafe { OperationRef::from_raw(slice) };
    let ints = |name: &str| -> Option<Vec<i64>> {
        let text = op.attribute(name).ok()?.to_string();
        let inner = text.trim_start_matches("array<i64").trim_start_matches(':').trim_end_matches('>').trim();
        inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().ok()).collect()
    };
    let (Some(sizes), Some(strides)) = (ints("static_sizes"), ints("static_strides")) else { return false };
    let Some(source) = op.operand(0).ok().and_then(|v| value_type(&v)) else { return false };
    if strides.iter().any(|&s| s != 1) || sizes.len() != source.shape.len() {
        return false;
    }
    // from the innermost dim out: whole dims, then one partial, then ones
    let mut d = sizes.len();
    while d > 0 && sizes[d - 1] == source.shape[d - 1] {
        d -= 1;
    }
    d == 0 || sizes[..d - 1].iter().all(|&s| s == 1)
}

/// The ops that use some result of `op` (each once, in use-list order).
pub fn users(op: MlirOperation) -> Vec<MlirOperation> {
    let mut out: Vec<MlirOperation> = Vec::new();
    unsafe {
        for r in 0..mlirOperationGetNumResults(op) {
            let mut u = mlirValueGetFirstUse(mlirOperationGetResult(op, r));
            while !u.ptr.is_null() {
                let owner = mlirOpOperandGetOwner(u);
                if !out.iter().any(|o| o.ptr == owner.ptr) {
                    out.push(owner);
                }
                u = mlirOpOperandGetNextUse(u);
            }
        }
    }
    out
}

/// Whether some op inside a loop reads a result of `op` (through
/// reshapes and transposes): a kernel that is a loop nest of its own at
/// this stage, such as an attention, rather than a linalg op.
pub fn read_in_loops(op: MlirOperation) -> bool {
    users(op).into_iter().any(|user| match crate::mlir::op_name(user).as_str() {
        "tensor.expand_shape" | "tensor.collapse_shape" | "linalg.transpose" => read_in_loops(user),
        _ => inside_loop(user),
    })
}

/// Whether `op` lies in the body of an `scf.for`, at any depth.
pub fn inside_loop(op: MlirOperation) -> bool {
    let mut at = unsafe { mlirOperationGetParentOperation(op) };
    while !at.ptr.is_null() {
        if crate::mlir::op_name(at) == "scf.for" {
            return true;
        }
        at = unsafe { mlirOperationGetParentOperation(at) };
    }
    false
}

/// The ops of the first block of every function, in order.
pub fn function_bodies(module: &Module) -> Vec<Vec<MlirOperation>> {
    let mut bodies = Vec::new();
    module.as_operation().walk(WalkOrder::PreOrder, |op| {
        if op.name().as_string_ref().as_str() == Ok("func.func") {
            let mut ops = Vec::new();
            unsafe {
                let region = mlirOperationGetRegion(op.to_raw(), 0);
                let block = mlirRegionGetFirstBlock(region);
                if !block.ptr.is_null() {
                    let mut o = mlirBlockGetFirstOperation(block);
                    while !o.ptr.is_null() {
                        ops.push(o);
                        o = mlirOperationGetNextInBlock(o);
                    }
                }
            }
            bodies.push(ops);
        }
        WalkResult::Advance
    });
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_results() {
        assert_eq!(parse_map("(d0, d1, d2) -> (d0, 0, d2)").unwrap(), vec![Expr::Dim(0), Expr::Const(0), Expr::Dim(2)]);
        assert_eq!(parse_map("(d0, d1) -> (d0 * 2 + d1)").unwrap(), vec![Expr::Other]);
        assert_eq!(parse_map("(d0) -> ()").unwrap(), vec![]);
    }
}
