//! Evaluation-mode batch norms folded into the convolution before them, at
//! compile time.
//!
//! A batch norm with running statistics is a per-channel affine map,
//! `y = x * s + (beta - mean * s)` with `s = gamma / sqrt(var + eps)`.
//! Applied to a convolution's output it folds into the convolution:
//! `W'[f] = W[f] * s[f]`, `b'[f] = (b[f] - mean[f]) * s[f] + beta[f]`. The
//! folded weight and bias are new constants; the batch norm disappears from
//! the program (one FMA per element less; the bias lands in the product's
//! init), and the original weights are dropped when nothing else reads
//! them.
//!
//! Folded only when every operand is known at compile time (parameters,
//! constants, buffers that the program never writes), the convolution's
//! result feeds the batch norm alone, the batch norm's other results are
//! unused, and everything is f32. The result differs from torch's by
//! rounding only (the products are scaled before the sum instead of after).

use crate::graph::{only_first_result_read, producer, tensor_operands, uses};
use crate::program::{Arg, DType, ExportedProgram, GraphInput, HostTensor, InputKind, Node, TensorType};
use std::collections::HashSet;

/// Convolutions whose weight is `[out channels, in channels / groups, k..]`.
fn is_convolution(node: &Node) -> bool {
    match node.target.as_str() {
        "aten.conv1d.default" | "aten.conv2d.default" | "aten.conv3d.default" => true,
        "aten.convolution.default" => node.arg("transposed") != Some(&Arg::Bool(true)),
        _ => false,
    }
}

/// Batch norms that use their running statistics.
fn is_evaluation_batch_norm(node: &Node) -> bool {
    match node.target.as_str() {
        "aten._native_batch_norm_legit_no_training.default" => true,
        "aten.batch_norm.default" => node.arg("training") == Some(&Arg::Bool(false)),
        _ => false,
    }
}

