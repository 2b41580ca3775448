//! Elementwise ops: one `linalg.generic` with broadcasting indexing maps and
//! torch's type promotion (each input is converted to the result type).

use super::{AtenOp, Emitter, Operand};
use crate::types::{bit_width, is_float, Ty};

/// `d0, d1, ...` for a rank.
pub fn dim_list(rank: usize) -> String {
    (0..rank).map(|d| format!("d{d}")).collect::<Vec<_>>().join(", ")
}

/// The identity map of a rank.
pub fn identity_map(rank: usize) -> String {
    let d = dim_list(rank);
    format!("affine_map<({d}) -> ({d})>")
}

/// The map reading an input of `shape` broadcast (numpy-style, aligned on the
/// right) into an iteration space of `out` dims.
pub fn broadcast_map(shape: &[i64], out: &[i64]) -> String {
    let offset = out.len() - shape.len();
    let exprs: Vec<String> = shape
        .iter()
        .enumerate()
        .map(|(i, &s)| if s == 1 && out[offset + i] != 1 { "0".to_string() } else { format!("d{}", offset + i) })
        .collect();
    format!("affine_map<({}) -> ({})>", dim_list(out.len()), exprs.join(", "))
}

/// A `tensor.empty` of a type.
pub fn empty(e: &mut Emitter, ty: &Ty) -> String {
    e.assign(format!("tensor.empty() : {ty}"))
}

/// A tensor of `ty` filled with a scalar constant.
pub fn filled(e: &mut Emitter, ty: &Ty, value: &str) -> String {
    let c = e.assign(format!("arith.constant {value} : {}", ty.elem));
    let init = empty(e, ty);
    e.assign(format!("linalg.fill ins({c} : {}) outs({init} : {ty}) -> {ty}", ty.elem))
}

/// Emits a `linalg.generic`. `inputs` are (value, type, indexing map); the
/// single output is `init` of type `out` with the identity map unless
/// `out_map` is given. `body` receives the scalar block arguments (inputs then
/// output) and returns the yielded value.
#[allow(clippy::too_many_arguments)]
pub fn generic(
    e: &mut Emitter,
    inputs: &[(String, Ty, String)],
    init: &str,
    out: &Ty,
    out_map: Option<String>,
    iterators: &[&str],
    attrs: &str,
    body: impl FnOnce(&mut Emitter, &[String]) -> String,
) -> String {
    let mut maps: Vec<String> = inputs.iter().map(|(_, _, m)| m.clone()).collect();
    maps.push(out_map.unwrap_or_else(|| identity_map(out.rank())));
    let iterator_types: Vec<String> = iterators.iter().map(|i| format!("\"{i}\"")).collect();
    let ins = if inputs.is_empty() {
        String::new()
    } else {
        let values: Vec<&str> = inputs.iter().map(|(v, _, _)| v.as_str()).collect();
        let types: Vec<String> = inputs.iter().map(|(_, t, _)| t.to_string()).collect();
        format!(" ins({} : {})", values.join(", "), types.join(", "))
    };
    let result = e.fresh();
    e.line(format!(
        "{result} = linalg.generic {{indexing_maps = [{}], iterator_types = [{}]{attrs}}}{ins} outs({init} : {out}) {{",
        maps.join(", "),
        iterator_types.join(", ")
    ));
    let mut args = Vec::new();
    let mut decls = Vec::new();
    for (_, t, _) in inputs {
        let a = e.fresh();
        decls.push(format!("{a}: {}", t.elem));
        args.push(a);
    }
    let o = e.fresh();
    decls.push(format!("{o}: {}", out.elem));
    args.push(o);
    e.line(format!("^bb0({}):", decls.join(", ")));
    e.indented(|e| {
        let value = body(e, &args);
        e.line(format!("linalg.yield {value} : {}", out.elem));
    });
    e.line(format!("}} -> {out}"));
    result
}

/// An all-parallel elementwise op over `out`, broadcasting each input.
pub fn map(
    e: &mut Emitter,
    inputs: &[(&str, &Ty)],
    out: &Ty,
    body: impl FnOnce(&mut Emitter, &[String]) -> String,
) -> String {
    let init = empty(e, out);
    let ins: Vec<(String, Ty, String)> = inputs
        .iter()
        .map(|(v, t)| (v.to_string(), (*t).clone(), broadcast_map(&t.shape, &out.shape)))
        .collect();
    let iterators = vec!["parallel"; out.rank()];
    generic(e, &ins, &init, out, None, &iterators, "", body)
}

