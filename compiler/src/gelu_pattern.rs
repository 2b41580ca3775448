//! GELU's tanh approximation written out by hand, as GPT-2's
//! `NewGELUActivation` in Hugging Face transformers (and the models that
//! copied it) writes it:
//!
//! ```text
//! 0.5 * x * (1.0 + tanh(sqrt(2 / pi) * (x + 0.044715 * pow(x, 3.0))))
//! ```
//!
//! is rewritten into one `gelu(x, approximate="tanh")` node. Eight
//! elementwise ops that each read the linear layer's result become one,
//! which that layer then computes on its register tiles (a product's
//! epilogue is the one op that reads it, `kernels::epilogue`), and the tanh
//! becomes one exponential and a division (the gelu lowering). ONNX
//! Runtime fuses the same pattern (its FastGelu).
//!
//! Matched in the exported ops, from the last:
//!
//! ```text
//! a = mul(x, 0.5)       b = pow(x, 3)          c = mul(b, 0.044715)
//! d = add(x, c)         e = mul(d, sqrt(2/pi)) f = tanh(e)
//! g = add(f, 1)         h = mul(a, g)
//! ```
//!
//! with either operand order where the op commutes, every value from `a`
//! to `g` read once (by the next step) and `x` a floating-point tensor.
//! The result differs from the written-out form by rounding only.

use crate::graph::single_use_producer;
use crate::program::{Arg, DType, ExportedProgram, Node};

/// Whether `arg` is the number `value` (to 1e-6 relative: the constant as
/// a user's code spells it).
fn is_number(arg: Option<&Arg>, value: f64) -> bool {
    match arg {
        Some(Arg::Float(v)) => (v - value).abs() <= 1e-6 * value.abs(),
        Some(Arg::Int(v)) => *v as f64 == value,
        _ => false,
    }
}

/// For a binary node `node` (`self`, `other`) with one tensor operand
/// and one number: the tensor, when the number is `value`.
fn tensor_times(node: &Node, value: f64) -> Option<&str> {
    if is_number(node.arg("other"), value) {
        return node.tensor_arg("self");
    }
    None
}

/// The two tensor operands of `node`, in both orders.
fn both_orders(node: &Node) -> Option<[(&str, &str); 2]> {
    let (a, b) = (node.tensor_arg("self")?, node.tensor_arg("other")?);
    Some([(a, b), (b, a)])
}

/// `x` when the `mul` node `h` ends the pattern (see the module comment).
fn gelu_input<'a>(program: &'a ExportedProgram, h: &'a Node) -> Option<&'a str> {
    let alpha_one = |n: &Node| matches!(n.arg("alpha"), None | Some(Arg::Int(1)));
    for (a, g) in both_orders(h)? {
        let Some(a) = single_use_producer(program, a, &["aten.mul.Tensor"]) else { continue };
        let Some(x) = tensor_times(a, 0.5) else { continue };
        let Some(g) = single_use_producer(program, g, &["aten.add.Tensor"]) else { continue };
        let Some(f) = tensor_times(g, 1.0).filter(|_| alpha_one(g)) else { continue };
        let Some(f) = single_use_producer(program, f, &["aten.tanh.default"]) else { continue };
        let Some(e) = f.tensor_arg("self").and_then(|e| single_use_producer(program, e, &["aten.mul.Tensor"])) else { continue };
        let Some(d) = tensor_times(e, (2.0 / std::f64::consts::PI).sqrt()) else { continue };
        let Some(d) = single_use_producer(program, d, &["aten.add.Tensor"]).filter(|d| alpha_one(d)) else { continue };
        let Some(orders) = both_orders(d) else { continue };
        for (x_again, c) in orders {
            let Some(c) = single_use_producer(program, c, &["aten.mul.Tensor"]) else { continue };
            let Some(b) = tensor_times(c, 0.044715) else { continue };
            let Some(b) = single_use_producer(program, b, &["aten.pow.Tensor_Scalar"]) else { continue };
            let float = program.tensor_type(x).is_some_and(|t| matches!(t.dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16));
            if x_again == x && b.tensor_arg("self") == Some(x) && is_number(b.arg("exponent"), 3.0) && float {
                return Some(x);
            }
        }
    }
    None
}

/// Rewrites every written-out tanh GELU (see the module comment) into a
/// `gelu` node; returns how many. The nodes it replaces are left for
/// dead-code removal.
pub fn fuse_gelu(program: &mut ExportedProgram) -> usize {
    let mut fused = 0;
    for i in 0..program.nodes.len() {
        if program.nodes[i].target != "aten.mul.Tensor" {
            continue;
        }
        let Some(x) = gelu_input(program, &program.nodes[i]).map(str::to_string) else { continue };
        let node = &mut program.nodes[i];
        node.target = "aten.gelu.default".to_string();
        node.args = vec![("self".to_string(), Arg::Tensor(x)), ("approximate".to_string(), Arg::Str("tanh".to_string()))];
        fused += 1;
    }
    fused
}
