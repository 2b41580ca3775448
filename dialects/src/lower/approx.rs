//! Polynomial approximations of the float32 math functions that sit in hot
//! elementwise code (exp for softmax, sigmoid and SiLU; tanh for GELU's
//! tanh form; erf for GELU). They are plain arithmetic (fma, bit
//! manipulation, selects), so the loops around them vectorize like any
//! other elementwise loop, where a libm call per element would not.
//! Accuracy: a few ulps (the op suite compares with torch at 1e-5);
//! inf, -inf and NaN give what torch gives (NaN passes through every step,
//! no select needed). float64 keeps libm.

use super::scalar::{self, constant};
use super::Emitter;

/// `math.fma a, b, c` (a * b + c), one rounding.
fn fma(e: &mut Emitter, a: &str, b: &str, c: &str) -> String {
    e.assign(format!("math.fma {a}, {b}, {c} : f32"))
}

fn f32c(e: &mut Emitter, v: f64) -> String {
    constant(e, v, "f32")
}

/// Horner's scheme: c[0] * x^(n-1) + ... + c[n-1].
fn polynomial(e: &mut Emitter, x: &str, coefficients: &[f64]) -> String {
    let mut acc = f32c(e, coefficients[0]);
    for &c in &coefficients[1..] {
        let k = f32c(e, c);
        acc = fma(e, &acc, x, &k);
    }
    acc
}

/// `x` clamped to `[lo, hi]` with compares and selects (`scalar::at_least`,
/// `scalar::at_most`): NaN passes through, one `max` and one `min`
/// instruction on x86.
fn clamp(e: &mut Emitter, x: &str, lo: f64, hi: f64) -> String {
    let x = at_least(e, x, lo);
    let hi = f32c(e, hi);
    scalar::at_most(e, &x, &hi, "f32")
}

/// `x` raised to `lo` when below it (NaN passes through, as in `clamp`).
fn at_least(e: &mut Emitter, x: &str, lo: f64) -> String {
    let lo = f32c(e, lo);
    scalar::at_least(e, x, &lo, "f32")
}

/// e^x = 2^n e^r with n = round(x / ln2) and |r| <= ln2 / 2.
///
/// - n comes from adding 1.5 * 2^23 + 126 (the "magic" constant): the sum
///   rounds to an integer whose low mantissa bits are n + 126, so shifting
///   its bits left by 23 gives the float 2^(n-1) with no conversion.
/// - r = x - n ln2 with ln2 in two parts (Cody-Waite), so r is exact.
/// - e^r is a degree-6 polynomial (a minimax fit by reweighted least squares,
///   within 1 ulp), with every coefficient doubled to make up for 2^(n-1).
/// - x is clamped to [-87.5, 89]: above, 2^(n-1) * e^r overflows to inf;
///   below e^-87 (smaller than the least normal float) the result flushes
///   to 0, as n + 126 reaches 0. NaN passes the clamp and stays NaN.
pub fn exp(e: &mut Emitter, x: &str) -> String {
    let x = clamp(e, x, -87.5, 89.0);
    exp_in_range(e, &x)
}

/// e^x for x <= 0 (or NaN), as softmax's x - max x and sigmoid's -|x|
/// are, where the results are at most 1 and their absolute error matters
/// most: two FMAs fewer than `exp` (of ten on the FMA pipes, which bound
/// softmax's costliest pass and SiLU's kernels), and no upper clamp.
/// r = x - n ln2 in one FMA (its error grows with |n|, as e^x shrinks),
/// and e^r a degree-5 polynomial (minimax for relative error, 8.4e-8).
/// Absolute error below 2e-7 on [-87.5, 0];
/// relative error 2e-7 near 0, 1.2e-6 near x = -20 (e^x ~ 2e-9). -inf (a
/// masked score) still needs the lower clamp.
pub fn exp_of_nonpositive(e: &mut Emitter, x: &str) -> String {
    let x = at_least(e, x, -87.5);
    let log2e = f32c(e, std::f64::consts::LOG2_E);
    let magic = f32c(e, 12582912.0 + 126.0);
    let shifted = fma(e, &x, &log2e, &magic);
    let n = e.assign(format!("arith.subf {shifted}, {magic} : f32"));
    let minus_ln2 = f32c(e, -std::f64::consts::LN_2);
    let r = fma(e, &n, &minus_ln2, &x);
    let twice: Vec<f64> = [8.29621349960034e-3, 4.192536788152024e-2, 0.16667649450400543, 0.49998804694618004, 0.999999653273551, 1.0000000805359481]
        .iter()
        .map(|c| 2.0 * c)
        .collect();
    let p = polynomial(e, &r, &twice);
    times_power_of_two(e, &p, &shifted)
}

