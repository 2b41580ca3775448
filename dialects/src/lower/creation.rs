//! Tensors made from scalars: full/zeros/ones/empty and their `_like`
//! forms, scalar_tensor, fill, arange. Shapes and dtypes come from the
//! result type, so one rule serves every overload.

use super::elementwise::{filled, map};
use super::scalar::{self, literal};
use super::shape::indexed;
use super::{AtenOp, Emitter};

/// The value an op fills with: 1 for ones, its value argument, else 0
/// (empty tensors are zero-filled so that results never depend on stale memory).
fn fill_value(op: &AtenOp) -> Result<f64, String> {
    if op.name.contains("ones") {
        return Ok(1.0);
    }
    for name in ["fill_value", "s", "value"] {
        if op.attrs.contains_key(name) {
            return op.float(name, 0.0);
        }
    }
    Ok(0.0)
}

/// full, full_like, zeros, ones, empty, scalar_tensor, new_*, fill.Scalar.
pub fn full(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let out = op.result();
    Ok(vec![filled(e, out, &literal(fill_value(op)?, &out.elem))])
}

/// fill.Tensor(self, value): the 0-d value broadcast to self's shape.
pub fn fill_tensor(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let v = op.input("value")?;
    let out = op.result().clone();
    let (from, to) = (v.ty.elem.clone(), out.elem.clone());
    Ok(vec![map(e, &[(&v.ssa, &v.ty)], &out, |e, a| scalar::cast(e, &a[0], &from, &to))])
}

/// arange(end), arange.start(start, end), arange.start_step(start, end, step):
/// start + i * step, computed in f64 (as torch does for float results).
pub fn arange(e: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
    let out = op.result().clone();
    let start = op.float("start", 0.0)?;
    let step = op.float("step", 1.0)?;
    let elem = out.elem.clone();
    let wide = if out.is_float() { "f64" } else { "i64" };
    Ok(vec![indexed(e, &out, |e, i| {
        let i = e.assign(format!("arith.index_cast {} : index to i64", i[0]));
        let i = scalar::cast(e, &i, "i64", wide);
        let s = scalar::constant(e, start, wide);
        let d = scalar::constant(e, step, wide);
        let v = scalar::mul(e, &i, &d, wide);
        let v = scalar::add(e, &s, &v, wide);
        scalar::cast(e, &v, wide, &elem)
    })])
}
