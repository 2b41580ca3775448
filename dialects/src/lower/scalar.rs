//! Scalar arithmetic inside `linalg.generic` bodies: constants, casts with
//! torch's rules, and the handful of operations whose spelling depends on
//! whether the element type is a float, a signed integer or a bool.

use super::{float_literal, Emitter};
use crate::types::{bit_width, is_float, mlir_elem};

/// Whether integer ops on `elem` must be the unsigned ones (uint8, bool).
fn unsigned(elem: &str) -> bool {
    elem == "ui8" || elem == "i1"
}

/// The element type arithmetic runs in: half types compute in f32 (as
/// torch's CPU kernels do) and are rounded once per op.
pub fn compute_elem(elem: &str) -> &str {
    match elem {
        "f16" | "bf16" => "f32",
        e => e,
    }
}

/// A constant of `elem` with the value `v` (truncated for integers, `!= 0` for bool).
pub fn constant(e: &mut Emitter, v: f64, elem: &str) -> String {
    e.assign(format!("arith.constant {} : {}", literal(v, elem), mlir_elem(elem)))
}

/// `op a, b : elem` for a float or an integer op name chosen by the type.
pub fn arith(e: &mut Emitter, float_op: &str, int_op: &str, a: &str, b: &str, elem: &str) -> String {
    let op = if is_float(elem) {
        float_op.to_string()
    } else if unsigned(elem) {
        // the signed integer op's unsigned twin: divsi -> divui, maxsi -> maxui, ...
        int_op.replace("si", "ui")
    } else {
        int_op.to_string()
    };
    e.assign(format!("{op} {a}, {b} : {}", mlir_elem(elem)))
}

pub fn add(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    if elem == "i1" {
        return e.assign(format!("arith.ori {a}, {b} : i1"));
    }
    arith(e, "arith.addf", "arith.addi", a, b, elem)
}

pub fn sub(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    arith(e, "arith.subf", "arith.subi", a, b, elem)
}

pub fn mul(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    if elem == "i1" {
        return e.assign(format!("arith.andi {a}, {b} : i1"));
    }
    arith(e, "arith.mulf", "arith.muli", a, b, elem)
}

pub fn div(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    arith(e, "arith.divf", "arith.divsi", a, b, elem)
}

/// `a / b` where `a`, `b` and the quotient are finite (or NaN) and `b` is
/// kept away from 0 (sigmoid's 1 / (1 + e^-|x|)). In float32 the division
/// is marked `arcp` and `ninf` (true there), which lets LLVM compute it as
/// `a` times a reciprocal estimate refined by one Newton step where the
/// target has an estimate (x86: `vrcp14ps` with AVX-512, `vrcpps` with
/// AVX; within ~2 ulps), and `contract`, which makes the step two FMAs:
/// the divider takes several cycles per vector (efficientnet_b0, two SiLUs
/// a block: 0.95x the time of the exact division). Where a division is not
/// what bounds the kernel it does not pay (tanh's, erf's: measured level
/// or slower).
pub fn div_of_finite(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    if elem == "f32" {
        return e.assign(format!("arith.divf {a}, {b} fastmath<arcp,ninf,contract> : f32"));
    }
    div(e, a, b, elem)
}

/// NaN-propagating maximum, as torch.maximum and max reductions.
pub fn max(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    match elem {
        "i1" => e.assign(format!("arith.ori {a}, {b} : i1")),
        _ => arith(e, "arith.maximumf", "arith.maxsi", a, b, elem),
    }
}

/// A maximum that need not propagate NaN, for the row maximum that
/// softmax and logsumexp subtract: a NaN in the row makes its exp, the
/// sum and so every result of the row NaN anyway. `nnan` lets LLVM emit
/// one `max` instruction where NaN propagation costs four on x86.
pub fn max_of_finite(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    if is_float(elem) {
        return e.assign(format!("arith.maximumf {a}, {b} fastmath<nnan> : {}", mlir_elem(elem)));
    }
    max(e, a, b, elem)
}