/// e^x for x in [-87.5, 89] or NaN.
fn exp_in_range(e: &mut Emitter, x: &str) -> String {
    let log2e = f32c(e, std::f64::consts::LOG2_E);
    let magic = f32c(e, 12582912.0 + 126.0);
    let shifted = fma(e, x, &log2e, &magic);
    let n = e.assign(format!("arith.subf {shifted}, {magic} : f32"));
    let (ln2_hi, ln2_lo) = (f32c(e, -0.693359375), f32c(e, 2.12194440e-4));
    let r = fma(e, &n, &ln2_hi, x);
    let r = fma(e, &n, &ln2_lo, &r);
    let twice: Vec<f64> = [1.390379387885332e-3, 8.366219699382782e-3, 4.166676476597786e-2, 0.1666654348373413, 0.5, 1.0, 1.0]
        .iter()
        .map(|c| 2.0 * c)
        .collect();
    let p = polynomial(e, &r, &twice);
    times_power_of_two(e, &p, &shifted)
}

/// p * 2^(n-1), with n + 126 in the low mantissa bits of `shifted` (see
/// `exp`).
fn times_power_of_two(e: &mut Emitter, p: &str, shifted: &str) -> String {
    let bits = e.assign(format!("arith.bitcast {shifted} : f32 to i32"));
    let shift = constant(e, 23.0, "i32");
    let bits = e.assign(format!("arith.shli {bits}, {shift} : i32"));
    let scale = e.assign(format!("arith.bitcast {bits} : i32 to f32"));
    e.assign(format!("arith.mulf {p}, {scale} : f32"))
}

/// tanh: an odd polynomial (Cephes' tanhf) below |x| = 0.625, else
/// 1 - 2 / (e^(2|x|) + 1) with the sign of x (saturating to 1).
pub fn tanh(e: &mut Emitter, x: &str) -> String {
    let ax = e.assign(format!("math.absf {x} : f32"));
    // small |x|
    let x2 = e.assign(format!("arith.mulf {x}, {x} : f32"));
    let p = polynomial(e, &x2, &[-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1]);
    let x3 = e.assign(format!("arith.mulf {x2}, {x} : f32"));
    let small = fma(e, &p, &x3, x);
    // large |x|
    let two = f32c(e, 2.0);
    let ax2 = e.assign(format!("arith.mulf {ax}, {two} : f32"));
    let e2 = exp(e, &ax2);
    let one = f32c(e, 1.0);
    let den = e.assign(format!("arith.addf {e2}, {one} : f32"));
    let q = e.assign(format!("arith.divf {two}, {den} : f32"));
    let t = e.assign(format!("arith.subf {one}, {q} : f32"));
    let large = e.assign(format!("math.copysign {t}, {x} : f32"));
    let bound = f32c(e, 0.625);
    let is_small = e.assign(format!("arith.cmpf olt, {ax}, {bound} : f32"));
    e.assign(format!("arith.select {is_small}, {small}, {large} : f32"))
}

/// erf: x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (a rational minimax
/// fit, the form Eigen and XLA use for float32).
pub fn erf(e: &mut Emitter, x: &str) -> String {
    let c = clamp(e, x, -4.0, 4.0);
    let c2 = e.assign(format!("arith.mulf {c}, {c} : f32"));
    let p = polynomial(
        e,
        &c2,
        &[
            -2.72614225801306e-10,
            2.77068142495902e-08,
            -2.10102402082508e-06,
            -5.69250639462346e-05,
            -7.34990630326855e-04,
            -2.95459980854025e-03,
            -1.60960333262415e-02,
        ],
    );
    let p = e.assign(format!("arith.mulf {p}, {c} : f32"));
    let q = polynomial(
        e,
        &c2,
        &[-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03, -1.42647390514189e-02],
    );
    e.assign(format!("arith.divf {p}, {q} : f32"))
}
