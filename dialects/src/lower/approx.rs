//! Polynomial approximations of the float32 math functions that sit in hot
//! elementwise code (exp for softmax, sigmoid and SiLU; tanh for GELU's
//! tanh form; erf for GELU). They are plain arithmetic (fma, bit
//! manipulation, selects), so the loops around them vectorize like any
//! other elementwise loop, where a libm call per element would not.
//! Accuracy: a few ulps (the op suite compares with torch at 1e-5);
//! inf, -inf and NaN give what torch gives. float64 keeps libm.

use super::scalar::constant;
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

/// 2^n for an integer-valued f32 n in [-127, 127], built from its bits.
fn exp2_integer(e: &mut Emitter, n: &str) -> String {
    let i = e.assign(format!("arith.fptosi {n} : f32 to i32"));
    let bias = constant(e, 127.0, "i32");
    let biased = e.assign(format!("arith.addi {i}, {bias} : i32"));
    let shift = constant(e, 23.0, "i32");
    let bits = e.assign(format!("arith.shli {biased}, {shift} : i32"));
    e.assign(format!("arith.bitcast {bits} : i32 to f32"))
}

/// e^x: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite, two-part ln2),
/// e^r by a degree-7 polynomial (Cephes' expf coefficients), times 2^n
/// applied in two halves so that overflow and underflow round to inf and 0
/// as they should.
pub fn exp(e: &mut Emitter, x: &str) -> String {
    let (lo, hi) = (f32c(e, -104.0), f32c(e, 89.0));
    let clamped = e.assign(format!("arith.maxnumf {x}, {lo} : f32"));
    let clamped = e.assign(format!("arith.minnumf {clamped}, {hi} : f32"));
    let log2e = f32c(e, std::f64::consts::LOG2_E);
    let scaled = e.assign(format!("arith.mulf {clamped}, {log2e} : f32"));
    let n = e.assign(format!("math.roundeven {scaled} : f32"));
    let (ln2_hi, ln2_lo) = (f32c(e, -0.693359375), f32c(e, 2.12194440e-4));
    let r = fma(e, &n, &ln2_hi, &clamped);
    let r = fma(e, &n, &ln2_lo, &r);
    let p = polynomial(e, &r, &[1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]);
    let r2 = e.assign(format!("arith.mulf {r}, {r} : f32"));
    let one = f32c(e, 1.0);
    let r1 = e.assign(format!("arith.addf {r}, {one} : f32"));
    let er = fma(e, &p, &r2, &r1);
    // 2^n = 2^(n - n/2) * 2^(n/2), each factor a normal float
    let half = f32c(e, 0.5);
    let nh = e.assign(format!("arith.mulf {n}, {half} : f32"));
    let n1 = e.assign(format!("math.floor {nh} : f32"));
    let n2 = e.assign(format!("arith.subf {n}, {n1} : f32"));
    let (s1, s2) = (exp2_integer(e, &n1), exp2_integer(e, &n2));
    let v = e.assign(format!("arith.mulf {er}, {s1} : f32"));
    let v = e.assign(format!("arith.mulf {v}, {s2} : f32"));
    let nan = e.assign(format!("arith.cmpf uno, {x}, {x} : f32"));
    e.assign(format!("arith.select {nan}, {x}, {v} : f32"))
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
    let v = e.assign(format!("arith.select {is_small}, {small}, {large} : f32"));
    let nan = e.assign(format!("arith.cmpf uno, {x}, {x} : f32"));
    e.assign(format!("arith.select {nan}, {x}, {v} : f32"))
}

/// erf: x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (a rational minimax
/// fit, the form Eigen and XLA use for float32).
pub fn erf(e: &mut Emitter, x: &str) -> String {
    let (lo, hi) = (f32c(e, -4.0), f32c(e, 4.0));
    let c = e.assign(format!("arith.maxnumf {x}, {lo} : f32"));
    let c = e.assign(format!("arith.minnumf {c}, {hi} : f32"));
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
    let v = e.assign(format!("arith.divf {p}, {q} : f32"));
    let nan = e.assign(format!("arith.cmpf uno, {x}, {x} : f32"));
    e.assign(format!("arith.select {nan}, {x}, {v} : f32"))
}