/// `x` raised to `lo` where below it, for a bound `lo` that is not NaN (a
/// constant): as torch's clamp_min, NaN in `x` passes through (a compare
/// with NaN is false) and -0.0 stays -0.0. A compare and a select, which
/// x86 makes one `max` instruction: `maximumf` takes a compare and a blend
/// more, to order -0.0 below 0.0.
pub fn at_least(e: &mut Emitter, x: &str, lo: &str, elem: &str) -> String {
    if !is_float(elem) {
        return max(e, x, lo, elem);
    }
    let below = compare(e, "lt", x, lo, elem);
    select(e, &below, lo, x, elem)
}

/// `x` lowered to `hi` where above it, for a bound `hi` that is not NaN:
/// the mirror of [`at_least`] (one `min` instruction on x86).
pub fn at_most(e: &mut Emitter, x: &str, hi: &str, elem: &str) -> String {
    if !is_float(elem) {
        return min(e, x, hi, elem);
    }
    let above = compare(e, "gt", x, hi, elem);
    select(e, &above, hi, x, elem)
}

pub fn min(e: &mut Emitter, a: &str, b: &str, elem: &str) -> String {
    match elem {
        "i1" => e.assign(format!("arith.andi {a}, {b} : i1")),
        _ => arith(e, "arith.minimumf", "arith.minsi", a, b, elem),
    }
}

/// A comparison by its torch name (eq, ne, lt, le, gt, ge), giving an i1.
/// Float `ne` is unordered (NaN != NaN is true), the others ordered.
pub fn compare(e: &mut Emitter, pred: &str, a: &str, b: &str, elem: &str) -> String {
    if is_float(elem) {
        let p = match pred {
            "eq" => "oeq",
            "ne" => "une",
            "lt" => "olt",
            "le" => "ole",
            "gt" => "ogt",
            _ => "oge",
        };
        return e.assign(format!("arith.cmpf {p}, {a}, {b} : {elem}"));
    }
    let unsigned = unsigned(elem);
    let p = match pred {
        "eq" => "eq",
        "ne" => "ne",
        "lt" if unsigned => "ult",
        "le" if unsigned => "ule",
        "gt" if unsigned => "ugt",
        "ge" if unsigned => "uge",
        "lt" => "slt",
        "le" => "sle",
        "gt" => "sgt",
        _ => "sge",
    };
    e.assign(format!("arith.cmpi {p}, {a}, {b} : {}", mlir_elem(elem)))
}

pub fn select(e: &mut Emitter, cond: &str, a: &str, b: &str, elem: &str) -> String {
    e.assign(format!("arith.select {cond}, {a}, {b} : {}", mlir_elem(elem)))
}

pub fn is_nan(e: &mut Emitter, x: &str, elem: &str) -> String {
    if !is_float(elem) {
        return constant(e, 0.0, "i1");
    }
    e.assign(format!("arith.cmpf uno, {x}, {x} : {elem}"))
}

/// A `math` dialect op on one or more operands. The float32 functions of
/// hot elementwise code are polynomial approximations (see `approx`),
/// which vectorize; the others are `math` ops (libm for the rarer ones).
pub fn math(e: &mut Emitter, op: &str, args: &[&str], elem: &str) -> String {
    match (op, elem, args) {
        ("exp", "f32", [x]) => super::approx::exp(e, x),
        ("tanh", "f32", [x]) => super::approx::tanh(e, x),
        ("erf", "f32", [x]) => super::approx::erf(e, x),
        _ => e.assign(format!("math.{op} {} : {elem}", args.join(", "))),
    }
}

/// e^x for x <= 0 or NaN (softmax's shifted scores, sigmoid's -|x|): the float32
/// approximation needs no upper clamp there.
pub fn exp_of_nonpositive(e: &mut Emitter, x: &str, elem: &str) -> String {
    match elem {
        "f32" => super::approx::exp_of_nonpositive(e, x),
        _ => math(e, "exp", &[x], elem),
    }
}