/// Converts a scalar between element types with torch's rules
/// (float -> int truncates toward zero; anything -> bool is `!= 0`).
pub fn cast_scalar(e: &mut Emitter, value: &str, from: &str, to: &str) -> String {
    if from == to {
        return value.to_string();
    }
    let (ff, tf) = (is_float(from), is_float(to));
    if to == "i1" {
        let zero = e.assign(format!("arith.constant {} : {from}", if ff { "0.0" } else { "0" }));
        return if ff {
            e.assign(format!("arith.cmpf une, {value}, {zero} : {from}"))
        } else {
            e.assign(format!("arith.cmpi ne, {value}, {zero} : {from}"))
        };
    }
    let (wf, wt) = (bit_width(from), bit_width(to));
    let op = match (ff, tf) {
        (true, true) if wt > wf || (from == "bf16" && to == "f16") => "arith.extf",
        (true, true) => "arith.truncf",
        (false, true) if from == "i1" => "arith.uitofp",
        (false, true) => "arith.sitofp",
        (true, false) => "arith.fptosi",
        (false, false) if wt > wf && from == "i1" => "arith.extui",
        (false, false) if wt > wf => "arith.extsi",
        (false, false) => "arith.trunci",
    };
    e.assign(format!("{op} {value} : {from} to {to}"))
}

/// Converts a whole tensor to another element type.
pub fn convert(e: &mut Emitter, value: &str, ty: &Ty, to: &str) -> String {
    let out = ty.with_elem(to);
    let from = ty.elem.clone();
    map(e, &[(value, ty)], &out, |e, a| cast_scalar(e, &a[0], &from, to))
}

/// A binary op computed in the result's element type.
fn binary(
    e: &mut Emitter,
    op: &AtenOp,
    float_op: &str,
    int_op: &str,
) -> Result<Vec<String>, String> {
    let (a, b): (&Operand, &Operand) = (op.input("self")?, op.input("other")?);
    let out = op.result().clone();
    let elem = out.elem.clone();
    let (ea, eb) = (a.ty.elem.clone(), b.ty.elem.clone());
    let alpha = op.float("alpha", 1.0)?;
    let float = is_float(&elem);
    let r = map(e, &[(&a.ssa, &a.ty), (&b.ssa, &b.ty)], &out, |e, args| {
        let x = cast_scalar(e, &args[0], &ea, &elem);
        let mut y = cast_scalar(e, &args[1], &eb, &elem);
        if alpha != 1.0 {
            let c = if float {
                e.assign(format!("arith.constant {} : {elem}", super::float_literal(alpha)))
            } else {
                e.assign(format!("arith.constant {} : {elem}", alpha as i64))
            };
            y = e.assign(format!("{} {y}, {c} : {elem}", if float { "arith.mulf" } else { "arith.muli" }));
        }
        if elem == "i1" {
            // bool arithmetic: mul is and, add is or
            let op = if float_op == "arith.mulf" { "arith.andi" } else { "arith.ori" };
            return e.assign(format!("{op} {x}, {y} : i1"));
        }
        e.assign(format!("{} {x}, {y} : {elem}", if float { float_op } else { int_op }))
    });
    Ok(vec![r])
}

pub fn mul(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    binary(e, op, "arith.mulf", "arith.muli")
}

pub fn add(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    binary(e, op, "arith.addf", "arith.addi")
}

pub fn relu(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    let out = op.result().clone();
    let elem = out.elem.clone();
    let float = is_float(&elem);
    let r = map(e, &[(&x.ssa, &x.ty)], &out, |e, a| {
        // maximumf propagates NaN, as torch.relu does.
        if float {
            let zero = e.assign(format!("arith.constant 0.0 : {elem}"));
            e.assign(format!("arith.maximumf {}, {zero} : {elem}", a[0]))
        } else {
            let zero = e.assign(format!("arith.constant 0 : {elem}"));
            e.assign(format!("arith.maxsi {}, {zero} : {elem}", a[0]))
        }
    });
    Ok(vec![r])
}
