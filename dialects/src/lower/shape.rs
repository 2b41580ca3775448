//! Shape and view ops: reshapes become collapse/expand (views after
//! bufferization), permutations become `linalg.transpose`.

use super::{AtenOp, Emitter};
use crate::types::Ty;

fn group(range: std::ops::Range<usize>) -> String {
    format!("[{}]", range.map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Reshapes `value` from `from` to `to` (same element count) through a
/// rank-1 view: collapse everything, then expand.
pub fn reshape_value(e: &mut Emitter, value: &str, from: &Ty, to: &Ty) -> String {
    if from.shape == to.shape {
        return value.to_string();
    }
    let flat_ty = from.with_shape(vec![from.numel()]);
    let flat = match from.rank() {
        1 => value.to_string(),
        0 => e.assign(format!("tensor.expand_shape {value} [] output_shape [1] : {from} into {flat_ty}")),
        r => e.assign(format!("tensor.collapse_shape {value} [{}] : {from} into {flat_ty}", group(0..r))),
    };
    match to.rank() {
        1 => flat,
        0 => e.assign(format!("tensor.collapse_shape {flat} [] : {flat_ty} into {to}")),
        r => {
            let dims: Vec<String> = to.shape.iter().map(i64::to_string).collect();
            e.assign(format!(
                "tensor.expand_shape {flat} [{}] output_shape [{}] : {flat_ty} into {to}",
                group(0..r),
                dims.join(", ")
            ))
        }
    }
}

/// view, reshape, flatten, _unsafe_view: the result type says the shape.
pub fn reshape(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    Ok(vec![reshape_value(e, &x.ssa, &x.ty, op.result())])
}

/// Materializes `value` with its dims permuted (`out[i] = in[perm[i]]`).
pub fn transpose_value(e: &mut Emitter, value: &str, ty: &Ty, perm: &[usize]) -> String {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return value.to_string();
    }
    let out = ty.with_shape(perm.iter().map(|&p| ty.shape[p]).collect());
    let init = super::elementwise::empty(e, &out);
    let perm: Vec<String> = perm.iter().map(usize::to_string).collect();
    e.assign(format!(
        "linalg.transpose ins({value} : {ty}) outs({init} : {out}) permutation = [{}]",
        perm.join(", ")
    ))
}

/// permute(dims) and t().
pub fn permute(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let rank = x.ty.rank();
    let perm: Vec<usize> = if op.name == "aten.t" {
        if rank < 2 {
            (0..rank).collect()
        } else {
            vec![1, 0]
        }
    } else {
        op.ints("dims", rank, &[])?
            .iter()
            .map(|&d| normalize_dim(d, rank))
            .collect::<Result<_, _>>()?
    };
    if perm.len() != rank {
        return Err(format!("{}: {} dims for a rank-{rank} tensor", op.name, perm.len()));
    }
    Ok(vec![transpose_value(e, &x.ssa, &x.ty, &perm)])
}

/// A possibly negative dim index, checked against the rank.
pub fn normalize_dim(dim: i64, rank: usize) -> Result<usize, String> {
    let r = rank.max(1) as i64;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(format!("dim {dim} is out of range for rank {rank}"));
    }
    Ok(d as usize)
}
