//! Lowering from the aten dialect to linalg/tensor/arith/math on tensors.
//!
//! The driver walks the single `func.func` of an imported module and hands
//! each aten op to the rule registered for its name in [`RULES`]. A rule
//! writes MLIR text through an [`Emitter`] and returns the SSA names of the
//! op's results. The lowered function has the ABI the rest of the pipeline
//! expects: every input (weights first, in graph-signature order, then user
//! inputs) and every output is a `memref` argument, followed by the
//! activation arena `memref<?xi8>`; results are written with
//! `bufferization.materialize_in_destination`.
//!
//! Rules are grouped by op family, as torch-mlir's TorchToLinalg is:
//! elementwise, linear algebra, convolution, pooling, shape/view ops.

mod approx;
mod attention;
mod conv;
mod creation;
pub mod decompose;
pub mod elementwise;
mod indexing;
mod linear;
mod normalization;
mod pooling;
mod reduction;
pub mod scalar;
pub mod shape;
pub mod winograd;

/// The kernel strategy sizes row-panel register tiles by it.
pub use linear::row_panel_tile_spans_groups;

use crate::types::Ty;
use melior::ir::{
    block::BlockLike, operation::OperationLike, Module, OperationRef, RegionLike, Value, ValueLike,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// The annotation of loops whose iterations are independent (each writes
/// its own part of the result, reads nothing another writes): a kernel
/// whose outermost loop carries it runs its iterations on the worker pool
/// (see the compiler's `parallel`). The kernel strategies mark the loops
/// they tile; the lowering marks those it writes itself (attention's
/// batch-heads and query blocks, a convolution's blocks of output rows).
pub const PARALLEL: &str = "aotc.parallel";

/// How an op's tensor operands are declared in IRDL.
pub enum OperandSpec {
    One(&'static str),
    Optional(&'static str),
    Variadic(&'static str),
}

pub type LowerFn = fn(&mut Emitter, &AtenOp) -> Result<Vec<String>, String>;

/// One entry of the lowering table.
pub struct Rule {
    /// The aten op name, `aten.<op>[.<overload>]` (the `.default` overload is dropped).
    pub op: &'static str,
    pub operands: &'static [OperandSpec],
    pub results: usize,
    pub lower: LowerFn,
}

use OperandSpec::*;


/// Every aten op aotc compiles, with its lowering rule. Core ATen ops are
/// lowered natively; the others either share a native rule (when they are
/// the same computation under another name) or are decompositions into core
/// ops (`decompose::*`).
pub static RULES: &[Rule] = &[
    // elementwise: unary
    Rule { op: "aten.abs", operands: SELF, results: 1, lower: elementwise::abs },
    Rule { op: "aten.neg", operands: SELF, results: 1, lower: elementwise::neg },
    Rule { op: "aten.exp", operands: SELF, results: 1, lower: elementwise::exp },
    Rule { op: "aten.exp2", operands: SELF, results: 1, lower: elementwise::exp2 },
    Rule { op: "aten.expm1", operands: SELF, results: 1, lower: elementwise::expm1 },
    Rule { op: "aten.log", operands: SELF, results: 1, lower: elementwise::log },
    Rule { op: "aten.log2", operands: SELF, results: 1, lower: elementwise::log2 },
    Rule { op: "aten.log10", operands: SELF, results: 1, lower: elementwise::log10 },
    Rule { op: "aten.log1p", operands: SELF, results: 1, lower: elementwise::log1p },
    Rule { op: "aten.sqrt", operands: SELF, results: 1, lower: elementwise::sqrt },
    Rule { op: "aten.rsqrt", operands: SELF, results: 1, lower: elementwise::rsqrt },
    Rule { op: "aten.sin", operands: SELF, results: 1, lower: elementwise::sin },
    Rule { op: "aten.cos", operands: SELF, results: 1, lower: elementwise::cos },
    Rule { op: "aten.tan", operands: SELF, results: 1, lower: elementwise::tan },
    Rule { op: "aten.asin", operands: SELF, results: 1, lower: elementwise::asin },
    Rule { op: "aten.acos", operands: SELF, results: 1, lower: elementwise::acos },
    Rule { op: "aten.atan", operands: SELF, results: 1, lower: elementwise::atan },
    Rule { op: "aten.sinh", operands: SELF, results: 1, lower: elementwise::sinh },
    Rule { op: "aten.cosh", operands: SELF, results: 1, lower: elementwise::cosh },
    Rule { op: "aten.tanh", operands: SELF, results: 1, lower: elementwise::tanh },
    Rule { op: "aten.asinh", operands: SELF, results: 1, lower: elementwise::asinh },
    Rule { op: "aten.acosh", operands: SELF, results: 1, lower: elementwise::acosh },
    Rule { op: "aten.atanh", operands: SELF, results: 1, lower: elementwise::atanh },
    Rule { op: "aten.erf", operands: SELF, results: 1, lower: elementwise::erf },
    Rule { op: "aten.floor", operands: SELF, results: 1, lower: elementwise::floor },
    Rule { op: "aten.ceil", operands: SELF, results: 1, lower: elementwise::ceil },
    Rule { op: "aten.trunc", operands: SELF, results: 1, lower: elementwise::trunc },
    Rule { op: "aten.round", operands: SELF, results: 1, lower: elementwise::round },
    Rule { op: "aten.round_decimals", operands: SELF, results: 1, lower: elementwise::round },
    Rule { op: "aten.sigmoid", operands: SELF, results: 1, lower: elementwise::sigmoid },
    Rule { op: "aten.reciprocal", operands: SELF, results: 1, lower: elementwise::reciprocal },
    Rule { op: "aten.sign", operands: SELF, results: 1, lower: elementwise::sign },
    Rule { op: "aten.bitwise_not", operands: SELF, results: 1, lower: elementwise::bitwise_not },
    Rule { op: "aten.logical_not", operands: SELF, results: 1, lower: elementwise::logical_not },
    Rule { op: "aten.isnan", operands: SELF, results: 1, lower: elementwise::isnan },
    Rule { op: "aten.isinf", operands: SELF, results: 1, lower: elementwise::isinf },
    Rule { op: "aten.relu", operands: SELF, results: 1, lower: elementwise::relu },
    Rule { op: "aten.gelu", operands: SELF, results: 1, lower: elementwise::gelu },
    Rule { op: "aten.hardtanh", operands: SELF, results: 1, lower: elementwise::hardtanh },
    Rule { op: "aten.leaky_relu", operands: SELF, results: 1, lower: elementwise::leaky_relu },
    Rule { op: "aten.elu", operands: SELF, results: 1, lower: elementwise::elu },
    Rule { op: "aten.fill_scalar", operands: SELF, results: 1, lower: elementwise::fill_scalar },
    Rule { op: "aten.clone", operands: SELF, results: 1, lower: elementwise::clone },
    Rule { op: "aten.to_copy", operands: SELF, results: 1, lower: elementwise::to_copy },
    // elementwise: binary (Tensor and Scalar overloads share a rule)
    Rule { op: "aten.add_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::add },
    Rule { op: "aten.add_scalar", operands: SELF, results: 1, lower: elementwise::add },
    Rule { op: "aten.sub_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::sub },
    Rule { op: "aten.sub_scalar", operands: SELF, results: 1, lower: elementwise::sub },
    Rule { op: "aten.rsub_scalar", operands: SELF, results: 1, lower: decompose::rsub },
    Rule { op: "aten.rsub_tensor", operands: SELF_OTHER, results: 1, lower: decompose::rsub },
    Rule { op: "aten.mul_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::mul },
    Rule { op: "aten.mul_scalar", operands: SELF, results: 1, lower: elementwise::mul },
    Rule { op: "aten.div_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::div },
    Rule { op: "aten.div_scalar", operands: SELF, results: 1, lower: elementwise::div },
    Rule { op: "aten.div_tensor_mode", operands: SELF_OTHER, results: 1, lower: elementwise::div },
    Rule { op: "aten.div_scalar_mode", operands: SELF, results: 1, lower: elementwise::div },
    Rule { op: "aten.floor_divide", operands: SELF_OTHER, results: 1, lower: decompose::floor_divide },
    Rule { op: "aten.remainder_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::remainder },
    Rule { op: "aten.remainder_scalar", operands: SELF, results: 1, lower: elementwise::remainder },
    Rule { op: "aten.fmod_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::fmod },
    Rule { op: "aten.fmod_scalar", operands: SELF, results: 1, lower: elementwise::fmod },
    Rule { op: "aten.pow_tensor_tensor", operands: &[One("self"), Optional("exponent")], results: 1, lower: elementwise::pow },
    Rule { op: "aten.pow_tensor_scalar", operands: SELF, results: 1, lower: elementwise::pow },
    Rule { op: "aten.pow_scalar", operands: &[One("exponent")], results: 1, lower: elementwise::pow },
    Rule { op: "aten.maximum", operands: SELF_OTHER, results: 1, lower: elementwise::maximum },
    Rule { op: "aten.minimum", operands: SELF_OTHER, results: 1, lower: elementwise::minimum },
    Rule { op: "aten.max_other", operands: SELF_OTHER, results: 1, lower: elementwise::maximum },
    Rule { op: "aten.min_other", operands: SELF_OTHER, results: 1, lower: elementwise::minimum },
    Rule { op: "aten.atan2", operands: SELF_OTHER, results: 1, lower: elementwise::atan2 },
    Rule { op: "aten.bitwise_and_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::bitwise_and },
    Rule { op: "aten.bitwise_and_scalar", operands: SELF, results: 1, lower: elementwise::bitwise_and },
    Rule { op: "aten.bitwise_or_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::bitwise_or },
    Rule { op: "aten.bitwise_or_scalar", operands: SELF, results: 1, lower: elementwise::bitwise_or },
    Rule { op: "aten.bitwise_xor_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::bitwise_xor },
    Rule { op: "aten.bitwise_xor_scalar", operands: SELF, results: 1, lower: elementwise::bitwise_xor },
    Rule { op: "aten.and_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::bitwise_and },
    Rule { op: "aten.or_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::bitwise_or },
    Rule { op: "aten.xor_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::bitwise_xor },
    Rule { op: "aten.logical_and", operands: SELF_OTHER, results: 1, lower: elementwise::logical },
    Rule { op: "aten.logical_or", operands: SELF_OTHER, results: 1, lower: elementwise::logical },
    Rule { op: "aten.logical_xor", operands: SELF_OTHER, results: 1, lower: elementwise::logical },
    Rule { op: "aten.eq_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.eq_scalar", operands: SELF, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.ne_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.ne_scalar", operands: SELF, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.lt_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.lt_scalar", operands: SELF, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.le_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.le_scalar", operands: SELF, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.gt_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.gt_scalar", operands: SELF, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.ge_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.ge_scalar", operands: SELF, results: 1, lower: elementwise::comparison },
    Rule { op: "aten.where_self", operands: &[One("condition"), One("self"), One("other")], results: 1, lower: elementwise::where_self },
    Rule { op: "aten.where_scalarother", operands: &[One("condition"), One("self")], results: 1, lower: elementwise::where_self },
    Rule { op: "aten.where_scalarself", operands: &[One("condition"), One("other")], results: 1, lower: elementwise::where_self },
    Rule { op: "aten.where_scalar", operands: &[One("condition")], results: 1, lower: elementwise::where_self },
    Rule { op: "aten.clamp", operands: SELF, results: 1, lower: elementwise::clamp },
    Rule { op: "aten.clamp_tensor", operands: &[One("self"), Optional("min"), Optional("max")], results: 1, lower: elementwise::clamp },
    Rule { op: "aten.masked_fill_scalar", operands: &[One("self"), One("mask")], results: 1, lower: elementwise::masked_fill },
    Rule { op: "aten.masked_fill_tensor", operands: &[One("self"), One("mask"), One("value")], results: 1, lower: elementwise::masked_fill },
    // reductions
    Rule { op: "aten.sum", operands: SELF, results: 1, lower: reduction::sum },
    Rule { op: "aten.sum_dim_intlist", operands: SELF, results: 1, lower: reduction::sum },
    Rule { op: "aten.prod", operands: SELF, results: 1, lower: reduction::prod },
    Rule { op: "aten.prod_dim_int", operands: SELF, results: 1, lower: reduction::prod },
    Rule { op: "aten.mean", operands: SELF, results: 1, lower: reduction::mean },
    Rule { op: "aten.mean_dim", operands: SELF, results: 1, lower: reduction::mean },
    Rule { op: "aten.amax", operands: SELF, results: 1, lower: reduction::amax },
    Rule { op: "aten.amin", operands: SELF, results: 1, lower: reduction::amin },
    Rule { op: "aten.max", operands: SELF, results: 1, lower: reduction::amax },
    Rule { op: "aten.min", operands: SELF, results: 1, lower: reduction::amin },
    Rule { op: "aten.any", operands: SELF, results: 1, lower: reduction::any_all },
    Rule { op: "aten.any_dim", operands: SELF, results: 1, lower: reduction::any_all },
    Rule { op: "aten.any_dims", operands: SELF, results: 1, lower: reduction::any_all },
    Rule { op: "aten.all", operands: SELF, results: 1, lower: reduction::any_all },
    Rule { op: "aten.all_dim", operands: SELF, results: 1, lower: reduction::any_all },
    Rule { op: "aten.all_dims", operands: SELF, results: 1, lower: reduction::any_all },
    Rule { op: "aten.var_correction", operands: SELF, results: 1, lower: reduction::var },
    Rule { op: "aten.var_dim", operands: SELF, results: 1, lower: reduction::var },
    Rule { op: "aten.var", operands: SELF, results: 1, lower: reduction::var },
    Rule { op: "aten.std_correction", operands: SELF, results: 1, lower: decompose::std },
    Rule { op: "aten.std_dim", operands: SELF, results: 1, lower: decompose::std },
    Rule { op: "aten.std", operands: SELF, results: 1, lower: decompose::std },
    Rule { op: "aten.argmax", operands: SELF, results: 1, lower: reduction::arg_extreme },
    Rule { op: "aten.argmin", operands: SELF, results: 1, lower: reduction::arg_extreme },
    Rule { op: "aten.max_dim", operands: SELF, results: 2, lower: reduction::arg_extreme },
    Rule { op: "aten.min_dim", operands: SELF, results: 2, lower: reduction::arg_extreme },
    Rule { op: "aten.softmax", operands: SELF, results: 1, lower: reduction::softmax },
    Rule { op: "aten.log_softmax", operands: SELF, results: 1, lower: reduction::softmax },
    Rule { op: "aten.softmax_int", operands: SELF, results: 1, lower: decompose::softmax },
    Rule { op: "aten.log_softmax_int", operands: SELF, results: 1, lower: decompose::softmax },
    Rule { op: "aten.sort", operands: SELF, results: 2, lower: reduction::sort },
    Rule { op: "aten.sort_stable", operands: SELF, results: 2, lower: reduction::sort },
    Rule { op: "aten.topk", operands: SELF, results: 2, lower: reduction::sort },
    Rule { op: "aten.logsumexp", operands: SELF, results: 1, lower: reduction::logsumexp },
    Rule { op: "aten.cumsum", operands: SELF, results: 1, lower: reduction::cumsum },
    Rule { op: "aten.linalg_vector_norm", operands: SELF, results: 1, lower: reduction::vector_norm },
    // linear algebra
    Rule { op: "aten.linear", operands: &[One("input"), One("weight"), Optional("bias")], results: 1, lower: linear::linear },
    Rule { op: "aten.addmm", operands: &[One("self"), One("mat1"), One("mat2")], results: 1, lower: linear::addmm },
    Rule { op: "aten.mm", operands: &[One("self"), One("mat2")], results: 1, lower: linear::mm },
    Rule { op: "aten.bmm", operands: &[One("self"), One("mat2")], results: 1, lower: linear::bmm },
    Rule { op: "aten.baddbmm", operands: &[One("self"), One("batch1"), One("batch2")], results: 1, lower: linear::baddbmm },
    Rule { op: "aten.matmul", operands: SELF_OTHER, results: 1, lower: linear::matmul_op },
    Rule { op: "aten.einsum", operands: &[Variadic("tensors")], results: 1, lower: decompose::einsum },
    Rule { op: "aten.scaled_dot_product_attention", operands: &[One("query"), One("key"), One("value"), Optional("attn_mask")], results: 1, lower: decompose::scaled_dot_product_attention },
    // convolution
    Rule { op: "aten.conv1d", operands: CONV, results: 1, lower: conv::conv },
    Rule { op: "aten.conv2d", operands: CONV, results: 1, lower: conv::conv },
    Rule { op: "aten.conv3d", operands: CONV, results: 1, lower: conv::conv },
    Rule { op: "aten.conv1d_padding", operands: CONV, results: 1, lower: conv::conv },
    Rule { op: "aten.conv2d_padding", operands: CONV, results: 1, lower: conv::conv },
    Rule { op: "aten.conv3d_padding", operands: CONV, results: 1, lower: conv::conv },
    Rule { op: "aten.convolution", operands: CONV, results: 1, lower: conv::convolution },
    Rule { op: "aten.conv_transpose1d", operands: CONV, results: 1, lower: conv::convolution },
    Rule { op: "aten.conv_transpose2d_input", operands: CONV, results: 1, lower: conv::convolution },
    Rule { op: "aten.conv_transpose3d_input", operands: CONV, results: 1, lower: conv::convolution },
    // pooling and resampling
    Rule { op: "aten.max_pool1d", operands: SELF, results: 1, lower: pooling::max_pool },
    Rule { op: "aten.max_pool2d", operands: SELF, results: 1, lower: pooling::max_pool },
    Rule { op: "aten.max_pool3d", operands: SELF, results: 1, lower: pooling::max_pool },
    Rule { op: "aten.max_pool1d_with_indices", operands: SELF, results: 2, lower: pooling::max_pool },
    Rule { op: "aten.max_pool2d_with_indices", operands: SELF, results: 2, lower: pooling::max_pool },
    Rule { op: "aten.max_pool3d_with_indices", operands: SELF, results: 2, lower: pooling::max_pool },
    Rule { op: "aten.avg_pool1d", operands: SELF, results: 1, lower: pooling::avg_pool },
    Rule { op: "aten.avg_pool2d", operands: SELF, results: 1, lower: pooling::avg_pool },
    Rule { op: "aten.avg_pool3d", operands: SELF, results: 1, lower: pooling::avg_pool },
    Rule { op: "aten.adaptive_avg_pool1d", operands: SELF, results: 1, lower: pooling::adaptive_pool },
    Rule { op: "aten.adaptive_avg_pool2d", operands: SELF, results: 1, lower: pooling::adaptive_pool },
    Rule { op: "aten.adaptive_avg_pool3d", operands: SELF, results: 1, lower: pooling::adaptive_pool },
    Rule { op: "aten.adaptive_max_pool1d", operands: SELF, results: 2, lower: pooling::adaptive_pool },
    Rule { op: "aten.adaptive_max_pool2d", operands: SELF, results: 2, lower: pooling::adaptive_pool },
    Rule { op: "aten.adaptive_max_pool3d", operands: SELF, results: 2, lower: pooling::adaptive_pool },
    Rule { op: "aten.upsample_nearest1d_vec", operands: &[One("input")], results: 1, lower: pooling::upsample_nearest },
    Rule { op: "aten.upsample_nearest2d_vec", operands: &[One("input")], results: 1, lower: pooling::upsample_nearest },
    Rule { op: "aten.upsample_nearest3d_vec", operands: &[One("input")], results: 1, lower: pooling::upsample_nearest },
    Rule { op: "aten.upsample_nearest2d", operands: SELF, results: 1, lower: pooling::upsample_nearest },
    Rule { op: "aten.upsample_nearest_exact2d_vec", operands: &[One("input")], results: 1, lower: pooling::upsample_nearest },
    Rule { op: "aten.upsample_bilinear2d_vec", operands: &[One("input")], results: 1, lower: pooling::upsample_linear },
    Rule { op: "aten.upsample_bilinear2d", operands: SELF, results: 1, lower: pooling::upsample_linear },
    Rule { op: "aten.upsample_linear1d_vec", operands: &[One("input")], results: 1, lower: pooling::upsample_linear },
    Rule { op: "aten.grid_sampler_2d", operands: &[One("input"), One("grid")], results: 1, lower: pooling::grid_sample },
    Rule { op: "aten.grid_sampler", operands: &[One("input"), One("grid")], results: 1, lower: pooling::grid_sample },
    Rule { op: "aten.col2im", operands: SELF, results: 1, lower: pooling::col2im },
    // distances
    Rule { op: "aten.cdist_forward", operands: &[One("x1"), One("x2")], results: 1, lower: reduction::cdist },
    Rule { op: "aten.pdist_forward", operands: SELF, results: 1, lower: reduction::pdist },
    Rule { op: "aten.cdist", operands: &[One("x1"), One("x2")], results: 1, lower: reduction::cdist },
    Rule { op: "aten.pdist", operands: SELF, results: 1, lower: reduction::pdist },
    // normalization
    Rule { op: "aten.native_layer_norm", operands: NORM, results: 3, lower: normalization::layer_norm },
    Rule { op: "aten.layer_norm", operands: NORM, results: 1, lower: decompose::layer_norm },
    Rule { op: "aten.native_batch_norm_legit_no_training", operands: BATCH_NORM, results: 3, lower: normalization::batch_norm },
    Rule { op: "aten.native_batch_norm_legit", operands: BATCH_NORM, results: 3, lower: normalization::batch_norm },
    Rule { op: "aten.native_batch_norm_legit_no_stats", operands: NORM, results: 3, lower: normalization::batch_norm },
    Rule { op: "aten.native_batch_norm_legit_functional", operands: BATCH_NORM, results: 5, lower: normalization::batch_norm },
    Rule { op: "aten.batch_norm", operands: BATCH_NORM, results: 1, lower: decompose::batch_norm },
    Rule { op: "aten.instance_norm", operands: BATCH_NORM, results: 1, lower: normalization::batch_norm },
    Rule { op: "aten.native_group_norm", operands: NORM, results: 3, lower: normalization::group_norm },
    Rule { op: "aten.group_norm", operands: NORM, results: 1, lower: decompose::group_norm },
    Rule { op: "aten.rms_norm", operands: &[One("input"), Optional("weight")], results: 1, lower: normalization::rms_norm },
    // activations outside the core set
    Rule { op: "aten.silu", operands: SELF, results: 1, lower: decompose::silu },
    Rule { op: "aten.hardsigmoid", operands: SELF, results: 1, lower: decompose::hardsigmoid },
    Rule { op: "aten.hardswish", operands: SELF, results: 1, lower: decompose::hardswish },
    Rule { op: "aten.relu6", operands: SELF, results: 1, lower: decompose::relu6 },
    Rule { op: "aten.softplus", operands: SELF, results: 1, lower: decompose::softplus },
    Rule { op: "aten.mish", operands: SELF, results: 1, lower: decompose::mish },
    Rule { op: "aten.log_sigmoid", operands: SELF, results: 1, lower: decompose::log_sigmoid },
    Rule { op: "aten.clamp_min", operands: SELF, results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.clamp_max", operands: SELF, results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.clamp_min_tensor", operands: &[One("self"), One("min")], results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.clamp_max_tensor", operands: &[One("self"), One("max")], results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.dropout", operands: &[One("input")], results: 1, lower: decompose::dropout },
    Rule { op: "aten.diff", operands: &[One("self"), Optional("prepend"), Optional("append")], results: 1, lower: decompose::diff },
    Rule { op: "aten.lstm_input", operands: &[One("input"), Variadic("hx"), Variadic("params")], results: 3, lower: decompose::lstm },
    Rule { op: "aten.gru_input", operands: &[One("input"), One("hx"), Variadic("params")], results: 2, lower: decompose::gru },
    Rule { op: "aten.native_dropout", operands: &[One("input")], results: 2, lower: decompose::dropout },
    // creation
    Rule { op: "aten.full", operands: NONE, results: 1, lower: creation::full },
    Rule { op: "aten.full_like", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.zeros", operands: NONE, results: 1, lower: creation::full },
    Rule { op: "aten.ones", operands: NONE, results: 1, lower: creation::full },
    Rule { op: "aten.zeros_like", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.ones_like", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.empty_memory_format", operands: NONE, results: 1, lower: creation::full },
    Rule { op: "aten.empty_like", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.empty_strided", operands: NONE, results: 1, lower: creation::full },
    Rule { op: "aten.new_zeros", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.new_ones", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.new_full", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.new_empty", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.scalar_tensor", operands: NONE, results: 1, lower: creation::full },
    Rule { op: "aten.fill_tensor", operands: &[One("self"), One("value")], results: 1, lower: creation::fill_tensor },
    Rule { op: "aten.zero", operands: SELF, results: 1, lower: creation::full },
    Rule { op: "aten.empty_permuted", operands: NONE, results: 1, lower: creation::full },
    Rule { op: "aten.arange", operands: NONE, results: 1, lower: creation::arange },
    Rule { op: "aten.arange_start", operands: NONE, results: 1, lower: creation::arange },
    Rule { op: "aten.arange_start_step", operands: NONE, results: 1, lower: creation::arange },
    // shape and view ops
    Rule { op: "aten.view", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.reshape", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.unsafe_view", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.flatten_using_ints", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.unflatten_int", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.squeeze", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.squeeze_dim", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.squeeze_dims", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.unsqueeze", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.alias", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.lift_fresh_copy", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.detach", operands: SELF, results: 1, lower: shape::reshape },
    Rule { op: "aten.contiguous", operands: SELF, results: 1, lower: decompose::identity },
    Rule { op: "aten.view_as", operands: SELF_OTHER, results: 1, lower: decompose::identity },
    Rule { op: "aten.reshape_as", operands: SELF_OTHER, results: 1, lower: decompose::identity },
    Rule { op: "aten.type_as", operands: SELF_OTHER, results: 1, lower: decompose::identity },
    Rule { op: "aten.to_dtype", operands: SELF, results: 1, lower: decompose::identity },
    Rule { op: "aten.to_device", operands: SELF, results: 1, lower: decompose::identity },
    Rule { op: "aten.to_dtype_layout", operands: SELF, results: 1, lower: decompose::identity },
    Rule { op: "aten.to_other", operands: SELF_OTHER, results: 1, lower: decompose::identity },
    Rule { op: "aten.permute", operands: SELF, results: 1, lower: shape::permute },
    Rule { op: "aten.t", operands: SELF, results: 1, lower: shape::permute },
    Rule { op: "aten.transpose_int", operands: SELF, results: 1, lower: shape::transpose },
    Rule { op: "aten.expand", operands: SELF, results: 1, lower: shape::expand },
    Rule { op: "aten.expand_as", operands: SELF_OTHER, results: 1, lower: shape::expand },
    Rule { op: "aten.slice_tensor", operands: SELF, results: 1, lower: shape::slice },
    Rule { op: "aten.narrow", operands: SELF, results: 1, lower: decompose::narrow },
    Rule { op: "aten.select_int", operands: SELF, results: 1, lower: shape::select },
    Rule { op: "aten.split_with_sizes", operands: SELF, results: VARIADIC, lower: shape::split },
    Rule { op: "aten.split_tensor", operands: SELF, results: VARIADIC, lower: shape::split },
    Rule { op: "aten.chunk", operands: SELF, results: VARIADIC, lower: shape::split },
    Rule { op: "aten.unbind_int", operands: SELF, results: VARIADIC, lower: shape::split },
    Rule { op: "aten.cat", operands: &[Variadic("tensors")], results: 1, lower: shape::cat },
    Rule { op: "aten.stack", operands: &[Variadic("tensors")], results: 1, lower: shape::cat },
    Rule { op: "aten.repeat", operands: SELF, results: 1, lower: shape::repeat },
    Rule { op: "aten.flip", operands: SELF, results: 1, lower: shape::flip },
    Rule { op: "aten.roll", operands: SELF, results: 1, lower: shape::roll },
    Rule { op: "aten.as_strided", operands: SELF, results: 1, lower: shape::as_strided },
    Rule { op: "aten.diagonal", operands: SELF, results: 1, lower: shape::diagonal },
    // (IRDL names are lowercase; the schema calls the operand "A")
    Rule { op: "aten.linalg_diagonal", operands: &[One("a")], results: 1, lower: shape::diagonal },
    Rule { op: "aten.triu", operands: SELF, results: 1, lower: shape::triangle },
    Rule { op: "aten.tril", operands: SELF, results: 1, lower: shape::triangle },
    Rule { op: "aten.constant_pad_nd", operands: SELF, results: 1, lower: shape::constant_pad },
    Rule { op: "aten.pad", operands: SELF, results: 1, lower: decompose::pad },
    Rule { op: "aten.reflection_pad1d", operands: SELF, results: 1, lower: shape::edge_pad },
    Rule { op: "aten.reflection_pad2d", operands: SELF, results: 1, lower: shape::edge_pad },
    Rule { op: "aten.reflection_pad3d", operands: SELF, results: 1, lower: shape::edge_pad },
    Rule { op: "aten.replication_pad1d", operands: SELF, results: 1, lower: shape::edge_pad },
    Rule { op: "aten.replication_pad2d", operands: SELF, results: 1, lower: shape::edge_pad },
    Rule { op: "aten.replication_pad3d", operands: SELF, results: 1, lower: shape::edge_pad },
    Rule { op: "aten.pad_circular", operands: SELF, results: 1, lower: shape::edge_pad },
    Rule { op: "aten.pixel_shuffle", operands: SELF, results: 1, lower: shape::pixel_shuffle },
    Rule { op: "aten.pixel_unshuffle", operands: SELF, results: 1, lower: shape::pixel_shuffle },
    Rule { op: "aten.copy", operands: &[One("self"), One("src")], results: 1, lower: shape::copy },
    Rule { op: "aten.slice_scatter", operands: &[One("self"), One("src")], results: 1, lower: shape::slice_scatter },
    Rule { op: "aten.select_scatter", operands: &[One("self"), One("src")], results: 1, lower: shape::slice_scatter },
    // indexing
    Rule { op: "aten.embedding", operands: &[One("weight"), One("indices")], results: 1, lower: indexing::embedding },
    Rule { op: "aten.index_select", operands: &[One("self"), One("index")], results: 1, lower: indexing::index_select },
    Rule { op: "aten.gather", operands: &[One("self"), One("index")], results: 1, lower: indexing::gather },
    Rule { op: "aten.index_tensor", operands: &[One("self"), Variadic("indices")], results: 1, lower: indexing::index },
    Rule { op: "aten.index_put", operands: &[One("self"), Variadic("indices"), One("values")], results: 1, lower: indexing::index_put },
    Rule { op: "aten.masked_scatter", operands: &[One("self"), One("mask"), One("source")], results: 1, lower: indexing::masked_scatter },
    Rule { op: "aten.embedding_bag", operands: EMBEDDING_BAG, results: 4, lower: indexing::embedding_bag },
    Rule { op: "aten.embedding_bag_padding_idx", operands: EMBEDDING_BAG, results: 4, lower: indexing::embedding_bag },
    Rule { op: "aten.embedding_bag_forward_only", operands: EMBEDDING_BAG, results: 4, lower: indexing::embedding_bag },
    Rule { op: "aten.scatter_src", operands: &[One("self"), One("index"), One("src")], results: 1, lower: indexing::scatter },
    Rule { op: "aten.scatter_value", operands: &[One("self"), One("index")], results: 1, lower: indexing::scatter },
    Rule { op: "aten.scatter_reduce", operands: &[One("self"), One("index"), One("src")], results: 1, lower: indexing::scatter },
    Rule { op: "aten.scatter_add", operands: &[One("self"), One("index"), One("src")], results: 1, lower: indexing::scatter },
    Rule { op: "aten.scatter_reduce_two", operands: &[One("self"), One("index"), One("src")], results: 1, lower: indexing::scatter },
];

const NONE: &[OperandSpec] = &[];
const SELF: &[OperandSpec] = &[One("self")];
/// `other` may be a tensor or, in the default export, a Python number.
const SELF_OTHER: &[OperandSpec] = &[One("self"), Optional("other")];
const CONV: &[OperandSpec] = &[One("input"), One("weight"), Optional("bias")];
const NORM: &[OperandSpec] = &[One("input"), Optional("weight"), Optional("bias")];
const BATCH_NORM: &[OperandSpec] =
    &[One("input"), Optional("weight"), Optional("bias"), Optional("running_mean"), Optional("running_var")];
const EMBEDDING_BAG: &[OperandSpec] = &[One("weight"), One("indices"), One("offsets"), Optional("per_sample_weights")];
/// `results` of an op that returns a list of tensors.
pub const VARIADIC: usize = usize::MAX;

/// The rule for an aten op name (`aten.conv2d`), if aotc has one.
pub fn rule_for(op: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.op == op)
}

/// The aten dialect op name for an Export IR target. IRDL op names are
/// lowercase identifiers without leading or double underscores, so:
/// `aten.conv2d.default` -> `aten.conv2d`, `aten.mul.Tensor` -> `aten.mul_tensor`,
/// `aten._unsafe_view.default` -> `aten.unsafe_view`, `aten.add_.Tensor` -> `aten.add_inplace_tensor`.
pub fn aten_name(target: &str) -> String {
    let target = target.strip_suffix(".default").unwrap_or(target);
    let mut parts = target.splitn(3, '.');
    let (namespace, op, overload) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let mut name = op.trim_start_matches('_').to_string();
    if op.starts_with("__") && op.ends_with("__") {
        // Python operators: __and__ is and, not an in-place op
        name = op.trim_matches('_').to_string();
    } else if name.ends_with('_') {
        name = format!("{}_inplace", name.trim_end_matches('_'));
    }
    if let Some(o) = overload {
        name = format!("{name}_{}", o.to_lowercase());
    }
    format!("{namespace}.{name}")
}

/// A non-tensor argument, decoded from its MLIR attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
    Strs(Vec<String>),
}

/// A tensor operand of an aten op.
#[derive(Debug, Clone)]
pub struct Operand {
    pub ssa: String,
    pub ty: Ty,
    /// The schema argument it was passed as (`input`, `weight`, ...).
    pub arg: String,
}

/// An aten op as a rule sees it.
#[derive(Debug, Clone)]
pub struct AtenOp {
    pub name: String,
    pub operands: Vec<Operand>,
    pub attrs: BTreeMap<String, Attr>,
    pub results: Vec<Ty>,
    /// Whether anything (an op or the return) reads each result.
    pub results_used: Vec<bool>,
    /// Whether the first result is read only by a convolution that copies
    /// its input into the channel-blocked layout, directly or through
    /// elementwise activations that nothing else reads (see
    /// [`result_channel_blocked`]).
    pub result_channel_blocked: bool,
    pub location: String,
}

/// The largest stride, padding, dilation or window size aotc accepts.
pub const MAX_WINDOW: i64 = 1 << 24;

/// The SSA name a rule returns for a result that nothing reads.
pub const UNUSED_RESULT: &str = "%unused_result";

impl AtenOp {
    pub fn input(&self, arg: &str) -> Result<&Operand, String> {
        self.opt_input(arg).ok_or_else(|| format!("{}: missing tensor argument '{arg}'", self.name))
    }

    pub fn opt_input(&self, arg: &str) -> Option<&Operand> {
        self.operands.iter().find(|o| o.arg == arg)
    }

    pub fn result(&self) -> &Ty {
        &self.results[0]
    }

    /// Checks the shape the graph declares for result `k` against the one
    /// the op computes from its operands.
    pub fn expect_shape(&self, k: usize, computed: &[i64]) -> Result<(), String> {
        match self.results.get(k) {
            Some(r) if r.shape == computed => Ok(()),
            Some(r) => Err(format!("{}: the graph declares a {r} result, but the operands give shape {computed:?}", self.name)),
            None => Err(format!("{}: result {k} is missing", self.name)),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        match self.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Int(v)) => Ok(*v),
            Some(Attr::Bool(b)) => Ok(*b as i64),
            Some(other) => Err(format!("{}: attribute '{name}' should be an integer, is {other:?}", self.name)),
        }
    }

    pub fn float(&self, name: &str, default: f64) -> Result<f64, String> {
        match self.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Float(v)) => Ok(*v),
            Some(Attr::Int(v)) => Ok(*v as f64),
            Some(Attr::Bool(b)) => Ok(*b as i64 as f64),
            Some(other) => Err(format!("{}: attribute '{name}' should be a number, is {other:?}", self.name)),
        }
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Bool(v)) => Ok(*v),
            Some(Attr::Int(v)) => Ok(*v != 0),
            Some(other) => Err(format!("{}: attribute '{name}' should be a bool, is {other:?}", self.name)),
        }
    }

    /// [`Self::ints`] with every entry in `min..=max` (strides, paddings,
    /// kernel sizes: a value outside the range torch accepts is an error
    /// here, before it sizes anything).
    pub fn ints_in(&self, name: &str, n: usize, default: &[i64], min: i64, max: i64) -> Result<Vec<i64>, String> {
        let v = self.ints(name, n, default)?;
        match v.iter().find(|x| !(min..=max).contains(*x)) {
            Some(bad) => Err(format!("{}: {name} {v:?} has {bad}, outside {min}..={max}", self.name)),
            None => Ok(v),
        }
    }

    /// [`Self::int`] in `min..=max`.
    pub fn int_in(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, String> {
        let v = self.int(name, default)?;
        if !(min..=max).contains(&v) {
            return Err(format!("{}: {name} = {v} is outside {min}..={max}", self.name));
        }
        Ok(v)
    }

    /// An int list; a single int is repeated `n` times (as torch's `_pair` does).
    pub fn ints(&self, name: &str, n: usize, default: &[i64]) -> Result<Vec<i64>, String> {
        match self.attrs.get(name) {
            None => Ok(default.to_vec()),
            Some(Attr::Ints(v)) if v.len() == 1 => Ok(vec![v[0]; n]),
            Some(Attr::Ints(v)) if v.is_empty() => Ok(default.to_vec()),
            Some(Attr::Ints(v)) => Ok(v.clone()),
            Some(Attr::Int(v)) => Ok(vec![*v; n]),
            Some(other) => Err(format!("{}: attribute '{name}' should be an int list, is {other:?}", self.name)),
        }
    }
}

/// Writes MLIR text with fresh SSA names.
#[derive(Default)]
pub struct Emitter {
    pub text: String,
    counter: usize,
    indent: usize,
}

/// Panics inside lowering rules: caught per rule, and kept off stderr.
mod panics {
    use std::cell::RefCell;

    thread_local! {
        /// Where the last caught panic happened (file:line), from the hook.
        static WHERE: RefCell<String> = const { RefCell::new(String::new()) };
    }

    /// Runs `f` with a panic hook that records where a panic happens
    /// instead of printing it; the previous hook is restored afterwards.
    pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
        type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;
        /// Puts the previous hook back, even if `f` panics past the rules.
        struct Restore(Option<Hook>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(hook) = self.0.take() {
                    std::panic::set_hook(hook);
                }
            }
        }
        let _restore = Restore(Some(std::panic::take_hook()));
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            WHERE.with(|w| *w.borrow_mut() = at);
        }));
        f()
    }

    /// A caught panic's message, with where it happened.
    pub fn message(payload: Box<dyn std::any::Any + Send>) -> String {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".to_string());
        let at = WHERE.with(|w| std::mem::take(&mut *w.borrow_mut()));
        if at.is_empty() { text } else { format!("{text} at {at}") }
    }
}

impl Emitter {
    pub fn fresh(&mut self) -> String {
        self.counter += 1;
        format!("%v{}", self.counter)
    }

    pub fn line(&mut self, line: impl AsRef<str>) {
        for _ in 0..self.indent {
            self.text.push_str("  ");
        }
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// Emits `%x = <rhs>` with a fresh name and returns the name.
    pub fn assign(&mut self, rhs: impl AsRef<str>) -> String {
        let name = self.fresh();
        self.line(format!("{name} = {}", rhs.as_ref()));
        name
    }

    pub fn indented<R>(&mut self, f: impl FnOnce(&mut Emitter) -> R) -> R {
        self.indent += 1;
        let r = f(self);
        self.indent -= 1;
        r
    }
}

/// A lowered module: its text, and where each aten op's lowering is in it
/// (to find the op whose code does not verify, when the module does not).
pub struct Lowered {
    pub text: String,
    pub nodes: Vec<LoweredNode>,
}

/// The lowering of one aten op: `text[start..end]`, which reads `operands`
/// and defines `results` (SSA name, the type the graph declares).
pub struct LoweredNode {
    pub location: String,
    pub op: String,
    pub start: usize,
    pub end: usize,
    pub operands: Vec<(String, Ty)>,
    pub results: Vec<(String, Ty)>,
}

/// Lowers an aten module to linalg text. Every op without a rule, and every
/// rule failure, is collected and reported together; a rule that panics is
/// reported as an internal error of that op, never a crash.
pub fn lower_module(module: &Module) -> Result<Lowered, Vec<String>> {
    let body = module.body();
    let mut functions = Vec::new();
    let mut op = body.first_operation();
    while let Some(o) = op {
        if o.name().as_string_ref().as_str() == Ok("func.func") {
            functions.push(o);
        }
        op = o.next_in_block();
    }
    let [function] = functions.as_slice() else {
        return Err(vec![format!("expected exactly one func.func in the module, found {}", functions.len())]);
    };
    let model = module
        .as_operation()
        .attribute("aotc.model")
        .ok()
        .and_then(|a| parse_attr(&a.to_string()))
        .and_then(|a| if let Attr::Str(s) = a { Some(s) } else { None })
        .unwrap_or_else(|| "model".to_string());
    panics::quietly(|| lower_function(function, &model))
}

fn value_key(v: &Value) -> usize {
    v.to_raw().ptr as usize
}

/// Runs one rule; a panic inside it becomes an error message.
fn apply_rule(rule: &Rule, e: &mut Emitter, aten: &AtenOp) -> Result<Vec<String>, String> {
    let start = e.text.len();
    let counter = e.counter;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (rule.lower)(e, aten))) {
        Ok(Ok(results)) if results.len() == aten.results.len() => Ok(results),
        Ok(Ok(results)) => Err(format!(
            "{}: internal error: the rule returned {} results for {} declared ones",
            aten.name,
            results.len(),
            aten.results.len()
        )),
        Ok(Err(message)) => Err(message),
        Err(payload) => {
            // drop whatever the rule wrote before it panicked
            e.text.truncate(start);
            e.counter = counter;
            Err(format!(
                "{}: internal error in its lowering rule ({}); are the graph's declared types consistent?",
                aten.name,
                panics::message(payload)
            ))
        }
    }
}

/// Walks the imported function: aten ops through their rules, and the
/// control flow that `cond` and `while_loop` import as (`scf.if`,
/// `scf.while` and the `tensor.extract` of their 0-d predicates), whose
/// regions are lowered in place.
struct Driver {
    e: Emitter,
    /// Lowered tensor values (SSA name, type) by aten-level value.
    names: HashMap<usize, (String, Ty)>,
    /// Lowered `i1` predicates by aten-level value.
    scalars: HashMap<usize, String>,
    errors: Vec<String>,
    nodes: Vec<LoweredNode>,
}

/// The results of a region op: `%r` for one, `%r#k` for several.
fn result_names(r: &str, n: usize) -> Vec<String> {
    if n == 1 {
        vec![r.to_string()]
    } else {
        (0..n).map(|k| format!("{r}#{k}")).collect()
    }
}

impl Driver {
    fn lowered(&self, v: &Value) -> Result<(String, Ty), String> {
        self.names.get(&value_key(v)).cloned().ok_or_else(|| "operand defined outside the function body".to_string())
    }

    fn types_of(&self, op: &OperationRef) -> Result<Vec<Ty>, String> {
        op.results()
            .map(|r| {
                let text = r.r#type().to_string();
                Ty::parse(&text).ok_or_else(|| format!("result type {text} is not a static ranked tensor"))
            })
            .collect()
    }

    /// Lowers the ops of a block; returns the values its terminator passes
    /// on (the function's outputs, or what `scf.yield`/`scf.condition` pass).
    fn block(&mut self, block: melior::ir::BlockRef) -> Vec<Option<(String, Ty)>> {
        self.block_into(block, None)
    }

    /// [`Self::block`]; with `carried`, an `scf.yield` first copies each
    /// value into the loop's carried tensor of the same position, so that
    /// what the loop yields is its own iteration argument, updated in place
    /// (bufferization then keeps one buffer per carried value, and nothing
    /// is allocated per iteration).
    fn block_into(&mut self, block: melior::ir::BlockRef, carried: Option<&[String]>) -> Vec<Option<(String, Ty)>> {
        let mut op = block.first_operation();
        while let Some(o) = op {
            op = o.next_in_block();
            let name = o.name().as_string_ref().as_str().unwrap_or("?").to_string();
            let result = match name.as_str() {
                "func.return" => return o.operands().map(|v| self.names.get(&value_key(&v)).cloned()).collect(),
                "scf.yield" => match carried {
                    Some(args) => self.yield_in_place(&o, args),
                    None => self.terminator(&o, "scf.yield", None),
                },
                "scf.condition" => {
                    let c = o.operand(0).ok().and_then(|c| self.scalars.get(&value_key(&c)).cloned());
                    match c {
                        Some(c) => self.terminator(&o, "scf.condition", Some(c)),
                        None => Err("scf.condition without a predicate".to_string()),
                    }
                }
                "tensor.extract" => self.extract(&o),
                "scf.if" => self.if_op(&o),
                "scf.while" => self.while_op(&o),
                _ => {
                    self.aten_op(&o, &name);
                    Ok(())
                }
            };
            if let Err(err) = result {
                self.errors.push(format!("{}: {name}: {err}", o.location()));
            }
        }
        Vec::new()
    }

    /// `scf.yield` / `scf.condition(%c)` with the lowered operands.
    fn terminator(&mut self, o: &OperationRef, op: &str, condition: Option<String>) -> Result<(), String> {
        let start = usize::from(condition.is_some());
        let values = o.operands().skip(start).map(|v| self.lowered(&v)).collect::<Result<Vec<_>, _>>()?;
        let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
        let types: Vec<String> = values.iter().map(|(_, t)| t.to_string()).collect();
        let head = match condition {
            Some(c) => format!("{op}({c})"),
            None => op.to_string(),
        };
        if values.is_empty() {
            self.e.line(head);
        } else {
            self.e.line(format!("{head} {} : {}", names.join(", "), types.join(", ")));
        }
        Ok(())
    }

    /// `scf.yield` of a loop body: each value copied into its carried tensor.
    fn yield_in_place(&mut self, o: &OperationRef, carried: &[String]) -> Result<(), String> {
        let values = o.operands().map(|v| self.lowered(&v)).collect::<Result<Vec<_>, _>>()?;
        if values.len() != carried.len() {
            return Err(format!("the loop body yields {} values for {} carried ones", values.len(), carried.len()));
        }
        let mut names = Vec::new();
        let mut types = Vec::new();
        for ((v, ty), arg) in values.iter().zip(carried) {
            names.push(self.e.assign(format!("linalg.copy ins({v} : {ty}) outs({arg} : {ty}) -> {ty}")));
            types.push(ty.to_string());
        }
        self.e.line(format!("scf.yield {} : {}", names.join(", "), types.join(", ")));
        Ok(())
    }

    /// `tensor.extract %p[] : tensor<i1>`: the predicate of a cond or loop.
    fn extract(&mut self, o: &OperationRef) -> Result<(), String> {
        let t = o.operand(0).map_err(|e| e.to_string())?;
        let (v, ty) = self.lowered(&t)?;
        if ty.rank() != 0 || ty.elem != "i1" {
            return Err(format!("a predicate must be a 0-d bool tensor, not {ty}"));
        }
        let c = self.e.assign(format!("tensor.extract {v}[] : {ty}"));
        let r = o.result(0).map_err(|e| e.to_string())?;
        self.scalars.insert(value_key(&r.into()), c);
        Ok(())
    }

    fn if_op(&mut self, o: &OperationRef) -> Result<(), String> {
        let c = o.operand(0).map_err(|e| e.to_string())?;
        let c = self.scalars.get(&value_key(&c)).cloned().ok_or("scf.if without a predicate")?;
        let types = self.types_of(o)?;
        let types_text = types.iter().map(Ty::to_string).collect::<Vec<_>>().join(", ");
        let r = self.e.fresh();
        let lhs = if types.len() > 1 { format!("{r}:{}", types.len()) } else { r.clone() };
        self.e.line(format!("{lhs} = scf.if {c} -> ({types_text}) {{"));
        for k in 0..2 {
            if k == 1 {
                self.e.line("} else {");
            }
            let region = o.region(k).map_err(|e| e.to_string())?;
            let block = region.first_block().ok_or("scf.if region without a block")?;
            self.e.indent += 1;
            self.block(block);
            self.e.indent -= 1;
        }
        self.e.line("}");
        for (i, (name, ty)) in result_names(&r, types.len()).into_iter().zip(types).enumerate() {
            let result = o.result(i).map_err(|e| e.to_string())?;
            self.names.insert(value_key(&result.into()), (name, ty));
        }
        Ok(())
    }

    fn while_op(&mut self, o: &OperationRef) -> Result<(), String> {
        let inits = o.operands().map(|v| self.lowered(&v)).collect::<Result<Vec<_>, _>>()?;
        let types = self.types_of(o)?;
        let types_text = types.iter().map(Ty::to_string).collect::<Vec<_>>().join(", ");
        let before = o.region(0).map_err(|e| e.to_string())?;
        let before = before.first_block().ok_or("scf.while without a condition block")?;
        let after = o.region(1).map_err(|e| e.to_string())?;
        let after = after.first_block().ok_or("scf.while without a body block")?;
        let r = self.e.fresh();
        let mut header = Vec::new();
        for (i, (init, _)) in inits.iter().enumerate() {
            let arg = before.argument(i).map_err(|e| e.to_string())?;
            let name = self.e.fresh();
            header.push(format!("{name} = {init}"));
            self.names.insert(value_key(&arg.into()), (name, types[i].clone()));
        }
        let lhs = if types.len() > 1 { format!("{r}:{}", types.len()) } else { r.clone() };
        self.e.line(format!("{lhs} = scf.while ({}) : ({types_text}) -> ({types_text}) {{", header.join(", ")));
        self.e.indent += 1;
        self.block(before);
        self.e.indent -= 1;
        self.e.line("} do {");
        let mut args = Vec::new();
        let mut carried = Vec::new();
        for (i, ty) in types.iter().enumerate() {
            let arg = after.argument(i).map_err(|e| e.to_string())?;
            let name = self.e.fresh();
            args.push(format!("{name}: {ty}"));
            carried.push(name.clone());
            self.names.insert(value_key(&arg.into()), (name, ty.clone()));
        }
        self.e.line(format!("^bb0({}):", args.join(", ")));
        self.e.indent += 1;
        self.block_into(after, Some(&carried));
        self.e.indent -= 1;
        self.e.line("}");
        for (i, (name, ty)) in result_names(&r, types.len()).into_iter().zip(types).enumerate() {
            let result = o.result(i).map_err(|e| e.to_string())?;
            self.names.insert(value_key(&result.into()), (name, ty));
        }
        Ok(())
    }

    fn aten_op(&mut self, o: &OperationRef, name: &str) {
        let location = o.location().to_string();
        let Some(rule) = rule_for(name) else {
            self.errors.push(format!("{location}: no lowering rule for '{name}'"));
            return;
        };
        let aten = match describe(o, &self.names) {
            Ok(a) => a,
            // an operand of a node that failed: that node's error says why
            Err(_) if !self.errors.is_empty() && o.operands().any(|v| !self.names.contains_key(&value_key(&v))) => return,
            Err(err) => {
                self.errors.push(format!("{location}: {name}: {err}"));
                return;
            }
        };
        let e = &mut self.e;
        let start = e.text.len();
        // A result with no elements needs no computation (and no reads of
        // the operands, whose slices may be out of range when empty).
        let lowering = if !aten.results.is_empty() && aten.results.iter().all(|r| r.numel() == 0) {
            Ok(aten.results.iter().map(|r| elementwise::empty(e, r)).collect())
        } else {
            apply_rule(rule, e, &aten)
        };
        match lowering {
            Ok(results) => {
                let mut defined = Vec::new();
                for (i, r) in results.into_iter().enumerate() {
                    let result = o.result(i).expect("rule returned one name per result");
                    if r != UNUSED_RESULT {
                        defined.push((r.clone(), aten.results[i].clone()));
                    }
                    self.names.insert(value_key(&result.into()), (r, aten.results[i].clone()));
                }
                let operands = aten.operands.iter().map(|o| (o.ssa.clone(), o.ty.clone())).collect();
                let end = self.e.text.len();
                self.nodes.push(LoweredNode { location, op: name.to_string(), start, end, operands, results: defined });
            }
            Err(err) => self.errors.push(format!("{location}: {err}")),
        }
    }
}

fn lower_function(function: &OperationRef, model: &str) -> Result<Lowered, Vec<String>> {
    let region = function.region(0).map_err(|e| vec![e.to_string()])?;
    let block = region.first_block().ok_or_else(|| vec!["function has no body".to_string()])?;
    let mut d = Driver {
        e: Emitter { indent: 2, ..Default::default() },
        names: HashMap::new(),
        scalars: HashMap::new(),
        errors: Vec::new(),
        nodes: Vec::new(),
    };

    // Arguments: memrefs, brought into tensor land without copies.
    let mut params = Vec::new();
    for i in 0..block.argument_count() {
        let arg = block.argument(i).map_err(|err| vec![err.to_string()])?;
        let ty_text = arg.r#type().to_string();
        let ty = Ty::parse(&ty_text).ok_or_else(|| vec![format!("argument {i}: unsupported type {ty_text}")])?;
        let memref = format!("%in{i}");
        params.push(format!("{memref}: {}", ty.memref()));
        let abi = ty.abi_tensor();
        let mut tensor = d.e.assign(format!("bufferization.to_tensor {memref} restrict : {} to {abi}", ty.memref()));
        if abi.elem != ty.elem {
            tensor = elementwise::convert(&mut d.e, &tensor, &abi, &ty.elem);
        }
        d.names.insert(value_key(&arg.into()), (tensor, ty));
    }

    let returned = d.block(block);
    if !d.errors.is_empty() {
        return Err(d.errors);
    }
    let mut e = d.e;
    let mut nodes = d.nodes;

    // Results are written into caller-provided output memrefs.
    for (k, r) in returned.iter().enumerate() {
        let Some((tensor, ty)) = r else {
            return Err(vec![format!("output {k} is not produced by the lowered program")]);
        };
        let out = format!("%out{k}");
        params.push(format!("{out}: {}", ty.memref()));
        let abi = ty.abi_tensor();
        let value = if abi.elem != ty.elem { elementwise::convert(&mut e, tensor, ty, &abi.elem) } else { tensor.clone() };
        e.line(format!(
            "bufferization.materialize_in_destination {value} in restrict writable {out} : ({abi}, {}) -> ()",
            ty.memref()
        ));
    }
    params.push("%arena: memref<?xi8>".to_string());
    e.line("return");

    let mut text = String::new();
    writeln!(text, "module attributes {{aotc.model = \"{model}\"}} {{").unwrap();
    writeln!(
        text,
        "  func.func @{}({}) attributes {{llvm.emit_c_interface}} {{",
        entry_symbol(model),
        params.join(", ")
    )
    .unwrap();
    let offset = text.len();
    text += &e.text;
    text += "  }\n}\n";
    for n in &mut nodes {
        n.start += offset;
        n.end += offset;
    }
    Ok(Lowered { text, nodes })
}

/// The lowering of one node as a module of its own: a function of its
/// operands that returns its results with the types the graph declares.
/// It verifies exactly when the node's rule wrote consistent code.
pub fn node_module(lowered: &Lowered, node: &LoweredNode) -> String {
    let mut params: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (ssa, ty) in &node.operands {
        if seen.insert(ssa.clone()) {
            params.push(format!("{ssa}: {ty}"));
        }
    }
    let returned: Vec<&str> = node.results.iter().map(|(v, _)| v.as_str()).collect();
    let types: Vec<String> = node.results.iter().map(|(_, t)| t.to_string()).collect();
    let ret = if returned.is_empty() { "return".to_string() } else { format!("return {} : {}", returned.join(", "), types.join(", ")) };
    format!(
        "func.func @node({}) -> ({}) {{\n{}    {ret}\n}}\n",
        params.join(", "),
        types.join(", "),
        &lowered.text[node.start..node.end]
    )
}

/// The symbol of a model's entry function.
pub fn entry_symbol(model: &str) -> String {
    format!("aotc_{model}_forward")
}

fn describe(o: &OperationRef, names: &HashMap<usize, (String, Ty)>) -> Result<AtenOp, String> {
    let mut op = describe_with(o, |v| names.get(&value_key(v)).cloned())?;
    op.result_channel_blocked = op.name.starts_with("aten.conv") && result_channel_blocked(o);
    Ok(op)
}

/// An op of the aten graph as its rule would see it, but with every
/// operand named "": for looking at an op that is not lowered yet.
fn describe_unnamed(o: &OperationRef) -> Option<AtenOp> {
    describe_with(o, |v| Ty::parse(&v.r#type().to_string()).map(|ty| (String::new(), ty))).ok()
}

/// Elementwise activations (one tensor operand): lowered to generics that
/// elementwise fusion merges with their producer and consumer.
const ACTIVATIONS: &[&str] = &[
    "aten.relu", "aten.relu6", "aten.hardtanh", "aten.clamp", "aten.clamp_min", "aten.clamp_max", "aten.hardswish",
    "aten.hardsigmoid", "aten.silu", "aten.sigmoid", "aten.gelu", "aten.elu", "aten.leaky_relu", "aten.mish", "aten.tanh",
];

/// See [`AtenOp::result_channel_blocked`]: follows the first result of
/// `o` through activations while each value has one reader, and asks the
/// convolution rules about the convolution it ends at.
fn result_channel_blocked(o: &OperationRef) -> bool {
    let Ok(mut value) = o.result(0).map(|r| r.to_raw()) else { return false };
    loop {
        let Some((user, operand)) = (unsafe { sole_use(value) }) else { return false };
        let user = unsafe { OperationRef::from_raw(user) };
        let name = user.name().as_string_ref().as_str().unwrap_or("").to_string();
        if ACTIVATIONS.contains(&name.as_str()) && user.operand_count() == 1 {
            let Ok(next) = user.result(0).map(|r| r.to_raw()) else { return false };
            value = next;
            continue;
        }
        return operand == 0 && describe_unnamed(&user).is_some_and(|op| conv::copies_input_channel_blocked(&op));
    }
}

/// The op that reads `value` and the operand position, when it has
/// exactly one use.
unsafe fn sole_use(value: mlir_sys::MlirValue) -> Option<(mlir_sys::MlirOperation, isize)> {
    let first = mlir_sys::mlirValueGetFirstUse(value);
    if first.ptr.is_null() || !mlir_sys::mlirOpOperandGetNextUse(first).ptr.is_null() {
        return None;
    }
    Some((mlir_sys::mlirOpOperandGetOwner(first), mlir_sys::mlirOpOperandGetOperandNumber(first) as isize))
}

/// [`describe`] with `operand` naming each operand value (its SSA name in
/// the lowered program and its type).
fn describe_with(o: &OperationRef, operand: impl Fn(&melior::ir::Value) -> Option<(String, Ty)>) -> Result<AtenOp, String> {
    let mut attrs = BTreeMap::new();
    for (id, attr) in o.attributes() {
        let key = id.as_string_ref().as_str().unwrap_or("?").to_string();
        let text = attr.to_string();
        let value = parse_attr(&text).ok_or_else(|| format!("attribute '{key}' = {text} is not understood"))?;
        attrs.insert(key, value);
    }
    attrs.remove("operandSegmentSizes");
    attrs.remove("resultSegmentSizes");
    let arg_names = match attrs.remove("operand_names") {
        Some(Attr::Strs(v)) => v,
        Some(Attr::Str(s)) => vec![s],
        _ => Vec::new(),
    };
    let mut operands = Vec::new();
    for (i, v) in o.operands().enumerate() {
        let (ssa, ty) = operand(&v).ok_or("operand defined outside the function body")?;
        let arg = arg_names.get(i).cloned().unwrap_or_else(|| format!("operand{i}"));
        operands.push(Operand { ssa, ty, arg });
    }
    let mut results = Vec::new();
    let mut results_used = Vec::new();
    for r in o.results() {
        let text = r.r#type().to_string();
        results.push(Ty::parse(&text).ok_or_else(|| format!("result type {text} is not a static ranked tensor"))?);
        results_used.push(unsafe { !mlir_sys::mlirValueGetFirstUse(r.to_raw()).ptr.is_null() });
    }
    Ok(AtenOp {
        name: o.name().as_string_ref().as_str().unwrap_or("?").to_string(),
        operands,
        attrs,
        results,
        results_used,
        result_channel_blocked: false,
        location: o.location().to_string(),
    })
}

/// Parses the printed forms of the attributes the importer writes.
pub fn parse_attr(text: &str) -> Option<Attr> {
    let text = text.trim();
    if text == "true" || text == "false" {
        return Some(Attr::Bool(text == "true"));
    }
    if let Some(s) = text.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Some(Attr::Str(unescape(s)));
    }
    if let Some(body) = text.strip_prefix("array<").and_then(|s| s.strip_suffix('>')) {
        let (elem, values) = body.split_once(':').unwrap_or((body, ""));
        let items: Vec<&str> = values.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        return match elem.trim() {
            "f64" | "f32" => Some(Attr::Floats(items.iter().map(|v| parse_float(v)).collect::<Option<_>>()?)),
            _ => Some(Attr::Ints(
                items
                    .iter()
                    .map(|v| match *v {
                        "true" => Some(1),
                        "false" => Some(0),
                        v => v.parse().ok(),
                    })
                    .collect::<Option<_>>()?,
            )),
        };
    }
    if let Some(body) = text.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let items = body
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_matches('"').to_string())
            .collect();
        return Some(Attr::Strs(items));
    }
    let (value, ty) = text.rsplit_once(':').map(|(v, t)| (v.trim(), t.trim())).unwrap_or((text, "i64"));
    if ty.starts_with('f') {
        return parse_float(value).map(Attr::Float);
    }
    value.parse().ok().map(Attr::Int)
}

/// The bytes of a printed MLIR string literal's body: `\XX` hex escapes
/// (and `\\`, `\"`, `\n`, `\t`) back to the bytes they stand for.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let next = bytes[i + 1];
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            match (next, hex) {
                (_, Some(b)) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                (b'n', None) => out.push(b'\n'),
                (b't', None) => out.push(b'\t'),
                (other, None) => out.push(other),
            }
            i += 2;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_float(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(f64::from_bits);
    }
    text.parse().ok()
}

/// An f64 in MLIR syntax that round-trips exactly (inf and NaN as hex).
pub fn float_literal(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.16e}")
    } else {
        format!("0x{:016X}", v.to_bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_printed_attributes() {
        assert_eq!(parse_attr("array<i64: 1, 2>"), Some(Attr::Ints(vec![1, 2])));
        assert_eq!(parse_attr("array<i64>"), Some(Attr::Ints(vec![])));
        assert_eq!(parse_attr("3 : i64"), Some(Attr::Int(3)));
        assert_eq!(parse_attr("-1 : i64"), Some(Attr::Int(-1)));
        assert_eq!(parse_attr("2.500000e+00 : f64"), Some(Attr::Float(2.5)));
        assert_eq!(parse_attr("0xFFF0000000000000 : f64"), Some(Attr::Float(f64::NEG_INFINITY)));
        assert_eq!(parse_attr("true"), Some(Attr::Bool(true)));
        assert_eq!(parse_attr("[\"a\", \"b\"]"), Some(Attr::Strs(vec!["a".into(), "b".into()])));
        assert_eq!(parse_attr("\"a\\22b\\5C\\0A\""), Some(Attr::Str("a\"b\\\n".into())));
    }

    #[test]
    fn float_literals_round_trip() {
        for v in [1.5, -0.0, 1e-30, f64::INFINITY, f64::NEG_INFINITY] {
            let Some(Attr::Float(back)) = parse_attr(&format!("{} : f64", float_literal(v))) else { panic!() };
            assert_eq!(back.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn names_follow_irdl_rules() {
        assert_eq!(aten_name("aten.conv2d.default"), "aten.conv2d");
        assert_eq!(aten_name("aten.mul.Tensor"), "aten.mul_tensor");
        assert_eq!(aten_name("aten.flatten.using_ints"), "aten.flatten_using_ints");
        assert_eq!(aten_name("aten.add_.Tensor"), "aten.add_inplace_tensor");
        assert_eq!(aten_name("aten.__and__.Tensor"), "aten.and_tensor");
    }

    #[test]
    fn a_panicking_rule_is_an_error_naming_its_op() {
        fn panics(_: &mut Emitter, op: &AtenOp) -> Result<Vec<String>, String> {
            let empty: Vec<i64> = Vec::new();
            Ok(vec![format!("{}", empty[op.operands.len()])])
        }
        let rule = Rule { op: "aten.test", operands: &[], results: 1, lower: panics };
        let op = AtenOp {
            name: "aten.test".into(),
            operands: vec![],
            attrs: BTreeMap::new(),
            results: vec![Ty::new(vec![2], "f32")],
            results_used: vec![true],
            result_channel_blocked: false,
            location: String::new(),
        };
        let mut e = Emitter::default();
        e.line("%keep = arith.constant 0 : i64");
        let err = panics::quietly(|| apply_rule(&rule, &mut e, &op)).unwrap_err();
        assert!(err.starts_with("aten.test: internal error in its lowering rule (index out of bounds"), "{err}");
        assert_eq!(e.text, "%keep = arith.constant 0 : i64\n", "what the rule wrote is dropped");
    }

    #[test]
    fn every_rule_is_registered_once() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|o| o.op != r.op), "{} twice", r.op);
        }
    }
}
