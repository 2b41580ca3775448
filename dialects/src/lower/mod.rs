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

use crate::types::Ty;
use melior::ir::{
    block::BlockLike, operation::OperationLike, Module, OperationRef, RegionLike, Value, ValueLike,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

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
    Rule { op: "aten.relu_inplace", operands: SELF, results: 1, lower: elementwise::relu },
    Rule { op: "aten.gelu", operands: SELF, results: 1, lower: elementwise::gelu },
    Rule { op: "aten.hardtanh", operands: SELF, results: 1, lower: elementwise::hardtanh },
    Rule { op: "aten.hardtanh_inplace", operands: SELF, results: 1, lower: elementwise::hardtanh },
    Rule { op: "aten.leaky_relu", operands: SELF, results: 1, lower: elementwise::leaky_relu },
    Rule { op: "aten.elu", operands: SELF, results: 1, lower: elementwise::elu },
    Rule { op: "aten.fill_scalar", operands: SELF, results: 1, lower: elementwise::fill_scalar },
    Rule { op: "aten.clone", operands: SELF, results: 1, lower: elementwise::clone },
    Rule { op: "aten.to_copy", operands: SELF, results: 1, lower: elementwise::to_copy },
    // elementwise: binary (Tensor and Scalar overloads share a rule)
    Rule { op: "aten.add_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::add },
    Rule { op: "aten.add_scalar", operands: SELF, results: 1, lower: elementwise::add },
    Rule { op: "aten.add_inplace_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::add },
    Rule { op: "aten.sub_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::sub },
    Rule { op: "aten.sub_scalar", operands: SELF, results: 1, lower: elementwise::sub },
    Rule { op: "aten.rsub_scalar", operands: SELF, results: 1, lower: decompose::rsub },
    Rule { op: "aten.rsub_tensor", operands: SELF_OTHER, results: 1, lower: decompose::rsub },
    Rule { op: "aten.mul_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::mul },
    Rule { op: "aten.mul_scalar", operands: SELF, results: 1, lower: elementwise::mul },
    Rule { op: "aten.mul_inplace_tensor", operands: SELF_OTHER, results: 1, lower: elementwise::mul },
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
    Rule { op: "aten.std_correction", operands: SELF, results: 1, lower: decompose::std },
    Rule { op: "aten.std_dim", operands: SELF, results: 1, lower: decompose::std },
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
    Rule { op: "aten.silu_inplace", operands: SELF, results: 1, lower: decompose::silu },
    Rule { op: "aten.hardsigmoid", operands: SELF, results: 1, lower: decompose::hardsigmoid },
    Rule { op: "aten.hardswish", operands: SELF, results: 1, lower: decompose::hardswish },
    Rule { op: "aten.hardswish_inplace", operands: SELF, results: 1, lower: decompose::hardswish },
    Rule { op: "aten.relu6", operands: SELF, results: 1, lower: decompose::relu6 },
    Rule { op: "aten.softplus", operands: SELF, results: 1, lower: decompose::softplus },
    Rule { op: "aten.mish", operands: SELF, results: 1, lower: decompose::mish },
    Rule { op: "aten.log_sigmoid", operands: SELF, results: 1, lower: decompose::log_sigmoid },
    Rule { op: "aten.clamp_min", operands: SELF, results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.clamp_max", operands: SELF, results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.clamp_min_tensor", operands: &[One("self"), One("min")], results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.clamp_max_tensor", operands: &[One("self"), One("max")], results: 1, lower: decompose::clamp_bound },
    Rule { op: "aten.dropout", operands: &[One("input")], results: 1, lower: decompose::dropout },
    Rule { op: "aten.dropout_inplace", operands: SELF, results: 1, lower: decompose::dropout },
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
    Rule { op: "aten.fill_inplace_tensor", operands: &[One("self"), One("value")], results: 1, lower: creation::fill_tensor },
    Rule { op: "aten.fill_inplace_scalar", operands: SELF, results: 1, lower: creation::full },
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
    Rule { op: "aten.detach_inplace", operands: SELF, results: 1, lower: shape::reshape },
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
    Rule { op: "aten.copy", operands: &[One("self"), One("src")], results: 1, lower: shape::copy },
    Rule { op: "aten.copy_inplace", operands: &[One("self"), One("src")], results: 1, lower: shape::copy },
    Rule { op: "aten.slice_scatter", operands: &[One("self"), One("src")], results: 1, lower: shape::slice_scatter },
    Rule { op: "aten.select_scatter", operands: &[One("self"), One("src")], results: 1, lower: shape::slice_scatter },
    // indexing
    Rule { op: "aten.embedding", operands: &[One("weight"), One("indices")], results: 1, lower: indexing::embedding },
    Rule { op: "aten.index_select", operands: &[One("self"), One("index")], results: 1, lower: indexing::index_select },
    Rule { op: "aten.gather", operands: &[One("self"), One("index")], results: 1, lower: indexing::gather },
    Rule { op: "aten.index_tensor", operands: &[One("self"), Variadic("indices")], results: 1, lower: indexing::index },
    Rule { op: "aten.index_put", operands: &[One("self"), Variadic("indices"), One("values")], results: 1, lower: indexing::index_put },
    Rule { op: "aten.index_put_inplace", operands: &[One("self"), Variadic("indices"), One("values")], results: 1, lower: indexing::index_put },
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
    pub location: String,
}

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

/// Lowers an aten module to linalg text. Every op without a rule, and every
/// rule failure, is collected and reported together.
pub fn lower_module(module: &Module) -> Result<String, Vec<String>> {
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
    lower_function(function, &model)
}

fn value_key(v: &Value) -> usize {
    v.to_raw().ptr as usize
}

fn lower_function(function: &OperationRef, model: &str) -> Result<String, Vec<String>> {
    let region = function.region(0).map_err(|e| vec![e.to_string()])?;
    let block = region.first_block().ok_or_else(|| vec!["function has no body".to_string()])?;
    let mut e = Emitter { indent: 2, ..Default::default() };
    let mut names: HashMap<usize, (String, Ty)> = HashMap::new();
    let mut errors = Vec::new();

    // Arguments: memrefs, brought into tensor land without copies.
    let mut params = Vec::new();
    for i in 0..block.argument_count() {
        let arg = block.argument(i).map_err(|err| vec![err.to_string()])?;
        let ty_text = arg.r#type().to_string();
        let ty = Ty::parse(&ty_text).ok_or_else(|| vec![format!("argument {i}: unsupported type {ty_text}")])?;
        let memref = format!("%in{i}");
        params.push(format!("{memref}: {}", ty.memref()));
        let abi = ty.abi_tensor();
        let mut tensor = e.assign(format!("bufferization.to_tensor {memref} restrict : {} to {abi}", ty.memref()));
        if abi.elem != ty.elem {
            tensor = elementwise::convert(&mut e, &tensor, &abi, &ty.elem);
        }
        names.insert(value_key(&arg.into()), (tensor, ty));
    }

    let mut returned = Vec::new();
    let mut op = block.first_operation();
    while let Some(o) = op {
        op = o.next_in_block();
        let name = o.name().as_string_ref().as_str().unwrap_or("?").to_string();
        if name == "func.return" {
            for v in o.operands() {
                returned.push(names.get(&value_key(&v)).cloned());
            }
            continue;
        }
        let location = o.location().to_string();
        let Some(rule) = rule_for(&name) else {
            errors.push(format!("{location}: no lowering rule for '{name}'"));
            continue;
        };
        let aten = match describe(&o, &names) {
            Ok(a) => a,
            Err(err) => {
                errors.push(format!("{location}: {name}: {err}"));
                continue;
            }
        };
        match (rule.lower)(&mut e, &aten) {
            Ok(results) => {
                for (i, r) in results.into_iter().enumerate() {
                    let result = o.result(i).expect("rule returned one name per result");
                    names.insert(value_key(&result.into()), (r, aten.results[i].clone()));
                }
            }
            Err(err) => errors.push(format!("{location}: {err}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

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
    text += &e.text;
    text += "  }\n}\n";
    Ok(text)
}

/// The symbol of a model's entry function.
pub fn entry_symbol(model: &str) -> String {
    format!("aotc_{model}_forward")
}

fn describe(o: &OperationRef, names: &HashMap<usize, (String, Ty)>) -> Result<AtenOp, String> {
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
        let (ssa, ty) = names.get(&value_key(&v)).cloned().ok_or("operand defined outside the function body")?;
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
        return Some(Attr::Str(s.to_string()));
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
    fn every_rule_is_registered_once() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|o| o.op != r.op), "{} twice", r.op);
        }
    }
}
