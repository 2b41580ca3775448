//! Ranked tensor types as the lowering sees them: a static shape and an
//! element type, parsed from and printed to MLIR syntax.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ty {
    pub shape: Vec<i64>,
    /// MLIR element type: f32, f64, f16, bf16, i64, i32, i16, i8, i1.
    pub elem: String,
}

impl Ty {
    pub fn new(shape: Vec<i64>, elem: &str) -> Ty {
        Ty { shape, elem: elem.to_string() }
    }

    /// Parses `tensor<1x3xf32>` or `memref<1x3xf32>`.
    pub fn parse(text: &str) -> Option<Ty> {
        let inner = text
            .strip_prefix("tensor<")
            .or_else(|| text.strip_prefix("memref<"))?
            .strip_suffix('>')?;
        let mut parts: Vec<&str> = inner.split('x').collect();
        let elem = parts.pop()?.to_string();
        let shape = parts.iter().map(|p| p.parse().ok()).collect::<Option<Vec<i64>>>()?;
        Some(Ty { shape, elem })
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }

    pub fn is_float(&self) -> bool {
        is_float(&self.elem)
    }

    pub fn with_elem(&self, elem: &str) -> Ty {
        Ty::new(self.shape.clone(), elem)
    }

    pub fn with_shape(&self, shape: Vec<i64>) -> Ty {
        Ty::new(shape, &self.elem)
    }

    /// Whether the elements are unsigned integers (uint8).
    pub fn is_unsigned(&self) -> bool {
        self.elem == "ui8"
    }

    fn dims(&self) -> String {
        self.shape.iter().map(|d| format!("{d}x")).collect()
    }

    pub fn memref(&self) -> String {
        format!("memref<{}{}>", self.dims(), mlir_elem(abi_elem(&self.elem)))
    }

    /// The tensor type at the ABI boundary (bool is stored as one byte).
    pub fn abi_tensor(&self) -> Ty {
        self.with_elem(abi_elem(&self.elem))
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "tensor<{}{}>", self.dims(), mlir_elem(&self.elem))
    }
}

pub fn is_float(elem: &str) -> bool {
    matches!(elem, "f16" | "bf16" | "f32" | "f64")
}

/// In memory a bool is a byte, as in torch; vectors of i1 would pack bits.
/// uint8 keeps its name: it is stored as i8 (see [`mlir_elem`]).
pub fn abi_elem(elem: &str) -> &str {
    if elem == "i1" {
        "i8"
    } else {
        elem
    }
}

/// The MLIR type of an element type. uint8 tensors are `ui8` in the aten
/// dialect; arith only takes signless integers, so lowered code stores them
/// as i8 and the lowering picks unsigned ops for them (see `lower::scalar`).
pub fn mlir_elem(elem: &str) -> &str {
    if elem == "ui8" {
        "i8"
    } else {
        elem
    }
}

pub fn bit_width(elem: &str) -> u32 {
    match elem {
        "i1" => 1,
        "i8" | "ui8" => 8,
        "i16" | "f16" | "bf16" => 16,
        "i32" | "f32" => 32,
        _ => 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_tensor_types() {
        let t = Ty::parse("tensor<1x3x32x32xf32>").unwrap();
        assert_eq!(t.shape, vec![1, 3, 32, 32]);
        assert_eq!(t.to_string(), "tensor<1x3x32x32xf32>");
        assert_eq!(Ty::parse("tensor<f32>").unwrap().shape, Vec::<i64>::new());
        assert_eq!(Ty::parse("tensor<6xi1>").unwrap().memref(), "memref<6xi8>");
    }
}
