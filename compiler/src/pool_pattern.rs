//! A ReLU whose only reader is a max pool moves after the pool.
//!
//! Max pooling commutes with every non-decreasing function: the largest of
//! `relu(a), relu(b), ..` is `relu` of the largest (NaN too: it wins the
//! maximum and stays NaN). After the pool the ReLU reads the pooled tensor
//! (a quarter of the elements after a 3x3 stride-2 pool) and fuses into
//! the pool's maximum, and the pool reads the ReLU's input, where before
//! the ReLU was a pass of its own whenever it could not fuse into the
//! pool's first copy: squeezenet's stem, whose 111x111 maps are split by
//! the stride in pieces (`aotc_dialects::lower::conv::stride_phases`),
//! wrote and read 3.2 MB more per run. Values are the same; a zero's sign
//! may differ (the maximum of `-0.0` and a ReLU's `+0.0`).

use crate::graph::{only_first_result_read, producer, uses};
use crate::program::{Arg, ExportedProgram, TensorType};

/// The max pools that take a ReLU after them (the core form's, which also
/// return the maxima's indices, when nothing reads the indices).
const MAX_POOLS: &[&str] = &[
    "aten.max_pool1d.default",
    "aten.max_pool2d.default",
    "aten.max_pool3d.default",
    "aten.max_pool1d_with_indices.default",
    "aten.max_pool2d_with_indices.default",
    "aten.max_pool3d_with_indices.default",
];

/// Moves every ReLU read only by a max pool after that pool; returns how
/// many moved. The ReLU's result name comes to name the pool's result (of
/// the pool's type), and the ReLU's result is the pool's old one, so no
/// other node changes.
pub fn relu_after_max_pool(program: &mut ExportedProgram) -> usize {
    let mut moved = 0;
    // (a pool moved before its ReLU shifts the nodes between them by one:
    // the next index is still the next node not looked at)
    for p in 0..program.nodes.len() {
        if let Some(swap) = relu_before(program, p) {
            swap_relu_and_pool(program, swap);
            moved += 1;
        }
    }
    moved
}

/// A ReLU `y = relu(x)` at node `relu` read only by the max pool
/// `t = max_pool(y)` at node `pool`.
struct ReluThenPool {
    relu: usize,
    pool: usize,
    x: String,
    y: String,
    t: String,
    /// `t`'s type, which `y` takes
    pooled: TensorType,
}

/// The ReLU before node `pool`, if it is a max pool that is its only reader.
fn relu_before(program: &ExportedProgram, pool: usize) -> Option<ReluThenPool> {
    let node = &program.nodes[pool];
    // (the target first: the graph scans below are for max pools only)
    if !MAX_POOLS.contains(&node.target.as_str()) {
        return None;
    }
    let (y, Some(Some(t))) = (node.tensor_arg("self")?, node.outputs.first()) else { return None };
    let relu = producer(program, y).filter(|&r| r < pool && program.nodes[r].target == "aten.relu.default")?;
    if !only_first_result_read(program, node) || uses(program, y) != 1 {
        return None;
    }
    let x = program.nodes[relu].tensor_arg("self")?.to_string();
    let pooled = program.tensor_type(t)?.clone();
    Some(ReluThenPool { relu, pool, x, y: y.to_string(), t: t.clone(), pooled })
}

/// Rewrites `y = relu(x); t = max_pool(y)` into `y = max_pool(x); t =
/// relu(y)`, the pool in the ReLU's place and the ReLU right after it.
fn swap_relu_and_pool(program: &mut ExportedProgram, s: ReluThenPool) {
    program.nodes[s.pool].set_arg("self", Arg::Tensor(s.x));
    program.nodes[s.pool].outputs[0] = Some(s.y.clone());
    program.nodes[s.relu].set_arg("self", Arg::Tensor(s.y.clone()));
    program.nodes[s.relu].outputs[0] = Some(s.t);
    program.tensor_types.insert(s.y, s.pooled);
    let pool = program.nodes.remove(s.pool);
    program.nodes.insert(s.relu, pool);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{DType, GraphInput, GraphOutput, InputKind, Node, OutputKind, TensorType};

    /// x [1, 2, 5, 5] -> t = relu(x) -> y = max_pool2d(t, 3, 2) [1, 2, 2, 2];
    /// `also_returns_t` makes `t` a second output of the program.
    fn relu_pool(also_returns_t: bool) -> ExportedProgram {
        let ty = |shape: Vec<i64>| TensorType { dtype: DType::F32, shape };
        let output = |name: &str, t: TensorType| GraphOutput { name: name.into(), kind: OutputKind::User, ty: t };
        let mut outputs = vec![output("y", ty(vec![1, 2, 2, 2]))];
        if also_returns_t {
            outputs.push(output("t", ty(vec![1, 2, 5, 5])));
        }
        ExportedProgram::for_test(
            vec![GraphInput { name: "x".into(), kind: InputKind::User, ty: ty(vec![1, 2, 5, 5]) }],
            outputs,
            vec![
                Node::for_test("relu", "aten.relu.default", vec![("self", Arg::Tensor("x".into()))], "t"),
                Node::for_test(
                    "pool",
                    "aten.max_pool2d.default",
                    vec![("self", Arg::Tensor("t".into())), ("kernel_size", Arg::Ints(vec![3, 3])), ("stride", Arg::Ints(vec![2, 2]))],
                    "y",
                ),
            ],
            [("t".to_string(), ty(vec![1, 2, 5, 5])), ("y".to_string(), ty(vec![1, 2, 2, 2]))].into(),
        )
    }

    #[test]
    fn the_relu_runs_on_the_pooled_tensor() {
        let mut p = relu_pool(false);
        assert_eq!(relu_after_max_pool(&mut p), 1);
        let (pool, relu) = (&p.nodes[0], &p.nodes[1]);
        assert_eq!((pool.target.as_str(), pool.tensor_arg("self"), pool.outputs[0].as_deref()), ("aten.max_pool2d.default", Some("x"), Some("t")));
        assert_eq!((relu.target.as_str(), relu.tensor_arg("self"), relu.outputs[0].as_deref()), ("aten.relu.default", Some("t"), Some("y")));
        assert_eq!(pool.arg("kernel_size"), Some(&Arg::Ints(vec![3, 3])));
        assert_eq!(p.tensor_type("t").map(|t| t.shape.clone()), Some(vec![1, 2, 2, 2]));
    }

    #[test]
    fn a_pool_whose_indices_nobody_reads_takes_the_relu_after_it() {
        let mut p = relu_pool(false);
        p.nodes[1].target = "aten.max_pool2d_with_indices.default".into();
        p.nodes[1].outputs.push(Some("i".into()));
        assert_eq!(relu_after_max_pool(&mut p), 1);
        assert_eq!(p.nodes[0].outputs, vec![Some("t".to_string()), Some("i".to_string())]);
        let mut read = relu_pool(false);
        read.nodes[1].target = "aten.max_pool2d_with_indices.default".into();
        read.nodes[1].outputs.push(Some("i".into()));
        read.outputs[0].name = "i".into();
        assert_eq!(relu_after_max_pool(&mut read), 0);
    }

    #[test]
    fn a_relu_read_elsewhere_stays() {
        let mut p = relu_pool(true);
        assert_eq!(relu_after_max_pool(&mut p), 0);
        assert_eq!(p.nodes[0].target, "aten.relu.default");
        assert_eq!(p.nodes[1].tensor_arg("self"), Some("t"));
    }
}
