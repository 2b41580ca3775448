//! Elementwise ops: one `linalg.generic` with broadcasting indexing maps and
//! torch's type promotion. Each op is one scalar body; inputs are converted
//! to the op's common dtype, arithmetic runs in [`compute_elem`] of it, and
//! the result is converted to the result dtype once.

use super::scalar::{self, compute_elem, constant};
use super::{AtenOp, Attr, Emitter};
use crate::types::{is_float, mlir_elem, Ty};

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

/// The attribute that gives each [`empty`] an id of its own.
pub const EMPTY_ID: &str = "aotc.id";

/// A `tensor.empty` of a type. Each carries its own [`EMPTY_ID`], so that
/// CSE never merges two of them: a result computed into its own empty
/// tensor can then be computed straight into its output buffer.
pub fn empty(e: &mut Emitter, ty: &Ty) -> String {
    let name = e.fresh();
    let id = name.trim_start_matches("%v");
    e.line(format!("{name} = tensor.empty() {{{EMPTY_ID} = {id} : i64}} : {ty}"));
    name
}

/// A tensor of `ty` filled with a scalar constant (an MLIR literal).
pub fn filled(e: &mut Emitter, ty: &Ty, value: &str) -> String {
    let init = empty(e, ty);
    fill_into(e, &init, ty, value)
}