/// Converts a scalar between element types with torch's rules
/// (float -> int truncates toward zero; anything -> bool is `!= 0`).
pub fn cast(e: &mut Emitter, value: &str, from: &str, to: &str) -> String {
    if from == to {
        return value.to_string();
    }
    let (ff, tf) = (is_float(from), is_float(to));
    if to == "i1" {
        let zero = constant(e, 0.0, from);
        return compare(e, "ne", value, &zero, from);
    }
    let (wf, wt) = (bit_width(from), bit_width(to));
    let op = match (ff, tf) {
        // f16 <-> bf16 goes through f32: neither holds the other.
        (true, true) if wt == wf => {
            let wide = e.assign(format!("arith.extf {value} : {from} to f32"));
            return e.assign(format!("arith.truncf {wide} : f32 to {to}"));
        }
        (true, true) if wt > wf => "arith.extf",
        (true, true) => "arith.truncf",
        (false, true) if unsigned(from) => "arith.uitofp",
        (false, true) => "arith.sitofp",
        (true, false) if unsigned(to) => "arith.fptoui",
        (true, false) => "arith.fptosi",
        // int8 <-> uint8: the same bits
        (false, false) if wt == wf => return value.to_string(),
        (false, false) if wt > wf && unsigned(from) => "arith.extui",
        (false, false) if wt > wf => "arith.extsi",
        (false, false) => "arith.trunci",
    };
    e.assign(format!("{op} {value} : {} to {}", mlir_elem(from), mlir_elem(to)))
}

/// The identity of max over `elem` (-inf, or the smallest integer).
pub fn lowest(elem: &str) -> f64 {
    match elem {
        e if is_float(e) => f64::NEG_INFINITY,
        "i1" | "ui8" => 0.0,
        e => -(2f64.powi(bit_width(e) as i32 - 1)),
    }
}

/// The identity of min over `elem`.
pub fn highest(elem: &str) -> f64 {
    match elem {
        e if is_float(e) => f64::INFINITY,
        "i1" => 1.0,
        "ui8" => 255.0,
        e => 2f64.powi(bit_width(e) as i32 - 1) - 1.0,
    }
}

/// A constant literal for `linalg.fill`/`tensor.pad` of `elem`.
pub fn literal(v: f64, elem: &str) -> String {
    if is_float(elem) {
        // A value beyond the type's range rounds to infinity, as torch's cast
        // does (a -1e9 mask fill in float16 is -inf); MLIR rejects such
        // literals, so they are written as the infinity's bits.
        let max = match elem {
            "f16" => 65504.0,
            "bf16" => 3.3895313892515355e38,
            "f32" => f32::MAX as f64,
            _ => f64::MAX,
        };
        let v = if v.abs() > max { v.signum() * f64::INFINITY } else { v };
        match elem {
            "f16" if v.is_infinite() => if v > 0.0 { "0x7C00".into() } else { "0xFC00".into() },
            "bf16" if v.is_infinite() => if v > 0.0 { "0x7F80".into() } else { "0xFF80".into() },
            "f32" if v.is_infinite() => if v > 0.0 { "0x7F800000".into() } else { "0xFF800000".into() },
            _ => float_literal(v),
        }
    } else if elem == "i1" {
        // `arith.constant true : i1` does not parse; the integer form does
        if v != 0.0 { "1".into() } else { "0".into() }
    } else {
        // Wraps like torch's cast does for out-of-range integer fills.
        let wrapped = (v as i64) as i128 & ((1i128 << bit_width(elem)) - 1);
        let signed = if wrapped >= 1i128 << (bit_width(elem) - 1) { wrapped - (1i128 << bit_width(elem)) } else { wrapped };
        signed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_saturate_to_infinity_and_wrap_integers() {
        assert_eq!(literal(-1e9, "f16"), "0xFC00");
        assert_eq!(literal(1e39, "f32"), "0x7F800000");
        assert_eq!(literal(255.0, "ui8"), "-1");
        assert_eq!(literal(1.0, "i1"), "1");
        assert_eq!(literal(-3.0, "i64"), "-3");
    }
}