/// The f32 values of a graph input known at compile time: a parameter, a
/// constant or a buffer the program never writes.
fn known_f32(program: &ExportedProgram, name: &str) -> Option<Vec<f32>> {
    let input = program.inputs.iter().find(|i| i.name == name)?;
    let known = match &input.kind {
        InputKind::Parameter { .. } | InputKind::Constant { .. } => true,
        InputKind::Buffer { fqn, .. } => !program.writes_buffer(fqn),
        InputKind::User => false,
    };
    let w = program.weight_of(input)?;
    (known && w.ty.dtype == DType::F32).then(|| w.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// What a fold computes: the new weight and bias of one convolution.
struct Folded {
    conv: usize,
    norm: usize,
    weight: HostTensor,
    bias: HostTensor,
}

/// The fold of the batch norm `norm` into the convolution producing its
/// input, if it applies.
fn fold_one(program: &ExportedProgram, norm: usize) -> Option<Folded> {
    let bn = &program.nodes[norm];
    let x = bn.tensor_arg("input")?;
    let conv = producer(program, x)?;
    let c = &program.nodes[conv];
    if !is_convolution(c) || uses(program, x) != 1 || !only_first_result_read(program, bn) || c.outputs.len() != 1 {
        return None;
    }
    let weight_name = c.tensor_arg("weight")?;
    let w_ty = program.tensor_type(weight_name)?;
    let w = known_f32(program, weight_name)?;
    let channels = *w_ty.shape.first()? as usize;
    // a per-channel operand of `node`; `default` when it is absent
    let per_channel = |node: &Node, name: &str, default: Option<f32>| -> Option<Vec<f32>> {
        match node.arg(name) {
            None | Some(Arg::None) => default.map(|d| vec![d; channels]),
            Some(Arg::Tensor(t)) => known_f32(program, t).filter(|v| v.len() == channels),
            Some(_) => None,
        }
    };
    let bias = per_channel(c, "bias", Some(0.0))?;
    let (gamma, beta) = (per_channel(bn, "weight", Some(1.0))?, per_channel(bn, "bias", Some(0.0))?);
    let (mean, var) = (per_channel(bn, "running_mean", None)?, per_channel(bn, "running_var", None)?);
    let eps = match bn.arg("eps") {
        Some(Arg::Float(e)) => *e,
        _ => return None,
    };
    let scale: Vec<f64> = (0..channels).map(|f| gamma[f] as f64 / (var[f] as f64 + eps).sqrt()).collect();
    let per_filter = w.len() / channels.max(1);
    let weight: Vec<f32> = w.iter().enumerate().map(|(i, &v)| (v as f64 * scale[i / per_filter]) as f32).collect();
    let shift: Vec<f32> = (0..channels).map(|f| ((bias[f] as f64 - mean[f] as f64) * scale[f] + beta[f] as f64) as f32).collect();
    let tensor = |shape: Vec<i64>, values: &[f32]| HostTensor {
        ty: TensorType { dtype: DType::F32, shape },
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    Some(Folded {
        conv,
        norm,
        weight: tensor(w_ty.shape.clone(), &weight),
        bias: tensor(vec![channels as i64], &shift),
    })
}

/// A graph input name not taken yet.
fn fresh_name(program: &ExportedProgram, stem: &str) -> String {
    let taken = |n: &str| program.tensor_types.contains_key(n) || program.inputs.iter().any(|i| i.name == n);
    (0..).map(|k| if k == 0 { stem.to_string() } else { format!("{stem}_{k}") }).find(|n| !taken(n)).expect("a free name")
}

/// Adds a compile-time constant input and returns its name.
fn add_constant(program: &mut ExportedProgram, stem: &str, value: HostTensor) -> String {
    let name = fresh_name(program, stem);
    let fqn = format!("aotc_folded.{name}");
    program.tensor_types.insert(name.clone(), value.ty.clone());
    program.inputs.push(GraphInput { name: name.clone(), kind: InputKind::Constant { fqn: fqn.clone() }, ty: value.ty.clone() });
    program.weights.insert(fqn, value);
    name
}

/// Folds every evaluation batch norm that directly follows a convolution
/// into it (see the module comment); returns how many.
pub fn fold_batch_norms(program: &mut ExportedProgram) -> usize {
    let mut folded = 0;
    let mut replaced: HashSet<String> = HashSet::new();
    let mut norm = 0;
    while norm < program.nodes.len() {
        let fold = if is_evaluation_batch_norm(&program.nodes[norm]) { fold_one(program, norm) } else { None };
        let Some(f) = fold else {
            norm += 1;
            continue;
        };
        let conv_name = program.nodes[f.conv].name.clone();
        let weight = add_constant(program, &format!("{conv_name}_folded_weight"), f.weight);
        let bias = add_constant(program, &format!("{conv_name}_folded_bias"), f.bias);
        let bn = program.nodes.remove(f.norm);
        let conv = &mut program.nodes[if f.conv > f.norm { f.conv - 1 } else { f.conv }];
        replaced.extend(tensor_operands(conv).iter().chain(tensor_operands(&bn).iter()).map(|s| s.to_string()));
        conv.set_arg("weight", Arg::Tensor(weight));
        conv.set_arg("bias", Arg::Tensor(bias));
        // the convolution now computes the batch norm's result, under its name
        conv.outputs[0] = bn.outputs[0].clone();
        conv.stack_trace = conv.stack_trace.clone().or(bn.stack_trace);
        folded += 1;
    }
    // the weights the folds replaced, where nothing else reads them (and
    // no buffer the program writes: its new value is stored by name)
    let removable = |i: &GraphInput| match &i.kind {
        InputKind::User => false,
        InputKind::Buffer { fqn, .. } if program.writes_buffer(fqn) => false,
        _ => replaced.contains(&i.name) && uses(program, &i.name) == 0,
    };
    let dead: HashSet<String> = program.inputs.iter().filter(|i| removable(i)).map(|i| i.name.clone()).collect();
    program.inputs.retain(|i| !dead.contains(&i.name));
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::OutputKind;
    use std::collections::BTreeMap;

    fn f32s(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn input(name: &str, kind: InputKind, shape: Vec<i64>) -> GraphInput {
        GraphInput { name: name.into(), kind, ty: TensorType { dtype: DType::F32, shape } }
    }

    /// conv (2 filters of 2 weights, no bias) -> batch_norm(eval) -> output
    fn conv_then_norm(extra_use: bool) -> ExportedProgram {
        let t = |s: &str| Arg::Tensor(s.into());
        let param = |fqn: &str| InputKind::Parameter { fqn: fqn.into() };
        let buffer = |fqn: &str| InputKind::Buffer { fqn: fqn.into(), persistent: true };
        let mut weights = BTreeMap::new();
        for (fqn, values) in [("w", vec![1.0, 2.0, 3.0, 4.0]), ("g", vec![2.0, 1.0]), ("b", vec![0.5, -1.0]), ("m", vec![1.0, 0.0]), ("v", vec![15.0, 0.0])] {
            let shape = vec![values.len() as i64];
            weights.insert(fqn.to_string(), HostTensor { ty: TensorType { dtype: DType::F32, shape }, data: f32s(&values) });
        }
        weights.get_mut("w").unwrap().ty.shape = vec![2, 2, 1];
        let mut outputs = vec![crate::program::GraphOutput { name: "y".into(), kind: OutputKind::User, ty: TensorType { dtype: DType::F32, shape: vec![1, 2, 3] } }];
        if extra_use {
            outputs.push(crate::program::GraphOutput { name: "c".into(), kind: OutputKind::User, ty: TensorType { dtype: DType::F32, shape: vec![1, 2, 3] } });
        }
        ExportedProgram {
            name: "t".into(),
            inputs: vec![
                input("x", InputKind::User, vec![1, 2, 3]),
                input("w", param("w"), vec![2, 2, 1]),
                input("g", param("g"), vec![2]),
                input("b", param("b"), vec![2]),
                input("m", buffer("m"), vec![2]),
                input("v", buffer("v"), vec![2]),
            ],
            outputs,
            nodes: vec![
                Node::for_test("conv1d", "aten.conv1d.default", vec![("input", t("x")), ("weight", t("w"))], "c"),
                Node::for_test(
                    "bn",
                    "aten.batch_norm.default",
                    vec![("input", t("c")), ("weight", t("g")), ("bias", t("b")), ("running_mean", t("m")), ("running_var", t("v")), ("training", Arg::Bool(false)), ("eps", Arg::Float(1.0))],
                    "y",
                ),
            ],
            tensor_types: BTreeMap::new(),
            bad_tensors: BTreeMap::new(),
            weights,
            sample_inputs: None,
            derived_weights: Default::default(),
            unread_weights: Default::default(),
        }
    }

    fn values(program: &ExportedProgram, name: &str) -> Vec<f32> {
        known_f32(program, name).unwrap()
    }

    #[test]
    fn folds_scale_into_weight_and_shift_into_bias() {
        let mut p = conv_then_norm(false);
        assert_eq!(fold_batch_norms(&mut p), 1);
        assert_eq!(p.nodes.len(), 1);
        let conv = &p.nodes[0];
        assert_eq!(conv.outputs[0].as_deref(), Some("y"));
        // s = gamma / sqrt(var + eps) = [2 / 4, 1 / 1], per filter
        assert_eq!(values(&p, conv.tensor_arg("weight").unwrap()), vec![0.5, 1.0, 3.0, 4.0]);
        // (0 - mean) * s + beta = [-0.5 + 0.5, 0 - 1]
        assert_eq!(values(&p, conv.tensor_arg("bias").unwrap()), vec![0.0, -1.0]);
        // the replaced weights and statistics are gone
        let names: Vec<&str> = p.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["x", "conv1d_folded_weight", "conv1d_folded_bias"]);
    }

    #[test]
    fn leaves_a_convolution_read_elsewhere() {
        let mut p = conv_then_norm(true);
        assert_eq!(fold_batch_norms(&mut p), 0);
        assert_eq!(p.nodes.len(), 2);
    }

    #[test]
    fn leaves_statistics_the_program_writes() {
        let mut p = conv_then_norm(false);
        p.outputs.push(crate::program::GraphOutput { name: "m".into(), kind: OutputKind::BufferMutation { fqn: "m".into() }, ty: p.inputs[4].ty.clone() });
        assert_eq!(fold_batch_norms(&mut p), 0);
    }
}
