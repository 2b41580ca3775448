//! Row chains: a reduction along the contiguous dim together with the ops
//! that feed it and the ops that read its statistic back along the row
//! (softmax, log_softmax, logsumexp, layer, RMS and group norm; attention's
//! scale and mask before its softmax). Unfused, each op of the chain
//! streams the whole tensor through memory: softmax alone reads it four
//! times and writes it twice. Here the chain becomes one loop over rows:
//! the last op is tiled one row at a time and every other op of the chain
//! is fused into that loop, so a row is computed from start to end while it
//! sits in L1. The ops inside are then vectorized by the elementwise and
//! reduction strategies like any other.
//!
//! A chain is found from its reduction: the ops that consume its result
//! row by row, transitively, must end in one op (the root); the ops before
//! the root join when they compute whole rows (their outer loops are the
//! rows) and every use of theirs is already in the chain, so nothing is
//! computed twice.

use super::analysis::{function_bodies, generic, users, value_type, Expr, Generic};
use crate::mlir::op_name;
use super::{tag, Script};
use melior::ir::Module;
use melior::Context;
use mlir_sys::MlirOperation;

/// One chain: the root, tiled by rows, and the ops fused into its loop, in
/// the order they are fused (consumers before producers).
struct Chain {
    root: MlirOperation,
    root_tiles: Vec<i64>,
    producers: Vec<MlirOperation>,
}

fn same(a: MlirOperation, b: MlirOperation) -> bool {
    a.ptr == b.ptr
}

fn contains(ops: &[MlirOperation], op: MlirOperation) -> bool {
    ops.iter().any(|&o| same(o, op))
}

/// The rows of a reduction along its innermost loop (the sizes of its
/// outer loops), when it has some.
fn row_reduction(g: &Generic) -> Option<Vec<i64>> {
    let rank = g.rank();
    if rank < 2 || g.parallel[rank - 1] || !g.parallel[..rank - 1].iter().all(|&p| p) || g.operands.len() - g.inputs != 1 {
        return None;
    }
    let out_map = &g.operands.last()?.1;
    let rows: Vec<Expr> = (0..rank - 1).map(Expr::Dim).collect();
    (*out_map == rows).then(|| g.ranges[..rank - 1].to_vec())
}

/// Whether one row of `op` is the part of it that row `i` of the chain
/// needs: its outer loops are the rows, and its results are indexed by
/// them first.
fn computes_rows(op: MlirOperation, rows: &[i64]) -> bool {
    let k = rows.len();
    match op_name(op).as_str() {
        "linalg.generic" => {
            let Some(g) = generic(op) else { return false };
            g.rank() >= k
                && g.parallel[..k].iter().all(|&p| p)
                && g.ranges[..k] == *rows
                && g.operands[g.inputs..].iter().all(|(_, m)| m.len() >= k && (0..k).all(|d| m[d] == Expr::Dim(d)))
        }
        "linalg.fill" => {
            let out = unsafe { melior::ir::Value::from_raw(mlir_sys::mlirOperationGetResult(op, 0)) };
            value_type(&out).is_some_and(|t| t.shape.len() >= k && t.shape[..k] == *rows)
        }
        _ => false,
    }
}

/// The chain grown from the row reduction `reduction` in `body`, if it is
/// one (it reads its statistic back along the rows and ends in one op).
fn chain_from(body: &[MlirOperation], reduction: MlirOperation, rows: &[i64], taken: &[MlirOperation]) -> Option<Chain> {
    let in_body = |op: MlirOperation| contains(body, op) && !contains(taken, op);
    // forward: everything that consumes the statistic row by row
    let mut group = vec![reduction];
    let mut frontier = vec![reduction];
    while let Some(op) = frontier.pop() {
        for u in users(op) {
            if in_body(u) && !contains(&group, u) && op_name(u) == "linalg.generic" && computes_rows(u, rows) {
                group.push(u);
                frontier.push(u);
            }
        }
    }
    let sinks: Vec<MlirOperation> =
        group.iter().copied().filter(|&op| users(op).is_empty() || users(op).iter().any(|&u| !contains(&group, u))).collect();
    let [root] = sinks[..] else { return None };
    let root_g = generic(root)?;
    // a chain reads its statistic back over the row (more than a reduction
    // followed by ops on its result)
    if !root_g.all_parallel() || !group.iter().any(|&op| generic(op).is_some_and(|g| g.all_parallel() && g.rank() > rows.len())) {
        return None;
    }
    // backward: every op before the root that computes whole rows and is
    // used only inside the chain
    let position = body.iter().position(|&op| same(op, root))?;
    let mut chosen = vec![root];
    let mut fused = Vec::new();
    for &op in body[..position].iter().rev() {
        if contains(taken, op) || !computes_rows(op, rows) {
            continue;
        }
        let uses = users(op);
        if !uses.is_empty() && uses.iter().all(|&u| contains(&chosen, u)) {
            chosen.push(op);
            fused.push(op);
        }
    }
    let mut root_tiles = vec![1i64; rows.len()];
    root_tiles.resize(root_g.rank(), 0);
    Some(Chain { root, root_tiles, producers: fused })
}

/// Finds the row chains of every function.
fn chains(module: &Module) -> Vec<Chain> {
    let mut found = Vec::new();
    for body in function_bodies(module) {
        let mut taken: Vec<MlirOperation> = Vec::new();
        for &op in &body {
            if contains(&taken, op) || op_name(op) != "linalg.generic" {
                continue;
            }
            let Some(rows) = generic(op).as_ref().and_then(row_reduction) else { continue };
            if let Some(chain) = chain_from(&body, op, &rows, &taken) {
                taken.push(chain.root);
                taken.extend(chain.producers.iter().copied());
                found.push(chain);
            }
        }
    }
    found
}

/// Tags every chain's ops and writes the script that tiles each root by
/// rows and fuses the rest of its chain into the loop. Returns whether
/// there was a chain.
pub fn plan(context: &Context, module: &Module, script: &mut Script) -> bool {
    let chains = chains(module);
    for (c, chain) in chains.iter().enumerate() {
        tag(context, chain.root, &format!("rows_{c}"));
        for (p, &op) in chain.producers.iter().enumerate() {
            tag(context, op, &format!("rows_{c}_{p}"));
        }
        let root = script.match_tagged("linalg.generic", &format!("rows_{c}"));
        let (_, loops) = script.tile(&root, &chain.root_tiles);
        script.mark_parallel(&loops);
        if let Some(rows) = loops.last() {
            script.line(format!("transform.annotate {rows} \"{}\" : !transform.any_op", super::prefetch::ROW_LOOP));
        }
        let mut outer = loops[0].clone();
        for (p, &op) in chain.producers.iter().enumerate() {
            let producer = script.match_tagged(&op_name(op), &format!("rows_{c}_{p}"));
            let (fused, next) = (script.handle("fused"), script.handle("loop"));
            script.line(format!(
                "{fused}, {next} = transform.structured.fuse_into_containing_op {producer} into {outer} : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)"
            ));
            outer = next;
        }
    }
    if !chains.is_empty() {
        // the intermediates of a row become row-sized tensors (not slices
        // of whole-tensor buffers)
        script.line("transform.apply_patterns to %func {");
        script.line("  transform.apply_patterns.tensor.fold_tensor_empty");
        script.line("  transform.apply_patterns.canonicalization");
        script.line("} : !transform.any_op");
    }
    !chains.is_empty()
}