/// `dest` (of type `ty`) filled with a scalar constant (an MLIR literal).
pub fn fill_into(e: &mut Emitter, dest: &str, ty: &Ty, value: &str) -> String {
    let elem = mlir_elem(&ty.elem);
    let c = e.assign(format!("arith.constant {value} : {elem}"));
    e.assign(format!("linalg.fill ins({c} : {elem}) outs({dest} : {ty}) -> {ty}"))
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
        decls.push(format!("{a}: {}", mlir_elem(&t.elem)));
        args.push(a);
    }
    let o = e.fresh();
    decls.push(format!("{o}: {}", mlir_elem(&out.elem)));
    args.push(o);
    e.line(format!("^bb0({}):", decls.join(", ")));
    e.indented(|e| {
        let value = body(e, &args);
        e.line(format!("linalg.yield {value} : {}", mlir_elem(&out.elem)));
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
    map_into(e, inputs, &init, out, body)
}

/// Like [`map`], into a `tensor.empty` without an [`EMPTY_ID`]: CSE merges
/// two such maps of the same inputs into one, for a value that several ops
/// derive alike from one tensor (every attention layer's additive mask
/// from the model's bool mask), computed once instead of once per op.
pub fn shared_map(
    e: &mut Emitter,
    inputs: &[(&str, &Ty)],
    out: &Ty,
    body: impl FnOnce(&mut Emitter, &[String]) -> String,
) -> String {
    let init = e.assign(format!("tensor.empty() : {out}"));
    map_into(e, inputs, &init, out, body)
}

/// [`map`] into `init`.
fn map_into(
    e: &mut Emitter,
    inputs: &[(&str, &Ty)],
    init: &str,
    out: &Ty,
    body: impl FnOnce(&mut Emitter, &[String]) -> String,
) -> String {
    let ins: Vec<(String, Ty, String)> = inputs
        .iter()
        .map(|(v, t)| (v.to_string(), (*t).clone(), broadcast_map(&t.shape, &out.shape)))
        .collect();
    let iterators = vec!["parallel"; out.rank()];
    generic(e, &ins, init, out, None, &iterators, "", body)
}

/// Like [`map`], with each input read through its own indexing map over
/// `out`'s dims (a reduced statistic read along the dims it was reduced
/// over, a parameter along its channel dim).
pub fn map_indexed(
    e: &mut Emitter,
    inputs: &[(&str, &Ty, String)],
    out: &Ty,
    body: impl FnOnce(&mut Emitter, &[String]) -> String,
) -> String {
    let init = empty(e, out);
    let ins: Vec<(String, Ty, String)> = inputs.iter().map(|(v, t, m)| (v.to_string(), (*t).clone(), m.clone())).collect();
    let iterators = vec!["parallel"; out.rank()];
    generic(e, &ins, &init, out, None, &iterators, "", body)
}

/// Converts a whole tensor to another element type.
pub fn convert(e: &mut Emitter, value: &str, ty: &Ty, to: &str) -> String {
    if ty.elem == to {
        return value.to_string();
    }
    let out = ty.with_elem(to);
    let from = ty.elem.clone();
    map(e, &[(value, ty)], &out, |e, a| scalar::cast(e, &a[0], &from, to))
}

/// One input of a pointwise op: a tensor operand or a Scalar argument.
#[derive(Debug, Clone)]
pub enum Input {
    Tensor(String, Ty),
    /// A Python number with the dtype torch gives it alone (i64, f32 or i1).
    Scalar(f64, &'static str),
}

impl Input {
    /// The op's argument `name`: its tensor operand, else its scalar attribute.
    pub fn of(op: &AtenOp, name: &str) -> Result<Input, String> {
        if let Some(t) = op.opt_input(name) {
            return Ok(Input::Tensor(t.ssa.clone(), t.ty.clone()));
        }
        match op.attrs.get(name) {
            Some(Attr::Int(v)) => Ok(Input::Scalar(*v as f64, "i64")),
            Some(Attr::Float(v)) => Ok(Input::Scalar(*v, "f32")),
            Some(Attr::Bool(b)) => Ok(Input::Scalar(*b as i64 as f64, "i1")),
            _ => Err(format!("{}: missing argument '{name}'", op.name)),
        }
    }

    pub fn elem(&self) -> &str {
        match self {
            Input::Tensor(_, t) => &t.elem,
            Input::Scalar(_, e) => e,
        }
    }
}

fn category(elem: &str) -> u8 {
    match elem {
        "i1" => 0,
        e if is_float(e) => 2,
        _ => 1,
    }
}

fn wider(a: &str, b: &str) -> String {
    if a == b {
        return a.to_string();
    }
    // torch promotes float16 with bfloat16 to float32.
    if matches!((a, b), ("f16", "bf16") | ("bf16", "f16")) {
        return "f32".into();
    }
    if crate::types::bit_width(a) >= crate::types::bit_width(b) { a.to_string() } else { b.to_string() }
}

/// torch.result_type: the highest category wins; within it, dimensioned
/// tensors decide before 0-d tensors, which decide before Python scalars
/// (a float scalar alone gives float32, an int scalar int64).
pub fn promote(inputs: &[Input]) -> String {
    let top = inputs.iter().map(|i| category(i.elem())).max().unwrap_or(2);
    for priority in [2, 1, 0] {
        let mut found: Option<String> = None;
        for i in inputs {
            let p = match i {
                Input::Tensor(_, t) if t.rank() > 0 => 2,
                Input::Tensor(..) => 1,
                Input::Scalar(..) => 0,
            };
            if p == priority && category(i.elem()) == top {
                found = Some(match found {
                    None => i.elem().to_string(),
                    Some(f) => wider(&f, i.elem()),
                });
            }
        }
        if let Some(f) = found {
            return f;
        }
    }
    "f32".into()
}

/// A pointwise op over `inputs`, broadcast to the result. Inputs are
/// converted to `common` (the result dtype unless given), then to its
/// compute type; `body` gets them and the compute type and returns its value
/// and that value's type, which is converted to the result dtype.
pub fn pointwise(
    e: &mut Emitter,
    inputs: &[Input],
    common: &str,
    out: &Ty,
    body: impl FnOnce(&mut Emitter, &[String], &str) -> (String, String),
) -> Result<String, String> {
    let tensors: Vec<(&str, &Ty)> = inputs
        .iter()
        .filter_map(|i| if let Input::Tensor(v, t) = i { Some((v.as_str(), t)) } else { None })
        .collect();
    // the graph declares the result type: it must be the operands' broadcast
    let shapes: Vec<&[i64]> = tensors.iter().map(|(_, t)| t.shape.as_slice()).collect();
    match broadcast_shapes(&shapes) {
        Some(shape) if shape == out.shape => {}
        Some(shape) => return Err(format!("the graph declares a {out} result, but the operands broadcast to {shape:?}")),
        None => {
            let list: Vec<String> = tensors.iter().map(|(_, t)| t.to_string()).collect();
            return Err(format!("operands {} do not broadcast together", list.join(", ")));
        }
    }
    let compute = compute_elem(common).to_string();
    let out_elem = out.elem.clone();
    let inputs = inputs.to_vec();
    let common = common.to_string();
    Ok(map(e, &tensors, out, |e, args| {
        let mut next = args.iter();
        let values: Vec<String> = inputs
            .iter()
            .map(|i| match i {
                Input::Tensor(_, t) => {
                    let v = scalar::cast(e, next.next().expect("one block argument per tensor"), &t.elem, &common);
                    scalar::cast(e, &v, &common, &compute)
                }
                Input::Scalar(v, _) => constant(e, *v, &compute),
            })
            .collect();
        let (value, elem) = body(e, &values, &compute);
        scalar::cast(e, &value, &elem, &out_elem)
    }))
}

/// numpy's broadcast of shapes (aligned on the right), or None if two
/// sizes differ and neither is 1.
pub fn broadcast_shapes(shapes: &[&[i64]]) -> Option<Vec<i64>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1i64; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

/// A pointwise op whose common dtype is the result dtype (arithmetic).
pub fn arithmetic(
    e: &mut Emitter,
    op: &AtenOp,
    args: &[&str],
    body: impl FnOnce(&mut Emitter, &[String], &str, &AtenOp) -> String,
) -> Result<Vec<String>, String> {
    let inputs = args.iter().map(|a| Input::of(op, a)).collect::<Result<Vec<_>, _>>()?;
    let out = op.result().clone();
    let r = pointwise(e, &inputs, &out.elem, &out, |e, v, t| (body(e, v, t, op), t.to_string())).map_err(|m| format!("{}: {m}", op.name))?;
    Ok(vec![r])
}

/// A pointwise op computed in the promoted dtype of its inputs, whatever
/// its result dtype (comparisons, logical ops, predicates).
pub fn promoted(
    e: &mut Emitter,
    op: &AtenOp,
    args: &[&str],
    body: impl FnOnce(&mut Emitter, &[String], &str) -> (String, String),
) -> Result<Vec<String>, String> {
    let inputs = args.iter().map(|a| Input::of(op, a)).collect::<Result<Vec<_>, _>>()?;
    let common = promote(&inputs);
    Ok(vec![pointwise(e, &inputs, &common, op.result(), body).map_err(|m| format!("{}: {m}", op.name))?])
}

/// Defines a one-input op computed in the result dtype.
macro_rules! unary {
    ($name:ident, |$e:ident, $x:ident, $t:ident, $op:ident| $body:expr) => {
        pub fn $name(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
            #[allow(unused_variables)]
            arithmetic(e, op, &["self"], |$e, v, $t, $op| {
                let $x = v[0].as_str();
                $body
            })
        }
    };
}

/// Defines a two-input op (`self`, `other`) computed in the result dtype.
macro_rules! binary {
    ($name:ident, |$e:ident, $a:ident, $b:ident, $t:ident, $op:ident| $body:expr) => {
        pub fn $name(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
            #[allow(unused_variables)]
            arithmetic(e, op, &["self", "other"], |$e, v, $t, $op| {
                let ($a, $b) = (v[0].as_str(), v[1].as_str());
                $body
            })
        }
    };
}

fn math1(e: &mut Emitter, name: &str, x: &str, t: &str) -> String {
    if is_float(t) {
        scalar::math(e, name, &[x], t)
    } else {
        x.to_string()
    }
}

unary!(abs, |e, x, t, op| if is_float(t) { scalar::math(e, "absf", &[x], t) } else if t == "i1" || t == "ui8" { x.to_string() } else { scalar::math(e, "absi", &[x], t) });
unary!(neg, |e, x, t, op| if is_float(t) {
    e.assign(format!("arith.negf {x} : {t}"))
} else {
    let zero = constant(e, 0.0, t);
    scalar::sub(e, &zero, x, t)
});
unary!(exp, |e, x, t, op| math1(e, "exp", x, t));
unary!(exp2, |e, x, t, op| math1(e, "exp2", x, t));
unary!(expm1, |e, x, t, op| math1(e, "expm1", x, t));
unary!(log, |e, x, t, op| math1(e, "log", x, t));
unary!(log2, |e, x, t, op| math1(e, "log2", x, t));
unary!(log10, |e, x, t, op| math1(e, "log10", x, t));
unary!(log1p, |e, x, t, op| math1(e, "log1p", x, t));
unary!(sqrt, |e, x, t, op| math1(e, "sqrt", x, t));
unary!(rsqrt, |e, x, t, op| math1(e, "rsqrt", x, t));
unary!(sin, |e, x, t, op| math1(e, "sin", x, t));
unary!(cos, |e, x, t, op| math1(e, "cos", x, t));
unary!(tan, |e, x, t, op| math1(e, "tan", x, t));
unary!(asin, |e, x, t, op| math1(e, "asin", x, t));
unary!(acos, |e, x, t, op| math1(e, "acos", x, t));
unary!(atan, |e, x, t, op| math1(e, "atan", x, t));
unary!(sinh, |e, x, t, op| math1(e, "sinh", x, t));
unary!(cosh, |e, x, t, op| math1(e, "cosh", x, t));
unary!(tanh, |e, x, t, op| math1(e, "tanh", x, t));
unary!(asinh, |e, x, t, op| math1(e, "asinh", x, t));
unary!(acosh, |e, x, t, op| math1(e, "acosh", x, t));
unary!(atanh, |e, x, t, op| math1(e, "atanh", x, t));
unary!(erf, |e, x, t, op| math1(e, "erf", x, t));
unary!(floor, |e, x, t, op| math1(e, "floor", x, t));
unary!(ceil, |e, x, t, op| math1(e, "ceil", x, t));
unary!(trunc, |e, x, t, op| math1(e, "trunc", x, t));
unary!(round, |e, x, t, op| round_decimals(e, x, t, op.int("decimals", 0).unwrap_or(0)));
unary!(sigmoid, |e, x, t, op| sigmoid_scalar(e, x, t));
unary!(reciprocal, |e, x, t, op| {
    let one = constant(e, 1.0, t);
    scalar::div(e, &one, x, t)
});
unary!(sign, |e, x, t, op| sign_scalar(e, x, t));
unary!(bitwise_not, |e, x, t, op| {
    let ones = constant(e, -1.0, t);
    e.assign(format!("arith.xori {x}, {ones} : {t}"))
});
unary!(relu, |e, x, t, op| {
    // NaN passes through, as in torch.relu
    let zero = constant(e, 0.0, t);
    scalar::at_least(e, x, &zero, t)
});
unary!(gelu, |e, x, t, op| gelu_scalar(e, x, t, op.attrs.get("approximate") == Some(&Attr::Str("tanh".into()))));
unary!(silu, |e, x, t, op| {
    let s = sigmoid_scalar(e, x, t);
    scalar::mul(e, x, &s, t)
});
unary!(mish, |e, x, t, op| {
    // x * tanh(softplus(x)), softplus(x) = log1p(exp(x))
    let ex = scalar::math(e, "exp", &[x], t);
    let sp = scalar::math(e, "log1p", &[&ex], t);
    let th = scalar::math(e, "tanh", &[&sp], t);
    scalar::mul(e, x, &th, t)
});
unary!(hardsigmoid, |e, x, t, op| hardsigmoid_scalar(e, x, t));
unary!(hardswish, |e, x, t, op| {
    let h = hardsigmoid_scalar(e, x, t);
    scalar::mul(e, x, &h, t)
});
unary!(hardtanh, |e, x, t, op| {
    let (lo, hi) = (op.float("min_val", -1.0).unwrap_or(-1.0), op.float("max_val", 1.0).unwrap_or(1.0));
    let not_nan = !lo.is_nan() && !hi.is_nan();
    let (lo, hi) = (constant(e, lo, t), constant(e, hi, t));
    clamp_scalar(e, x, Some(&lo), Some(&hi), not_nan, t)
});
unary!(leaky_relu, |e, x, t, op| {
    let slope = constant(e, op.float("negative_slope", 0.01).unwrap_or(0.01), t);
    let zero = constant(e, 0.0, t);
    let positive = scalar::compare(e, "gt", x, &zero, t);
    let scaled = scalar::mul(e, x, &slope, t);
    scalar::select(e, &positive, x, &scaled, t)
});
unary!(elu, |e, x, t, op| {
    // scale * (x > 0 ? x : alpha * (exp(x * input_scale) - 1))
    let alpha = constant(e, op.float("alpha", 1.0).unwrap_or(1.0), t);
    let scale = constant(e, op.float("scale", 1.0).unwrap_or(1.0), t);
    let input_scale = constant(e, op.float("input_scale", 1.0).unwrap_or(1.0), t);
    let zero = constant(e, 0.0, t);
    let xs = scalar::mul(e, x, &input_scale, t);
    let em1 = scalar::math(e, "expm1", &[&xs], t);
    let negative = scalar::mul(e, &em1, &alpha, t);
    let positive = scalar::compare(e, "gt", x, &zero, t);
    let v = scalar::select(e, &positive, x, &negative, t);
    scalar::mul(e, &v, &scale, t)
});
unary!(softplus, |e, x, t, op| {
    // log1p(exp(beta x)) / beta, linear above the threshold
    let beta = constant(e, op.float("beta", 1.0).unwrap_or(1.0), t);
    let threshold = constant(e, op.float("threshold", 20.0).unwrap_or(20.0), t);
    let bx = scalar::mul(e, x, &beta, t);
    let ex = scalar::math(e, "exp", &[&bx], t);
    let lp = scalar::math(e, "log1p", &[&ex], t);
    let soft = scalar::div(e, &lp, &beta, t);
    let linear = scalar::compare(e, "gt", &bx, &threshold, t);
    scalar::select(e, &linear, x, &soft, t)
});
unary!(clone, |e, x, t, op| x.to_string());
unary!(fill_scalar, |e, x, t, op| {
    let v = op.float("value", 0.0).unwrap_or(0.0);
    constant(e, v, t)
});

/// sigmoid(x) = 1 / (1 + e^-x), from t = e^-|x|: 1 / (1 + t) for x >= 0,
/// t / (1 + t) below, so the denominator lies in [1, 2] whatever x is and
/// its reciprocal needs no division (`scalar::div_of_finite`), and t comes
/// from `exp_of_nonpositive` (two FMAs fewer than `exp`). efficientnet_b0,
/// whose SiLUs are FMA-bound, 0.92x the time of 1 / (1 + e^-x) divided;
/// within 3.3e-7 of torch's relative to the result where it is above
/// 1e-30 (the op suite's `wide_nan_inf` cases). -inf gives 0 (t flushes
/// to 0), +inf 1, NaN NaN, as torch.
fn sigmoid_scalar(e: &mut Emitter, x: &str, t: &str) -> String {
    let one = constant(e, 1.0, t);
    let zero = constant(e, 0.0, t);
    let ax = e.assign(format!("math.absf {x} : {t}"));
    let nax = e.assign(format!("arith.negf {ax} : {t}"));
    let ex = scalar::exp_of_nonpositive(e, &nax, t);
    let den = scalar::add(e, &one, &ex, t);
    let r = scalar::div_of_finite(e, &one, &den, t);
    let below_zero = scalar::mul(e, &ex, &r, t);
    let negative = scalar::compare(e, "lt", x, &zero, t);
    scalar::select(e, &negative, &below_zero, &r, t)
}

fn hardsigmoid_scalar(e: &mut Emitter, x: &str, t: &str) -> String {
    // clamp(x / 6 + 1/2, 0, 1)
    let three = constant(e, 3.0, t);
    let six = constant(e, 6.0, t);
    let zero = constant(e, 0.0, t);
    let one = constant(e, 1.0, t);
    let shifted = scalar::add(e, x, &three, t);
    let scaled = scalar::div(e, &shifted, &six, t);
    clamp_scalar(e, &scaled, Some(&zero), Some(&one), true, t)
}

fn gelu_scalar(e: &mut Emitter, x: &str, t: &str, tanh: bool) -> String {
    let one = constant(e, 1.0, t);
    if tanh {
        // 0.5 x (1 + tanh(u)) = x * sigmoid(2u) with u = sqrt(2/pi) (x +
        // 0.044715 x^3): one exp and no division instead of a tanh (inf and
        // NaN give what torch's form gives).
        let k = constant(e, 2.0 * (2.0 / std::f64::consts::PI).sqrt(), t);
        let c = constant(e, 0.044715, t);
        let x2 = scalar::mul(e, x, x, t);
        let cx2 = scalar::mul(e, &c, &x2, t);
        let factor = scalar::add(e, &one, &cx2, t);
        let u = scalar::mul(e, x, &factor, t);
        let arg = scalar::mul(e, &k, &u, t);
        let s = sigmoid_scalar(e, &arg, t);
        return scalar::mul(e, x, &s, t);
    }
    let half = constant(e, 0.5, t);
    let k = constant(e, std::f64::consts::FRAC_1_SQRT_2, t);
    let arg = scalar::mul(e, x, &k, t);
    let inner = scalar::math(e, "erf", &[&arg], t);
    let s = scalar::add(e, &one, &inner, t);
    let hx = scalar::mul(e, &half, x, t);
    scalar::mul(e, &hx, &s, t)
}

fn sign_scalar(e: &mut Emitter, x: &str, t: &str) -> String {
    if t == "i1" {
        return x.to_string();
    }
    // (x > 0) - (x < 0), as torch computes it: zero and NaN give 0
    let zero = constant(e, 0.0, t);
    let one = constant(e, 1.0, t);
    let minus = constant(e, -1.0, t);
    let pos = scalar::compare(e, "gt", x, &zero, t);
    let neg = scalar::compare(e, "lt", x, &zero, t);
    let v = scalar::select(e, &neg, &minus, &zero, t);
    scalar::select(e, &pos, &one, &v, t)
}

/// torch.round: half to even, optionally at `decimals` digits.
fn round_decimals(e: &mut Emitter, x: &str, t: &str, decimals: i64) -> String {
    if !is_float(t) {
        return x.to_string();
    }
    if decimals == 0 {
        return scalar::math(e, "roundeven", &[x], t);
    }
    let scale = constant(e, 10f64.powi(decimals as i32), t);
    let up = scalar::mul(e, x, &scale, t);
    let r = scalar::math(e, "roundeven", &[&up], t);
    scalar::div(e, &r, &scale, t)
}

/// clamp with optional bounds; NaN in x propagates as in torch.clamp.
/// Bounds known not to be NaN (numbers in the program) take a compare and
/// a select each (`scalar::at_least`); others, which may be NaN and then
/// make the result NaN, a NaN-propagating maximum and minimum.
pub fn clamp_scalar(e: &mut Emitter, x: &str, lo: Option<&str>, hi: Option<&str>, bounds_not_nan: bool, t: &str) -> String {
    let mut v = x.to_string();
    if let Some(lo) = lo {
        v = if bounds_not_nan { scalar::at_least(e, &v, lo, t) } else { scalar::max(e, &v, lo, t) };
    }
    if let Some(hi) = hi {
        v = if bounds_not_nan { scalar::at_most(e, &v, hi, t) } else { scalar::min(e, &v, hi, t) };
    }
    v
}

binary!(add, |e, a, b, t, op| {
    let alpha = op.float("alpha", 1.0).unwrap_or(1.0);
    let b = scaled(e, b, alpha, t);
    scalar::add(e, a, &b, t)
});
binary!(sub, |e, a, b, t, op| {
    let alpha = op.float("alpha", 1.0).unwrap_or(1.0);
    let b = scaled(e, b, alpha, t);
    scalar::sub(e, a, &b, t)
});
binary!(mul, |e, a, b, t, op| scalar::mul(e, a, b, t));
binary!(div, |e, a, b, t, op| {
    match op.attrs.get("rounding_mode") {
        Some(Attr::Str(m)) if m == "trunc" => div_trunc(e, a, b, t),
        Some(Attr::Str(m)) if m == "floor" => div_floor(e, a, b, t),
        _ => scalar::div(e, a, b, t),
    }
});
binary!(remainder, |e, a, b, t, op| remainder_scalar(e, a, b, t));
binary!(fmod, |e, a, b, t, op| {
    let b = nonzero_divisor(e, b, t);
    scalar::arith(e, "arith.remf", "arith.remsi", a, &b, t)
});
binary!(maximum, |e, a, b, t, op| scalar::max(e, a, b, t));
binary!(minimum, |e, a, b, t, op| scalar::min(e, a, b, t));
binary!(atan2, |e, a, b, t, op| scalar::math(e, "atan2", &[a, b], t));
binary!(bitwise_and, |e, a, b, t, op| e.assign(format!("arith.andi {a}, {b} : {t}")));
binary!(bitwise_or, |e, a, b, t, op| e.assign(format!("arith.ori {a}, {b} : {t}")));
binary!(bitwise_xor, |e, a, b, t, op| e.assign(format!("arith.xori {a}, {b} : {t}")));

fn scaled(e: &mut Emitter, x: &str, k: f64, t: &str) -> String {
    if k == 1.0 {
        return x.to_string();
    }
    let c = constant(e, k, t);
    scalar::mul(e, x, &c, t)
}

/// Integer division by zero traps on x86; torch raises. Divide by one
/// instead so that a bad input gives a wrong value, never a crash.
fn nonzero_divisor(e: &mut Emitter, b: &str, t: &str) -> String {
    if is_float(t) {
        return b.to_string();
    }
    let zero = constant(e, 0.0, t);
    let one = constant(e, 1.0, t);
    let is_zero = scalar::compare(e, "eq", b, &zero, t);
    scalar::select(e, &is_zero, &one, b, t)
}

fn div_trunc(e: &mut Emitter, a: &str, b: &str, t: &str) -> String {
    if is_float(t) {
        let q = scalar::div(e, a, b, t);
        return scalar::math(e, "trunc", &[&q], t);
    }
    let b = nonzero_divisor(e, b, t);
    scalar::arith(e, "arith.divf", "arith.divsi", a, &b, t)
}

fn div_floor(e: &mut Emitter, a: &str, b: &str, t: &str) -> String {
    if is_float(t) {
        let q = scalar::div(e, a, b, t);
        return scalar::math(e, "floor", &[&q], t);
    }
    let b = nonzero_divisor(e, b, t);
    if t == "ui8" {
        return scalar::arith(e, "arith.divf", "arith.divsi", a, &b, t);
    }
    e.assign(format!("arith.floordivsi {a}, {b} : {t}"))
}

/// Python's modulo: the result has the divisor's sign.
fn remainder_scalar(e: &mut Emitter, a: &str, b: &str, t: &str) -> String {
    let b = nonzero_divisor(e, b, t);
    let r = scalar::arith(e, "arith.remf", "arith.remsi", a, &b, t);
    let zero = constant(e, 0.0, t);
    let r_nonzero = scalar::compare(e, "ne", &r, &zero, t);
    let r_neg = scalar::compare(e, "lt", &r, &zero, t);
    let b_neg = scalar::compare(e, "lt", &b, &zero, t);
    let signs_differ = e.assign(format!("arith.xori {r_neg}, {b_neg} : i1"));
    let fix = e.assign(format!("arith.andi {r_nonzero}, {signs_differ} : i1"));
    let adjusted = scalar::add(e, &r, &b, t);
    scalar::select(e, &fix, &adjusted, &r, t)
}

/// pow.Tensor_Tensor, pow.Tensor_Scalar and pow.Scalar (`self` a number).
/// A float tensor to the power of 2, 3, 0.5, -0.5, -1 or -2 is computed
/// the way torch's CPU kernel computes it (products, sqrt, reciprocals), not
/// by a per-element `powf` call (GPT-2's GELU cubes every activation).
pub fn pow(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let constant_exponent = match op.attrs.get("exponent") {
        Some(Attr::Float(v)) => Some(*v),
        Some(Attr::Int(v)) => Some(*v as f64),
        _ => None,
    };
    arithmetic(e, op, &["self", "exponent"], |e, v, t, _| {
        if !is_float(t) {
            return scalar::math(e, "ipowi", &[&v[0], &v[1]], t);
        }
        constant_exponent
            .and_then(|n| power_by_products(e, &v[0], n, t))
            .unwrap_or_else(|| scalar::math(e, "powf", &[&v[0], &v[1]], t))
    })
}

/// x^n for the exponents torch special-cases, or None.
fn power_by_products(e: &mut Emitter, x: &str, n: f64, t: &str) -> Option<String> {
    let one = |e: &mut Emitter| constant(e, 1.0, t);
    Some(match n {
        2.0 => scalar::mul(e, x, x, t),
        3.0 => {
            let square = scalar::mul(e, x, x, t);
            scalar::mul(e, &square, x, t)
        }
        0.5 => scalar::math(e, "sqrt", &[x], t),
        -0.5 => scalar::math(e, "rsqrt", &[x], t),
        -1.0 => {
            let c = one(e);
            scalar::div(e, &c, x, t)
        }
        -2.0 => {
            let square = scalar::mul(e, x, x, t);
            let c = one(e);
            scalar::div(e, &c, &square, t)
        }
        _ => return None,
    })
}

/// eq, ne, lt, le, gt, ge (Tensor and Scalar overloads).
pub fn comparison(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let name = op.name.trim_start_matches("aten.");
    let pred = name.split('_').next().unwrap_or(name).to_string();
    promoted(e, op, &["self", "other"], |e, v, t| (scalar::compare(e, &pred, &v[0], &v[1], t), "i1".into()))
}

/// logical_and/or/xor: both sides as bools.
pub fn logical(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let which = op.name.trim_start_matches("aten.logical_").to_string();
    promoted(e, op, &["self", "other"], |e, v, t| {
        let a = scalar::cast(e, &v[0], t, "i1");
        let b = scalar::cast(e, &v[1], t, "i1");
        let o = match which.as_str() {
            "and" => "arith.andi",
            "or" => "arith.ori",
            _ => "arith.xori",
        };
        (e.assign(format!("{o} {a}, {b} : i1")), "i1".into())
    })
}

pub fn logical_not(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    promoted(e, op, &["self"], |e, v, t| {
        let b = scalar::cast(e, &v[0], t, "i1");
        let one = constant(e, 1.0, "i1");
        (e.assign(format!("arith.xori {b}, {one} : i1")), "i1".into())
    })
}

pub fn isnan(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    promoted(e, op, &["self"], |e, v, t| (scalar::is_nan(e, &v[0], t), "i1".into()))
}

pub fn isinf(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    promoted(e, op, &["self"], |e, v, t| {
        if !is_float(t) {
            return (constant(e, 0.0, "i1"), "i1".into());
        }
        let a = scalar::math(e, "absf", &[&v[0]], t);
        let inf = constant(e, f64::INFINITY, t);
        (scalar::compare(e, "eq", &a, &inf, t), "i1".into())
    })
}

/// where.self(condition, self, other)
pub fn where_self(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let cond = Input::of(op, "condition")?;
    let (a, b) = (Input::of(op, "self")?, Input::of(op, "other")?);
    let out = op.result().clone();
    let Input::Tensor(c, c_ty) = cond else { return Err("where: condition must be a tensor".into()) };
    let inputs = [Input::Tensor(c, c_ty), a, b];
    let r = pointwise(e, &inputs, &out.elem, &out, |e, v, t| {
        let c = scalar::cast(e, &v[0], t, "i1");
        (scalar::select(e, &c, &v[1], &v[2], t), t.to_string())
    });
    Ok(vec![r.map_err(|m| format!("{}: {m}", op.name))?])
}

/// clamp(self, min?, max?) with Scalar or Tensor bounds.
pub fn clamp(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let mut args = vec!["self"];
    let has = |n: &str| op.opt_input(n).is_some() || matches!(op.attrs.get(n), Some(Attr::Int(_) | Attr::Float(_)));
    let (has_min, has_max) = (has("min"), has("max"));
    // number bounds other than NaN (a bound given as a tensor may hold NaN)
    let number = |n: &str| match op.attrs.get(n) {
        Some(Attr::Int(_)) => true,
        Some(Attr::Float(f)) => !f.is_nan(),
        _ => false,
    };
    let bounds_not_nan = (!has_min || number("min")) && (!has_max || number("max"));
    if has_min {
        args.push("min");
    }
    if has_max {
        args.push("max");
    }
    arithmetic(e, op, &args, |e, v, t, _| {
        let lo = if has_min { Some(v[1].as_str()) } else { None };
        let hi = if has_max { Some(v[args.len() - 1].as_str()) } else { None };
        clamp_scalar(e, &v[0], lo, hi, bounds_not_nan, t)
    })
}

/// _to_copy / to: a dtype conversion (layout and device are ignored).
pub fn to_copy(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = op.input("self")?;
    Ok(vec![convert(e, &x.ssa, &x.ty, &op.result().elem)])
}

/// masked_fill(self, mask, value): value where mask, else self.
pub fn masked_fill(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let x = Input::of(op, "self")?;
    let value = Input::of(op, "value")?;
    let mask = op.input("mask")?;
    let out = op.result().clone();
    let inputs = [Input::Tensor(mask.ssa.clone(), mask.ty.clone()), x, value];
    let r = pointwise(e, &inputs, &out.elem, &out, |e, v, t| {
        let c = scalar::cast(e, &v[0], t, "i1");
        (scalar::select(e, &c, &v[2], &v[1], t), t.to_string())
    });
    Ok(vec![r.map_err(|m| format!("{}: {m}", op.name))?])
}
