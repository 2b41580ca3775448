"""The op suite: small programs for every op aotc supports, with several
shapes, dtypes and argument variants, exported in both forms with torch's
outputs as the reference.

Each case is written to OUT_DIR/ops/<case>/{default,core}/ as model.pt2,
input_K.npy and output_K.npy, with OUT_DIR/ops/<case>/meta.json giving the
op it tests, the variant, the tolerance and the aten targets of each form.
OUT_DIR/core_ops.json is the core inference op list (tools/core_ops.py).
tools/conformance.py compiles and compares them and prints the coverage.

Usage: python tools/export_op_suite.py OUT_DIR
"""
import copy
import json
import os
import re
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core_ops  # noqa: E402
import fixture_io  # noqa: E402

G = torch.Generator().manual_seed(0)
CASES = []

# Tolerance on max abs error, scaled by max(1, max |reference|).
TOL = {torch.float32: 1e-5, torch.float64: 1e-9, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=G).to(dtype)


def rand(*shape, low=0.0, high=1.0, dtype=torch.float32):
    return (torch.rand(*shape, generator=G) * (high - low) + low).to(dtype)


def randint(*shape, low=-5, high=5, dtype=torch.int64):
    return torch.randint(low, high, shape, generator=G).to(dtype)


def mask(*shape, p=0.5):
    return torch.rand(*shape, generator=G) < p


class Fn(torch.nn.Module):
    """A module whose forward is a function of its inputs."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def case(op, variant, fn, *inputs, tol=None, module=None):
    """Registers one program: `fn(*inputs)` (or `module`)."""
    if module is None:
        module = Fn(fn)
    dtypes = [t.dtype for t in inputs if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if tol is None:
        tol = max([TOL.get(d, 1e-5) for d in dtypes], default=1e-5)
    CASES.append((op, variant, module, inputs, tol))


def unary_cases():
    x = randn(3, 5)
    pos = rand(3, 5, low=0.1, high=4.0)
    unit = rand(3, 5, low=-0.95, high=0.95)
    special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.5, -2.5, 0.5])
    for name, f, data in [
        ("abs", torch.abs, x), ("neg", torch.neg, x), ("exp", torch.exp, x), ("expm1", torch.expm1, x),
        ("log", torch.log, pos), ("log2", torch.log2, pos), ("log10", torch.log10, pos), ("log1p", torch.log1p, pos),
        ("sqrt", torch.sqrt, pos), ("rsqrt", torch.rsqrt, pos), ("sin", torch.sin, x), ("cos", torch.cos, x),
        ("tan", torch.tan, unit), ("asin", torch.asin, unit), ("acos", torch.acos, unit), ("atan", torch.atan, x),
        ("sinh", torch.sinh, x), ("cosh", torch.cosh, x), ("tanh", torch.tanh, x), ("asinh", torch.asinh, x),
        ("acosh", torch.acosh, pos + 1), ("atanh", torch.atanh, unit), ("erf", torch.erf, x),
        ("floor", torch.floor, x * 3), ("ceil", torch.ceil, x * 3), ("trunc", torch.trunc, x * 3),
        ("round", torch.round, torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6])),
        ("sigmoid", torch.sigmoid, x), ("reciprocal", torch.reciprocal, pos), ("sign", torch.sign, special),
        ("relu", torch.relu, x), ("gelu", F.gelu, x), ("silu", F.silu, x), ("mish", F.mish, x),
        ("hardswish", F.hardswish, x * 3), ("hardsigmoid", F.hardsigmoid, x * 3), ("relu6", F.relu6, x * 4),
        ("softplus", F.softplus, x * 10), ("elu", F.elu, x), ("leaky_relu", F.leaky_relu, x),
        ("hardtanh", F.hardtanh, x * 2), ("log_sigmoid", F.logsigmoid, x),
    ]:
        case(name, "f32", f, data)
    case("round", "decimals", lambda a: torch.round(a, decimals=2), x)
    case("gelu", "tanh", lambda a: F.gelu(a, approximate="tanh"), x)
    case("elu", "alpha", lambda a: F.elu(a, alpha=0.5), x)
    case("leaky_relu", "slope", lambda a: F.leaky_relu(a, 0.2), x)
    case("hardtanh", "bounds", lambda a: F.hardtanh(a, -0.5, 2.0), x * 2)
    case("softplus", "beta", lambda a: F.softplus(a, beta=2.0, threshold=5.0), x * 4)
    # the whole float range (e^-|x| flushing to 0 past -87), inf and NaN,
    # in enough elements to take the vector loop
    wide = torch.cat([torch.linspace(-100.0, 100.0, 250), special])
    case("sigmoid", "wide_nan_inf", torch.sigmoid, wide)
    case("silu", "wide_nan_inf", F.silu, wide)
    case("gelu", "tanh_wide_nan_inf", lambda a: F.gelu(a, approximate="tanh"), wide)
    case("relu", "nan_inf", torch.relu, special)
    # rows no tile of whole vectors divides: split at the last whole vector,
    # the rest in masked vectors (15 of 16, 9 of 16)
    case("relu", "rows_of_111", torch.relu, randn(2, 3, 5, 111))
    case("add", "bias_over_rows_of_1001", lambda a, b: a + b, randn(3, 1001), randn(3, 1))
    case("relu6", "nan_inf", F.relu6, special)
    case("hardtanh", "nan_inf", lambda a: F.hardtanh(a, -0.5, 2.0), special)
    case("exp", "special", torch.exp, special)
    case("isnan", "f32", torch.isnan, special)
    case("isinf", "f32", torch.isinf, special)
    case("abs", "i64", torch.abs, randint(4, 3))
    case("neg", "i32", torch.neg, randint(4, 3, dtype=torch.int32))
    case("sign", "i64", torch.sign, randint(7))
    case("exp", "int_to_float", torch.exp, randint(5))
    case("sqrt", "f64", torch.sqrt, rand(6, low=0.1, high=9, dtype=torch.float64))
    case("tanh", "f16", torch.tanh, randn(4, 5, dtype=torch.float16))
    case("sigmoid", "bf16", lambda a: torch.sigmoid(a.bfloat16()).float(), randn(4, 5))
    case("bitwise_not", "i64", torch.bitwise_not, randint(6))
    case("bitwise_not", "bool", torch.bitwise_not, mask(6))
    case("logical_not", "f32", torch.logical_not, torch.tensor([0.0, 1.0, -2.0, float("nan")]))
    case("relu", "0d", torch.relu, randn(()))
    case("exp", "empty", torch.exp, randn(0, 3))


def binary_cases():
    a, b = randn(3, 4), randn(3, 4)
    for name, f in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div),
                    ("maximum", torch.maximum), ("minimum", torch.minimum), ("atan2", torch.atan2),
                    ("pow", lambda x, y: torch.pow(x.abs() + 0.1, y)), ("fmod", torch.fmod),
                    ("remainder", torch.remainder)]:
        case(name, "f32", f, a, b)
    case("add", "broadcast", torch.add, randn(2, 1, 4), randn(3, 1))
    case("add", "alpha", lambda x, y: torch.add(x, y, alpha=2.5), a, b)
    case("sub", "alpha_int", lambda x, y: torch.sub(x, y, alpha=3), randint(5), randint(5))
    case("add", "scalar", lambda x: x + 2.5, a)
    case("mul", "int_tensor_float_scalar", lambda x: x * 1.5, randint(4))
    case("add", "int_float_promotion", torch.add, randint(2, 3), randn(3))
    case("add", "0d_tensor", torch.add, randint(3, dtype=torch.int32), torch.tensor(7))
    case("add", "f64_0d_float_tensor", torch.add, randn(3), torch.tensor(2.0, dtype=torch.float64))
    case("add", "f16", torch.add, randn(5, dtype=torch.float16), randn(5, dtype=torch.float16))
    case("mul", "bf16", lambda x, y: (x.bfloat16() * y.bfloat16()).float(), a, b)
    case("add", "bool", torch.add, mask(6), mask(6))
    case("mul", "i8", torch.mul, randint(6, dtype=torch.int8), randint(6, dtype=torch.int8))
    case("add", "u8_wraps", torch.add, randint(8, low=100, high=255, dtype=torch.uint8),
         randint(8, low=100, high=255, dtype=torch.uint8))
    case("div", "int_true_division", torch.div, randint(6), randint(6, low=1, high=4))
    case("div", "trunc", lambda x, y: torch.div(x, y, rounding_mode="trunc"), randint(8, low=-9, high=9),
         torch.tensor([2, -3, 4, -2, 3, 5, -7, 2]))
    case("div", "floor", lambda x, y: torch.div(x, y, rounding_mode="floor"), randint(8, low=-9, high=9),
         torch.tensor([2, -3, 4, -2, 3, 5, -7, 2]))
    case("div", "floor_f32", lambda x, y: torch.div(x, y, rounding_mode="floor"), a * 5, b)
    case("div", "scalar_trunc", lambda x: torch.div(x, 3, rounding_mode="trunc"), randint(6, low=-9, high=9))
    case("floor_divide", "i64", torch.floor_divide, randint(6, low=-9, high=9), torch.tensor([2, -3, 4, -2, 3, 5]))
    case("remainder", "int_signs", torch.remainder, torch.tensor([5, -5, 5, -5, 0]), torch.tensor([3, 3, -3, -3, 2]))
    case("remainder", "scalar", lambda x: torch.remainder(x, 1.5), a * 4)
    case("fmod", "int", torch.fmod, torch.tensor([5, -5, 5, -5]), torch.tensor([3, 3, -3, -3]))
    case("fmod", "scalar", lambda x: torch.fmod(x, 0.7), a * 4)
    case("pow", "tensor_scalar", lambda x: x ** 3, a)
    case("pow", "sqrt_scalar", lambda x: x.abs() ** 0.5, a)
    # the exponents torch computes by products, sqrt and reciprocals, with
    # infinities, NaN, zeros of both signs and negative bases
    special = torch.tensor([-float("inf"), -3.5, -1.0, -0.0, 0.0, 0.25, 2.0, float("inf"), float("nan")])
    for n in (2, 3, -1, -2, 0.5, -0.5, 2.5):
        case("pow", f"special_{n}".replace("-", "neg").replace(".", "_"), lambda x, n=n: x ** n, special)
    case("pow", "scalar_tensor", lambda x: 2.0 ** x, a)
    case("pow", "int", lambda x: x ** 2, randint(5))
    case("maximum", "nan", torch.maximum, torch.tensor([1.0, float("nan"), 3.0]), torch.tensor([2.0, 1.0, float("nan")]))
    case("maximum", "i32", torch.maximum, randint(6, dtype=torch.int32), randint(6, dtype=torch.int32))
    case("minimum", "u8", torch.minimum, randint(6, low=0, high=255, dtype=torch.uint8),
         randint(6, low=0, high=255, dtype=torch.uint8))
    for name in ["bitwise_and", "bitwise_or", "bitwise_xor"]:
        f = getattr(torch, name)
        case(name, "i64", f, randint(6, low=-50, high=50), randint(6, low=-50, high=50))
        case(name, "bool", f, mask(6), mask(6))
        case(name, "scalar", lambda x, f=f: f(x, 6), randint(6, low=-50, high=50))
    for name in ["logical_and", "logical_or", "logical_xor"]:
        case(name, "mixed", getattr(torch, name), randn(6).round(), mask(6))
    for name in ["eq", "ne", "lt", "le", "gt", "ge"]:
        f = getattr(torch, name)
        case(name, "f32", f, randn(3, 4).round(), randn(4).round())
        case(name, "scalar", lambda x, f=f: f(x, 0.5), randn(5))
        case(name, "int_vs_float", f, randint(5), randn(5) * 3)
        case(name, "u8", f, randint(6, low=0, high=255, dtype=torch.uint8), randint(6, low=0, high=255, dtype=torch.uint8))
    case("ne", "nan", torch.ne, torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]))
    case("rsub", "scalar", lambda x: 1.0 - x, a)


def select_cases():
    c, x, y = mask(3, 4), randn(3, 4), randn(4)
    case("where", "tensors", torch.where, c, x, y)
    case("where", "scalar_other", lambda c, x: torch.where(c, x, 0.0), c, x)
    case("where", "scalar_self", lambda c, y: torch.where(c, 1.0, y), c, y)
    case("where", "int", torch.where, c, randint(3, 4), randint(4))
    case("clamp", "scalars", lambda a: torch.clamp(a, -0.5, 0.5), x)
    case("clamp", "min_only", lambda a: torch.clamp(a, min=0.1), x)
    case("clamp", "nan_inf", lambda a: torch.clamp(a, -0.5, 0.5), torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.5, -2.5, 0.25]))
    case("clamp", "tensors", lambda a, lo, hi: torch.clamp(a, lo, hi), x, randn(4) - 1, randn(4) + 1)
    case("clamp", "int", lambda a: torch.clamp(a, -2, 3), randint(8))
    case("clamp_min", "f32", lambda a: torch.clamp_min(a, 0.2), x)
    case("clamp_max", "f32", lambda a: torch.clamp_max(a, 0.2), x)
    case("masked_fill", "scalar", lambda a, m: a.masked_fill(m, -1e9), x, c)
    case("masked_fill", "broadcast_mask", lambda a, m: a.masked_fill(m, float("-inf")), x, mask(4))
    case("masked_fill", "tensor_value", lambda a, m, v: a.masked_fill(m, v), x, c, torch.tensor(3.0))


def reduction_cases():
    x = randn(3, 4, 5)
    case("sum", "all", torch.sum, x)
    case("sum", "dim", lambda a: a.sum(1), x)
    case("sum", "rows_of_24", lambda a: a.sum(-1), randn(3, 24))
    case("sum", "dims_keepdim", lambda a: a.sum((0, 2), keepdim=True), x)
    case("sum", "int_to_i64", lambda a: a.sum(0), randint(4, 3, dtype=torch.int32))
    case("sum", "bool", lambda a: a.sum(), mask(10))
    case("sum", "dtype", lambda a: a.sum(-1, dtype=torch.float64), x)
    case("sum", "f16", lambda a: a.sum(-1), randn(4, 33, dtype=torch.float16))
    case("mean", "all", torch.mean, x)
    case("mean", "dim_keepdim", lambda a: a.mean(-1, keepdim=True), x)
    # a global pool and a squeeze-and-excitation mean with the activation
    # fused in: one reduced dim of 49 (196) in the kernel, not 7 x 7
    case("mean", "silu_then_global_pool", lambda a: F.silu(a).mean((2, 3)), randn(2, 24, 7, 7))
    case("mean", "silu_then_pool_keepdim", lambda a: F.silu(a).mean((-2, -1), keepdim=True), randn(1, 40, 14, 14))
    # a factor broadcast along the window's rows: the dims stay apart
    case("sum", "window_times_row_broadcast", lambda a, b: (a * b).sum((2, 3)), randn(1, 24, 7, 7), randn(1, 24, 1, 7))
    case("mean", "dims", lambda a: a.mean((0, 1)), x)
    case("prod", "all", torch.prod, rand(6, low=0.5, high=1.5))
    case("prod", "dim", lambda a: a.prod(1), rand(3, 4, low=0.5, high=1.5))
    case("prod", "int", lambda a: a.prod(0), randint(3, 4, low=-3, high=3))
    case("amax", "dim", lambda a: a.amax(1), x)
    case("amax", "dims_keepdim", lambda a: a.amax((0, 2), keepdim=True), x)
    case("amin", "dim", lambda a: a.amin(-1), x)
    case("amax", "nan", lambda a: a.amax(0), torch.tensor([[1.0, 2.0], [float("nan"), 0.0]]))
    case("max", "all", torch.max, x)
    case("min", "all", torch.min, randint(9))
    case("max", "dim", lambda a: torch.max(a, 1), x)
    case("min", "dim_keepdim", lambda a: torch.min(a, -1, keepdim=True), x)
    case("argmax", "dim", lambda a: a.argmax(1), x)
    case("argmax", "flat", torch.argmax, x)
    case("argmin", "dim_keepdim", lambda a: a.argmin(2, keepdim=True), x)
    case("argmax", "ties_first", lambda a: a.argmax(0), torch.tensor([1.0, 3.0, 3.0, 2.0]))
    case("argmax", "nan", lambda a: a.argmax(0), torch.tensor([1.0, float("nan"), 3.0]))
    case("argmax", "int", lambda a: a.argmax(1), randint(3, 5))
    case("any", "all", torch.any, mask(8, p=0.1))
    case("any", "dim", lambda a: a.any(1), mask(3, 4, p=0.2))
    case("any", "dims", lambda a: torch.any(a, dim=(0, 1)), randint(3, 4, 2, low=0, high=2))
    case("all", "dim", lambda a: a.all(0), mask(3, 4, p=0.8))
    case("var", "dim", lambda a: a.var(1), x)
    case("var", "correction0_keepdim", lambda a: torch.var(a, (0, 2), correction=0, keepdim=True), x)
    case("var", "all", torch.var, x)
    case("std", "dim", lambda a: a.std(-1), x)
    case("std", "unbiased_false", lambda a: a.std(0, unbiased=False), x)
    case("logsumexp", "dim", lambda a: torch.logsumexp(a, 1), x * 10)
    case("logsumexp", "neg_inf", lambda a: torch.logsumexp(a, 0), torch.full((3, 2), float("-inf")))
    case("cumsum", "dim", lambda a: torch.cumsum(a, 1), x)
    case("cumsum", "int", lambda a: torch.cumsum(a, 0), randint(7))
    case("cumsum", "neg_dim", lambda a: torch.cumsum(a, -1), x)
    case("cumsum", "long", lambda a: torch.cumsum(a, 1), rand(2, 20000))
    case("norm", "l2", lambda a: torch.linalg.vector_norm(a, dim=-1), x)
    case("norm", "l1_keepdim", lambda a: torch.linalg.vector_norm(a, 1, dim=(0, 1), keepdim=True), x)
    case("norm", "inf", lambda a: torch.linalg.vector_norm(a, float("inf")), x)
    case("norm", "p3", lambda a: a.norm(3, dim=1), x)
    case("softmax", "last", lambda a: F.softmax(a, -1), x)
    case("softmax", "dim0", lambda a: F.softmax(a, 0), x * 30)
    case("softmax", "f64", lambda a: F.softmax(a, -1), randn(3, 4, dtype=torch.float64))
    case("softmax", "f16", lambda a: F.softmax(a, -1), randn(3, 9, dtype=torch.float16))
    case("softmax", "neg_inf", lambda a: F.softmax(a, -1), torch.tensor([[0.0, float("-inf"), 1.0]]))
    case("log_softmax", "last", lambda a: F.log_softmax(a, -1), x)
    case("log_softmax", "dtype", lambda a: F.log_softmax(a, 1, dtype=torch.float64), x)


class AddmmWeight(torch.nn.Module):
    """x @ W + b with W stored [in, out], as GPT-2's Conv1D does."""

    def __init__(self, k, n):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.weight = torch.nn.Parameter(torch.randn(k, n, generator=g))
        self.bias = torch.nn.Parameter(torch.randn(n, generator=g))

    def forward(self, x):
        return torch.addmm(self.bias, x, self.weight)


class TiedHead(torch.nn.Module):
    """A language model's tied embedding: the token rows looked up, then
    multiplied by the same weight transposed (`lm_head.weight is wte.weight`)."""

    def __init__(self, vocab, dim):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, dim)

    def forward(self, ids):
        return F.linear(torch.tanh(self.embedding(ids)), self.embedding.weight)


class LinearThen(torch.nn.Module):
    """`then(linear(x), x)`: the elementwise op after a linear layer, which
    becomes the product's epilogue when it alone reads the product."""

    def __init__(self, k, n, then):
        super().__init__()
        self.linear = torch.nn.Linear(k, n)
        self.then = then

    def forward(self, x):
        return self.then(self.linear(x), x)


def linalg_cases():
    case("mm", "f32", torch.mm, randn(5, 7), randn(7, 3))
    case("mm", "i64", torch.mm, randint(3, 4), randint(4, 2))
    case("bmm", "f32", torch.bmm, randn(2, 5, 7), randn(2, 7, 3))
    case("matmul", "2d_1d", torch.matmul, randn(4, 6), randn(6))
    case("matmul", "1d_2d", torch.matmul, randn(6), randn(6, 3))
    case("matmul", "1d_1d", torch.matmul, randn(6), randn(6))
    case("matmul", "batched_broadcast", torch.matmul, randn(2, 1, 3, 4), randn(5, 4, 2))
    case("matmul", "3d_2d", torch.matmul, randn(2, 3, 4), randn(4, 5))
    case("addmm", "beta_alpha", lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0), randn(3), randn(2, 4), randn(4, 3))
    case("baddbmm", "f32", lambda c, a, b: torch.baddbmm(c, a, b, alpha=0.5), randn(2, 3, 5), randn(2, 3, 4), randn(2, 4, 5))
    case("einsum", "bmm", lambda a, b: torch.einsum("bij,bjk->bik", a, b), randn(2, 3, 4), randn(2, 4, 5))
    case("einsum", "transpose_contract", lambda a, b: torch.einsum("bhqd,bhkd->bhqk", a, b), randn(1, 2, 3, 4), randn(1, 2, 5, 4))
    case("einsum", "outer", lambda a, b: torch.einsum("i,j->ij", a, b), randn(3), randn(4))
    case("einsum", "sum_out", lambda a: torch.einsum("ij->j", a), randn(3, 4))
    case("einsum", "permute", lambda a: torch.einsum("abc->cab", a), randn(2, 3, 4))
    lin = torch.nn.Linear(6, 4)
    case("linear", "3d", None, randn(2, 3, 6), module=lin)
    case("linear", "no_bias", None, randn(5, 6), module=torch.nn.Linear(6, 3, bias=False))
    # one row: a matrix-vector product along the weight's rows (K = 24 is
    # reduced in half vectors on AVX-512; K = 20 stays a matmul)
    case("linear", "one_row_half_vectors", None, randn(1, 24), module=torch.nn.Linear(24, 10))
    case("linear", "one_row_3d_no_bias", None, randn(1, 1, 48), module=torch.nn.Linear(48, 7, bias=False))
    case("linear", "one_row_k20", None, randn(1, 20), module=torch.nn.Linear(20, 5))
    # output columns in whole panels of 16: the product reads B packed as
    # [N/16, K, 16] (weights packed at compile time, other matrices per run);
    # 64 columns tile two panels at a time, 48 (three panels) one at a time
    case("linear", "panels_two_wide", None, randn(2, 5, 40), module=torch.nn.Linear(40, 64))
    case("linear", "panels_odd_count", None, randn(7, 33), module=torch.nn.Linear(33, 48))
    case("mm", "panels_of_activation", torch.mm, randn(9, 20), randn(20, 32))
    # one column: the dot products of the rows with it
    case("mm", "column", torch.mm, randn(24, 40), randn(40, 1))
    case("conv2d", "squeeze_excite_fc", lambda a, w, b: F.conv2d(a, w, b), randn(1, 48, 1, 1), randn(12, 48, 1, 1), randn(12))
    # 20 columns: 16 by the micro-kernel, 4 as dot products (K = 16)
    case("linear", "ragged_columns", None, randn(3, 16), module=torch.nn.Linear(16, 20))
    case("addmm", "panels_weight_as_stored", None, randn(6, 24), module=AddmmWeight(24, 32))
    case("matmul", "panels_3d_by_matrix", torch.matmul, randn(2, 3, 16), randn(16, 48))
    # addmm's self as the panel product's own init ([M, N/16, 16]), from
    # every shape that broadcasts to the product: [1, N], [M, 1], [M, N], 0-d
    case("addmm", "panels_bias_row", torch.addmm, randn(1, 32), randn(6, 24), randn(24, 32))
    case("addmm", "panels_bias_column", torch.addmm, randn(6, 1), randn(6, 24), randn(24, 32))
    case("addmm", "panels_bias_full", torch.addmm, randn(6, 32), randn(6, 24), randn(24, 32))
    case("addmm", "panels_bias_scalar", torch.addmm, torch.tensor(0.75), randn(6, 24), randn(24, 32))
    # the op after the product in its register tiles: GELU on 2-panel tiles
    # of 6 rows, a residual add on 1-panel tiles of 7 rows; an op that
    # reads the product twice stays a kernel of its own (10 rows would be
    # split 8 + 2, and an op after a split product is a kernel of its own)
    case("linear", "panels_epilogue_gelu", None, randn(2, 3, 40), module=LinearThen(40, 64, lambda y, x: F.gelu(y)))
    case("linear", "panels_epilogue_residual", None, randn(7, 48), module=LinearThen(48, 48, lambda y, x: y + x))
    case("linear", "panels_epilogue_two_reads", None, randn(3, 32), module=LinearThen(32, 32, lambda y, x: y * torch.sigmoid(y)))
    # rows with no divisor from 4 to 8 (ViT's 197 tokens): the rows up to
    # the last multiple of 8, then the rest (3 rows, 1 row) as a product of
    # their own on the same panels
    case("linear", "rows_split", None, randn(19, 24), module=torch.nn.Linear(24, 48))
    # 300 columns (a vocabulary projection's ragged count, past 256): the
    # weight and bias padded to 304 at compile time, the product on panels
    case("linear", "padded_panels", None, randn(2, 5, 40), module=torch.nn.Linear(40, 300))
    case("linear", "padded_panels_rows_split", None, randn(19, 16), module=torch.nn.Linear(16, 257, bias=False))
    case("linear", "rows_split_then_gelu", None, randn(1, 19, 40), module=LinearThen(40, 64, lambda y, x: F.gelu(y)))
    case("mm", "rows_split_one_left", torch.mm, randn(17, 20), randn(20, 32))
    # the same on row-major matmuls: 20 columns (16 + 4 as dot products),
    # a convolution's 19 filters as rows (each part its own bias)
    case("mm", "rows_split_ragged_columns", torch.mm, randn(19, 24), randn(24, 20))
    case("conv2d", "rows_split_filters", None, randn(1, 16, 10, 10), module=torch.nn.Conv2d(16, 19, 3))
    case("addmm", "rows_split_bias_full", torch.addmm, randn(19, 32), randn(19, 24), randn(24, 32))


def conv_cases():
    case("conv1d", "stride_pad", None, randn(2, 3, 17), module=torch.nn.Conv1d(3, 5, 3, stride=2, padding=1))
    case("conv2d", "groups", None, randn(1, 4, 9, 9), module=torch.nn.Conv2d(4, 6, 3, groups=2, padding=1))
    case("conv2d", "depthwise", None, randn(2, 8, 10, 10), module=torch.nn.Conv2d(8, 8, 3, groups=8, stride=2, padding=1))
    # depthwise is a sum of shifted windows; strided inputs are split into
    # phases first (odd sizes need an extra zero row, stride 3, mixed strides)
    case("conv2d", "depthwise_7x7", None, randn(1, 16, 23, 37), module=torch.nn.Conv2d(16, 16, 7, groups=16, padding=3))
    case("conv2d", "depthwise_s3_odd", None, randn(1, 5, 17, 19), module=torch.nn.Conv2d(5, 5, (3, 5), groups=5, stride=3, padding=(1, 2)))
    case("conv2d", "depthwise_s12_dilated", None, randn(2, 6, 15, 20), module=torch.nn.Conv2d(6, 6, 3, groups=6, stride=(1, 2), dilation=(2, 3), padding=2, bias=False))
    case("conv2d", "depthwise_multiplier", None, randn(1, 4, 9, 9), module=torch.nn.Conv2d(4, 8, 3, groups=4, stride=2))
    # strided 2-d depthwise on whole 16-channel blocks: the channel-blocked layout
    case("conv2d", "depthwise_blocked_5x5_s2", None, randn(2, 32, 17, 20), module=torch.nn.Conv2d(32, 32, 5, groups=32, stride=2, padding=2))
    case("conv2d", "depthwise_blocked_dilated", None, randn(1, 16, 15, 12), module=torch.nn.Conv2d(16, 16, 3, groups=16, stride=(2, 1), dilation=2, padding=(2, 1), bias=False))
    case("conv2d", "depthwise_blocked_unpadded", None, randn(1, 48, 9, 9), module=torch.nn.Conv2d(48, 48, 3, groups=48, stride=2))
    # stride 1 with output rows under 8 columns: blocked too (rows of 7 fill
    # under half a vector in NCHW); 24 channels are not whole blocks: NCHW
    case("conv2d", "depthwise_blocked_short_rows", None, randn(2, 32, 6, 7), module=torch.nn.Conv2d(32, 32, 3, groups=32, padding=1))
    case("conv2d", "depthwise_blocked_5x5_rows_of_5", None, randn(1, 16, 9, 5), module=torch.nn.Conv2d(16, 16, 5, groups=16, padding=2, bias=False))
    case("conv2d", "depthwise_short_rows_partial_block", None, randn(1, 24, 7, 7), module=torch.nn.Conv2d(24, 24, 3, groups=24, padding=1))
    # rows of whole vectors and a power-of-two piece (24 = 16 + 8, 20 = 16 + 4)
    # are computed in two parts; after a ReLU, both parts read the interior
    # of the padded buffer that the ReLU writes in place
    case("conv2d", "depthwise_rows_split", None, randn(2, 12, 12, 24), module=torch.nn.Conv2d(12, 12, 7, groups=12, padding=3))
    case("conv2d", "depthwise_after_relu_rows_split", None, randn(1, 8, 10, 20), module=torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, groups=8, padding=1)))
    case("conv1d", "depthwise_s2", None, randn(2, 24, 41), module=torch.nn.Conv1d(24, 24, 5, groups=24, stride=2, padding=2))
    case("conv3d", "depthwise", None, randn(1, 4, 6, 7, 9), module=torch.nn.Conv3d(4, 4, 3, groups=4, stride=(1, 2, 2), padding=1))
    case("conv2d", "dilation_nobias", None, randn(1, 3, 12, 12), module=torch.nn.Conv2d(3, 4, 3, dilation=2, bias=False))
    case("conv2d", "padding_same", None, randn(1, 3, 8, 8), module=torch.nn.Conv2d(3, 4, 3, padding="same"))
    case("conv3d", "f32", None, randn(1, 2, 5, 6, 7), module=torch.nn.Conv3d(2, 3, 3, padding=1))
    # one image, output rows of whole 16-column panels, 64 or more rows of
    # col (channels x taps): the windows are gathered straight into the
    # panel product's packed panels (a 7x7 stride-2 stem; dilated, no bias;
    # 3-d; a weight given at run time)
    case("conv2d", "windows_into_panels_7x7_s2", None, randn(1, 3, 64, 64), module=torch.nn.Conv2d(3, 16, 7, stride=2, padding=3))
    case("conv2d", "windows_into_panels_dilated_nobias", None, randn(1, 4, 20, 24), module=torch.nn.Conv2d(4, 8, 5, dilation=(1, 2), padding=(2, 0), bias=False))
    case("conv3d", "windows_into_panels", None, randn(1, 4, 4, 6, 32), module=torch.nn.Conv3d(4, 8, (2, 3, 3), padding=(0, 1, 1)))
    case("conv2d", "windows_into_panels_runtime_weight", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), randn(1, 8, 64, 32), randn(24, 8, 3, 3), randn(24))
    # 3x3 stride 1 with 32 or more channels and 36 or more 2x2 output
    # tiles: Winograd F(2x2, 3x3); odd outputs (the last tiles half
    # outside), no padding, padding 2, 49 tiles (48 products' columns and
    # one apart), an unbatched input, a weight given at run time (its
    # transform runs in the program instead of at compile time)
    case("conv2d", "winograd_odd", None, randn(1, 32, 13, 15), module=torch.nn.Conv2d(32, 48, 3, padding=1))
    case("conv2d", "winograd_valid_nobias", None, randn(1, 40, 14, 14), module=torch.nn.Conv2d(40, 32, 3, bias=False))
    # no bias and odd outputs: the interleaving copy once added the
    # uninitialized output to the blocks (right only where the arena was
    # still zero)
    case("conv2d", "winograd_odd_nobias", None, randn(1, 32, 13, 15), module=torch.nn.Conv2d(32, 48, 3, padding=1, bias=False))
    case("conv2d", "winograd_pad2", None, randn(1, 32, 10, 9), module=torch.nn.Conv2d(32, 32, 3, padding=2))
    case("conv2d", "winograd_49_tiles", None, randn(1, 32, 14, 14), module=torch.nn.Conv2d(32, 32, 3, padding=1))
    case("conv2d", "winograd_unbatched", None, randn(32, 12, 12), module=torch.nn.Conv2d(32, 32, 3, padding=1))
    case("conv2d", "winograd_runtime_weight", lambda x, w, b: F.conv2d(x, w, b, padding=1), randn(1, 32, 12, 12), randn(32, 32, 3, 3), randn(32))
    # 49 or more 4x4 output tiles: F(4x4, 3x3) (6x6 tiles, input split by
    # column phase modulo 4); 28x28 outputs (7x7 tiles: 48 products'
    # columns and one apart), ragged outputs on both sides (8x7 tiles), no
    # padding or bias, a weight given at run time, and inputs of large
    # magnitude (B^T and A^T multiply by up to 25 and 8)
    case("conv2d", "winograd_f4", None, randn(1, 32, 28, 28), module=torch.nn.Conv2d(32, 32, 3, padding=1))
    case("conv2d", "winograd_f4_ragged", None, randn(1, 32, 30, 27), module=torch.nn.Conv2d(32, 40, 3, padding=1))
    case("conv2d", "winograd_f4_valid_nobias", None, randn(1, 48, 33, 34), module=torch.nn.Conv2d(48, 32, 3, bias=False))
    # 16 input channels (squeezenet's expansions): F4 at 27x27, F2 at 10x10
    case("conv2d", "winograd_16_channels", None, randn(1, 16, 27, 27), module=torch.nn.Conv2d(16, 64, 3, padding=1))
    case("conv2d", "winograd_16_channels_f2", None, randn(1, 16, 12, 12), module=torch.nn.Conv2d(16, 32, 3))
    case("conv2d", "winograd_f4_runtime_weight", lambda x, w: F.conv2d(x, w, padding=1), randn(1, 32, 28, 28), randn(32, 32, 3, 3))
    case("conv2d", "winograd_f4_large_values", None, randn(1, 32, 28, 28) * 1000, module=torch.nn.Conv2d(32, 32, 3, padding=1))
    # 81 output columns: 80 by the micro-kernel, the last as dot products
    case("conv2d", "ragged_columns", None, randn(1, 8, 9, 9), module=torch.nn.Conv2d(8, 16, 3, padding=1))
    # ragged columns and a weight over 4 MiB: the product is computed transposed
    case("conv2d", "large_weight_ragged", None, randn(1, 256, 7, 7), module=torch.nn.Conv2d(256, 512, 3, padding=1))
    case("conv2d", "large_weight_ragged_s2_batch2", None, randn(2, 256, 13, 13), module=torch.nn.Conv2d(256, 512, 3, stride=2, bias=False))
    case("conv2d", "large_weight_ragged_runtime", lambda x, w, b: F.conv2d(x, w, b, padding=1), randn(1, 256, 7, 7), randn(512, 256, 3, 3), randn(512))
    # one image: the windows are copied from a channels-last copy of the
    # input (K ordered tap, channel); strided, dilated and non-square, 1-d
    case("conv2d", "large_weight_ragged_s2", None, randn(1, 256, 13, 13), module=torch.nn.Conv2d(256, 512, 3, stride=2, padding=1))
    case("conv2d", "large_weight_ragged_dilated", None, randn(1, 384, 9, 8), module=torch.nn.Conv2d(384, 512, (3, 2), dilation=(2, 1), padding=(2, 0)))
    case("conv1d", "large_weight_ragged", None, randn(1, 512, 30), module=torch.nn.Conv1d(512, 1024, 3))
    # few columns (at most 64) and whole row panels of the weight (16, 12 or
    # 8 rows, the most whose register tile spans every 16-column group in
    # 24 accumulators, else 16 or 12 a group at a time): the weight is read
    # as [F/R, K, R]; columns past the last 16 are computed with the panel's
    # rows as the vector dim (1, 4, 8 of them)
    case("conv2d", "row_panels_49_columns", None, randn(1, 40, 7, 7), module=torch.nn.Conv2d(40, 64, 1))
    case("conv2d", "row_panels_8_rows_only", None, randn(1, 16, 7, 7), module=torch.nn.Conv2d(16, 40, 1))
    case("conv2d", "row_panels_64_columns_group_at_a_time", None, randn(1, 24, 8, 8), module=torch.nn.Conv2d(24, 32, 1))
    case("conv2d", "row_panels_12_rows_rest_4", None, randn(1, 8, 6, 6), module=torch.nn.Conv2d(8, 36, 3, padding=1))
    case("conv2d", "row_panels_batch2_nobias", None, randn(2, 24, 4, 5), module=torch.nn.Conv2d(24, 48, 1, bias=False))
    case("conv2d", "row_panels_whole_columns", None, randn(1, 16, 4, 4), module=torch.nn.Conv2d(16, 32, 1))
    case("conv2d", "row_panels_runtime_weight", lambda x, w, b: F.conv2d(x, w, b), randn(1, 40, 7, 7), randn(64, 40, 1, 1), randn(64))
    # the columns past the last 16 are a product of their own on the same
    # panels, fused with the main one (block by block) and copied into
    # place: inside a program (a ReLU6 reads the result), 1 and 4 of them
    case("conv2d", "row_panels_49_columns_then_relu6", None, randn(1, 160, 7, 7),
         module=torch.nn.Sequential(torch.nn.Conv2d(160, 960, 1), torch.nn.ReLU6()))
    case("conv2d", "row_panels_rest_4_then_relu6", None, randn(1, 8, 6, 6),
         module=torch.nn.Sequential(torch.nn.Conv2d(8, 48, 3, padding=1), torch.nn.ReLU6()))
    # a 1x1 convolution of at most 32 channels whose result (after an
    # activation, or not) only a strided depthwise convolution reads: one
    # generic over the channels, fused into the copy into the channel-blocked
    # layout; with a second reader it stays a product
    case("conv2d", "pointwise_into_blocked_depthwise", None, randn(1, 16, 15, 14),
         module=torch.nn.Sequential(torch.nn.Conv2d(16, 32, 1), torch.nn.ReLU6(), torch.nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32)))
    case("conv2d", "pointwise_into_blocked_depthwise_hardswish", None, randn(2, 8, 11, 9),
         module=torch.nn.Sequential(torch.nn.Conv2d(8, 48, 1, bias=False), torch.nn.Hardswish(), torch.nn.Conv2d(48, 48, 3, stride=2, groups=48)))
    case("conv2d", "pointwise_into_blocked_depthwise_short_rows", None, randn(1, 16, 7, 7),
         module=torch.nn.Sequential(torch.nn.Conv2d(16, 32, 1), torch.nn.ReLU6(), torch.nn.Conv2d(32, 32, 3, padding=1, groups=32), torch.nn.ReLU6()))
    case("conv2d", "pointwise_32_into_blocked_depthwise", None, randn(1, 32, 10, 10),
         module=torch.nn.Sequential(torch.nn.Conv2d(32, 16, 1), torch.nn.Conv2d(16, 16, 5, stride=2, padding=2, groups=16)))
    case("conv2d", "pointwise_two_readers", None, randn(1, 16, 9, 9), module=PointwiseTwoReaders())
    case("conv2d", "pointwise_runtime_weight_into_blocked_depthwise",
         lambda x, w, wd: F.conv2d(F.relu6(F.conv2d(x, w)), wd, stride=2, padding=1, groups=32),
         randn(1, 16, 10, 10), randn(32, 16, 1, 1), randn(32, 1, 3, 3))
    case("conv_transpose2d", "stride2", None, randn(1, 4, 5, 5), module=torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1))
    case("conv_transpose2d", "groups", None, randn(2, 4, 4, 4), module=torch.nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2))
    case("conv_transpose1d", "f32", None, randn(1, 3, 7), module=torch.nn.ConvTranspose1d(3, 2, 4, stride=3, padding=2))
    case("conv_transpose3d", "f32", None, randn(1, 2, 3, 3, 3), module=torch.nn.ConvTranspose3d(2, 2, 2, stride=2))


def pool_cases():
    x = randn(2, 3, 9, 10)
    case("max_pool2d", "pad_ceil", lambda a: F.max_pool2d(a, 3, 2, 1, ceil_mode=True), x)
    case("max_pool2d", "indices", lambda a: F.max_pool2d(a, 2, return_indices=True), x)
    # resnet's 3x3 / 2 / 1; a window of other sides and strides, dilated,
    # over NaNs (which propagate); an unbatched input
    case("max_pool2d", "s2_pad1", lambda a: F.max_pool2d(a, 3, 2, 1), randn(1, 4, 16, 18))
    nans = randn(1, 2, 11, 12)
    nans[0, 0, 2, 3] = float("nan")
    nans[0, 1, 7, 10] = float("nan")
    case("max_pool2d", "dilated_nan", lambda a: F.max_pool2d(a, (2, 3), (3, 2), (1, 1), dilation=(2, 1)), nans)
    # strided and undilated: separably, the maxima over the windows' rows
    # (made into the stride phases of their columns), then over their
    # columns, NaNs included; strides of 2 and 1
    case("max_pool2d", "phases_nan", lambda a: F.max_pool2d(a, (3, 2), (2, 1), (1, 1)), nans)
    # row stride 1, column stride 2: the first output row's windows have one
    # row inside the input (made apart, from that row alone), holding a NaN
    top_nan = randn(1, 2, 6, 11)
    top_nan[0, 1, 0, 4] = float("nan")
    case("max_pool2d", "row_stride_1_top_nan", lambda a: F.max_pool2d(a, (2, 3), (1, 2), (1, 1), ceil_mode=True), top_nan)
    case("max_pool2d", "unbatched", lambda a: F.max_pool2d(a, 3, 2, 1), randn(3, 9, 9))
    # the padding never read (the output rows whose windows reach it are
    # made from the rows inside, the columns' phases padded with -inf):
    # all-negative values (a zero would win), sides that are not multiples
    # of the stride, the last window past the input (ceil_mode), a padding
    # as large as the stride; a ReLU before it (resnet's stem)
    negative = randn(1, 3, 10, 13) - 10.0
    case("max_pool2d", "phases_negative_ceil", lambda a: F.max_pool2d(a, 3, 3, 1, ceil_mode=True), negative)
    case("max_pool2d", "phases_pad_as_stride", lambda a: F.max_pool2d(a, (4, 5), (2, 2), (2, 2)), negative)
    case("max_pool2d", "relu_then_phases", lambda a: F.max_pool2d(F.relu(a), 3, 2, 1), randn(1, 8, 14, 15))
    # a ReLU read only by the pool runs after it (squeezenet's stem: odd
    # sides, ceil_mode, a NaN); one read elsewhere too stays before it
    relu_nan = randn(1, 4, 13, 11)
    relu_nan[0, 2, 5, 6] = float("nan")
    case("max_pool2d", "relu_after_odd_ceil", lambda a: F.max_pool2d(F.relu(a), 3, 2, ceil_mode=True), relu_nan)
    case("max_pool2d", "relu_also_returned", lambda a: (lambda r: (F.max_pool2d(r, 2, 2, ceil_mode=True), r))(F.relu(a)), randn(1, 3, 7, 9))
    case("max_pool1d", "f32", lambda a: F.max_pool1d(a, 3, 2), randn(2, 3, 11))
    case("max_pool3d", "f32", lambda a: F.max_pool3d(a, 2), randn(1, 2, 4, 6, 6))
    case("max_pool3d", "indices", lambda a: F.max_pool3d(a, 2, return_indices=True), randn(1, 2, 4, 4, 4))
    case("avg_pool2d", "f32", lambda a: F.avg_pool2d(a, 3, 2), x)
    case("avg_pool2d", "pad_exclude", lambda a: F.avg_pool2d(a, 3, 2, 1, count_include_pad=False), x)
    case("avg_pool2d", "pad_ceil_include", lambda a: F.avg_pool2d(a, 3, 2, 1, ceil_mode=True), x)
    case("avg_pool2d", "divisor", lambda a: F.avg_pool2d(a, 2, divisor_override=3), x)
    case("avg_pool1d", "f32", lambda a: F.avg_pool1d(a, 4, 2, 1), randn(2, 3, 13))
    case("avg_pool3d", "f32", lambda a: F.avg_pool3d(a, 2), randn(1, 2, 4, 6, 6))
    case("adaptive_avg_pool2d", "1x1", lambda a: F.adaptive_avg_pool2d(a, 1), x)
    case("adaptive_avg_pool2d", "uneven", lambda a: F.adaptive_avg_pool2d(a, (4, 3)), x)
    # windows that tile the input: a plain reduction (a contiguous one when global)
    case("adaptive_avg_pool2d", "tiling", lambda a: F.adaptive_avg_pool2d(a, (4, 5)), randn(1, 3, 12, 10))
    case("adaptive_avg_pool2d", "global_vectors", lambda a: F.adaptive_avg_pool2d(a, 1), randn(1, 16, 56, 56))
    case("adaptive_max_pool2d", "tiling", lambda a: F.adaptive_max_pool2d(a, (3, 5)), randn(1, 3, 12, 10))
    case("adaptive_max_pool2d", "global", lambda a: F.adaptive_max_pool2d(a, 1), randn(1, 16, 28, 28))
    case("adaptive_avg_pool1d", "f32", lambda a: F.adaptive_avg_pool1d(a, 5), randn(2, 3, 13))
    case("adaptive_avg_pool3d", "f32", lambda a: F.adaptive_avg_pool3d(a, (2, 3, 2)), randn(1, 2, 5, 7, 4))
    case("adaptive_max_pool2d", "uneven", lambda a: F.adaptive_max_pool2d(a, (4, 3)), x)
    case("adaptive_max_pool1d", "f32", lambda a: F.adaptive_max_pool1d(a, 4), randn(2, 3, 10))
    case("upsample_nearest2d", "scale2", lambda a: F.interpolate(a, scale_factor=2, mode="nearest"), randn(1, 2, 3, 4))
    case("upsample_nearest2d", "size", lambda a: F.interpolate(a, size=(5, 7), mode="nearest"), randn(1, 2, 3, 4))
    case("upsample_nearest1d", "f32", lambda a: F.interpolate(a, scale_factor=3, mode="nearest"), randn(1, 2, 5))
    case("upsample_bilinear2d", "scale2", lambda a: F.interpolate(a, scale_factor=2, mode="bilinear"), randn(1, 2, 3, 4))
    case("upsample_bilinear2d", "align_corners", lambda a: F.interpolate(a, size=(7, 5), mode="bilinear", align_corners=True), randn(1, 2, 3, 4))
    case("upsample_bilinear2d", "downscale", lambda a: F.interpolate(a, size=(3, 2), mode="bilinear"), randn(1, 2, 7, 5))


class PointwiseTwoReaders(torch.nn.Module):
    """A 1x1 convolution read by a strided depthwise one and by the output."""

    def __init__(self):
        super().__init__()
        self.pointwise = torch.nn.Conv2d(16, 32, 1)
        self.depthwise = torch.nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32)

    def forward(self, x):
        y = torch.relu(self.pointwise(x))
        return self.depthwise(y), y


class TrainingBatchNorm(torch.nn.Module):
    """Batch statistics with running-stat updates (buffer mutations)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(6))
        self.register_buffer("running_var", torch.ones(6))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, training=True, momentum=0.1)


class ConvAndNorm(torch.nn.Module):
    """A convolution's result and its batch norm: nothing to fold."""

    def __init__(self, conv, bn):
        super().__init__()
        self.conv, self.bn = conv, bn

    def forward(self, x):
        y = self.conv(x)
        return y, self.bn(y)


class LegitBatchNorm(TrainingBatchNorm):
    """The core op itself, which updates the running statistics in place."""

    def forward(self, x):
        out = torch.ops.aten._native_batch_norm_legit(x, None, None, self.running_mean, self.running_var, True, 0.1, 1e-5)[0]
        return out, self.running_mean.clone()


def norm_cases():
    x = randn(2, 6, 5, 4)
    case("layer_norm", "affine", None, randn(2, 3, 8), module=torch.nn.LayerNorm(8))
    case("layer_norm", "2d_noaffine", lambda a: F.layer_norm(a, (3, 8)), randn(2, 3, 8))
    bn = torch.nn.BatchNorm2d(6).eval()
    with torch.no_grad():
        bn.running_mean.copy_(randn(6))
        bn.running_var.copy_(rand(6, low=0.5, high=2))
        bn.weight.copy_(randn(6))
        bn.bias.copy_(randn(6))
    case("batch_norm", "eval", None, x, module=bn)
    bn1 = torch.nn.BatchNorm1d(6).eval()
    case("batch_norm", "1d_eval", None, randn(4, 6, 3), module=bn1)
    # evaluation batch norms after a convolution are folded into its weight
    # and bias at compile time (with bias, without, affine=False, into a
    # Winograd convolution); not when the convolution's result is read too
    def conv_bn(conv, bn):
        with torch.no_grad():
            n = bn.num_features
            bn.running_mean.copy_(randn(n))
            bn.running_var.copy_(rand(n, low=0.5, high=2))
            if bn.affine:
                bn.weight.copy_(randn(n))
                bn.bias.copy_(randn(n))
        return torch.nn.Sequential(conv, bn).eval()
    case("batch_norm", "folded_into_conv", None, randn(2, 3, 9, 9), module=conv_bn(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16)))
    case("batch_norm", "folded_into_depthwise", None, randn(1, 16, 12, 20), module=conv_bn(torch.nn.Conv2d(16, 16, 3, groups=16, padding=1, bias=False), torch.nn.BatchNorm2d(16)))
    case("batch_norm", "folded_not_affine", None, randn(2, 4, 11), module=conv_bn(torch.nn.Conv1d(4, 8, 3), torch.nn.BatchNorm1d(8, affine=False)))
    case("batch_norm", "folded_into_winograd", None, randn(1, 32, 14, 14), module=conv_bn(torch.nn.Conv2d(32, 32, 3, padding=1, bias=False), torch.nn.BatchNorm2d(32)))
    both = conv_bn(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    case("batch_norm", "conv_result_read_too", None, randn(1, 3, 7, 7), module=ConvAndNorm(both[0], both[1]))
    case("batch_norm", "batch_stats", lambda a: F.batch_norm(a, None, None, training=True), x)
    case("batch_norm", "training_running_stats", None, x, module=TrainingBatchNorm())
    case("group_norm", "affine", None, x, module=torch.nn.GroupNorm(3, 6))
    case("group_norm", "3d_input", lambda a: F.group_norm(a, 2), randn(2, 4, 7))
    case("instance_norm", "f32", lambda a: F.instance_norm(a), x)
    case("rms_norm", "weight", None, randn(2, 3, 8), module=torch.nn.RMSNorm(8))
    case("rms_norm", "eps", lambda a: F.rms_norm(a, (8,), eps=1e-3), randn(2, 3, 8))


def attention_cases():
    q, k, v = randn(1, 2, 5, 8), randn(1, 2, 7, 8), randn(1, 2, 7, 8)
    sdpa = F.scaled_dot_product_attention
    case("scaled_dot_product_attention", "plain", sdpa, q, k, v)
    case("scaled_dot_product_attention", "causal", lambda a, b, c: sdpa(a, b, c, is_causal=True), q, randn(1, 2, 5, 8), randn(1, 2, 5, 8))
    case("scaled_dot_product_attention", "bool_mask", lambda a, b, c, m: sdpa(a, b, c, attn_mask=m), q, k, v, mask(5, 7, p=0.8) | torch.eye(5, 7, dtype=torch.bool))
    case("scaled_dot_product_attention", "float_mask_scale", lambda a, b, c, m: sdpa(a, b, c, attn_mask=m, scale=0.3), q, k, v, randn(5, 7))
    case("scaled_dot_product_attention", "gqa", lambda a, b, c: sdpa(a, b, c, enable_gqa=True), randn(1, 4, 5, 8), randn(1, 2, 5, 8), randn(1, 2, 5, 8))
    # more keys than one block: the online softmax over 3 blocks of 200
    # keys; causal over 4 blocks of 130 (blocks past the queries skipped);
    # a row masked whole in its first block of 256 keys but not after, and
    # a row masked whole (NaN, as torch); a padding mask [1, 1, 1, S] added
    kv = lambda n, s: (randn(1, 2, s, n), randn(1, 2, s, n))
    case("scaled_dot_product_attention", "long_keys", sdpa, randn(1, 2, 40, 16), *kv(16, 600))
    case("scaled_dot_product_attention", "long_causal", lambda a, b, c: sdpa(a, b, c, is_causal=True), randn(1, 2, 520, 8), *kv(8, 520))
    late = torch.ones(4, 512, dtype=torch.bool)
    late[0, :300] = False
    late[1, :] = False
    late[2:] = mask(2, 512, p=0.3)
    late[2:, 5] = True
    case("scaled_dot_product_attention", "long_mask_late_keys", lambda a, b, c, m: sdpa(a, b, c, attn_mask=m), randn(1, 1, 4, 8), randn(1, 1, 512, 8), randn(1, 1, 512, 8), late)
    # 19 queries (a prime: the products' rows split 16 + 3), 23 keys
    case("scaled_dot_product_attention", "queries_rows_split", sdpa, randn(1, 2, 19, 8), randn(1, 2, 23, 8), randn(1, 2, 23, 8))
    # more queries than keys, causal (aligned at the first query and key),
    # values wider than the keys: blocks of 60 queries and 135 keys
    case("scaled_dot_product_attention", "long_causal_more_queries", lambda a, b, c: sdpa(a, b, c, is_causal=True), randn(1, 2, 300, 24), randn(1, 2, 270, 24), randn(1, 2, 270, 40))
    # attention written out by hand: rewritten into the attention kernel in
    # the default form (a scale, an additive mask, eval dropout, a permute
    # for K^T); not when the scores are read twice
    def by_hand(a, b, c, m):
        s = torch.matmul(a, b.transpose(-2, -1)) / 4.0 + m
        return torch.matmul(F.dropout(torch.softmax(s, dim=-1), 0.1, training=False), c)
    case("scaled_dot_product_attention", "written_out", by_hand, randn(2, 3, 20, 16), randn(2, 3, 300, 16), randn(2, 3, 300, 8), randn(1, 1, 20, 300))
    case("scaled_dot_product_attention", "written_out_permute", lambda a, b, c: torch.softmax((a * 0.5) @ b.permute(0, 2, 1), -1) @ c, randn(4, 9, 16), randn(4, 11, 16), randn(4, 11, 16))
    def scores_read_twice(a, b, c):
        s = a @ b.transpose(-2, -1)
        return torch.softmax(s, -1) @ c, s.sum()
    case("scaled_dot_product_attention", "written_out_scores_read_twice", scores_read_twice, randn(1, 2, 5, 8), randn(1, 2, 6, 8), randn(1, 2, 6, 8))
    case("scaled_dot_product_attention", "long_padding_mask", lambda a, b, c, m: sdpa(a, b, c, attn_mask=m), randn(2, 3, 6, 8), randn(2, 3, 300, 8), randn(2, 3, 300, 8), randn(1, 1, 1, 300))
    # heads split off [B, N, H, D] by transposes are read in place, and the
    # result is written [B, L, H, Dv] when a transpose alone reads it (the
    # compiler's attention_pattern::heads_in_place): all four, with two
    # query blocks and a padding mask, split by permutes and causal; the
    # query alone (the key read twice, the result returned as is); grouped
    # heads and no queries (the other paths, the heads transposed back)
    def heads(a, b, c, **kw):
        o = sdpa(a.transpose(1, 2), b.transpose(1, 2), c.transpose(1, 2), **kw)
        return o.transpose(1, 2).reshape(a.shape[0], a.shape[1], o.shape[1] * o.shape[3])
    case("scaled_dot_product_attention", "heads_in_place", heads, randn(2, 5, 3, 8), randn(2, 7, 3, 8), randn(2, 7, 3, 16))
    case("scaled_dot_product_attention", "heads_in_place_mask_blocks", lambda a, b, c, m: heads(a, b, c, attn_mask=m), randn(1, 130, 2, 16), randn(1, 300, 2, 16), randn(1, 300, 2, 16), randn(1, 1, 1, 300))
    case("scaled_dot_product_attention", "heads_in_place_head_mask", lambda a, b, c, m: heads(a, b, c, attn_mask=m), randn(2, 5, 3, 8), randn(2, 7, 3, 8), randn(2, 7, 3, 8), mask(2, 3, 5, 7, p=0.7) | torch.eye(5, 7, dtype=torch.bool))
    def heads_permuted_causal(a, b, c):
        o = sdpa(a.permute(0, 2, 1, 3), b.permute(0, 2, 1, 3), c.permute(0, 2, 1, 3), is_causal=True)
        return o.permute(0, 2, 1, 3).reshape(a.shape[0], a.shape[1], o.shape[1] * o.shape[3])
    case("scaled_dot_product_attention", "heads_in_place_permuted_causal", heads_permuted_causal, randn(1, 9, 2, 8), randn(1, 9, 2, 8), randn(1, 9, 2, 8))
    def query_alone(a, b, c):
        kt = b.transpose(1, 2)
        return sdpa(a.transpose(1, 2), kt, c), kt.sum()
    case("scaled_dot_product_attention", "heads_in_place_query_alone", query_alone, randn(1, 5, 2, 8), randn(1, 6, 2, 8), randn(1, 2, 6, 8))
    case("scaled_dot_product_attention", "heads_in_place_gqa", lambda a, b, c: heads(a, b, c, enable_gqa=True), randn(1, 5, 4, 8), randn(1, 5, 2, 8), randn(1, 5, 2, 8))
    case("scaled_dot_product_attention", "heads_in_place_no_queries", heads, randn(1, 0, 2, 8), randn(1, 4, 2, 8), randn(1, 4, 2, 8))
    # keys and values behind an empty KV cache (Hugging Face's DynamicCache
    # concatenates a [0] tensor): read in place too
    def empty_cache(a, b, c, e):
        k, v = torch.cat([e, b.transpose(1, 2)], -2), torch.cat([e, c.transpose(1, 2)], -2)
        o = sdpa(a.transpose(1, 2), k, v, is_causal=True)
        return o.transpose(1, 2).reshape(a.shape[0], a.shape[1], o.shape[1] * o.shape[3])
    case("scaled_dot_product_attention", "heads_in_place_empty_cache", empty_cache, randn(1, 6, 2, 8), randn(1, 6, 2, 8), randn(1, 6, 2, 8), randn(0))


def shape_cases():
    x = randn(2, 3, 4)
    case("view", "f32", lambda a: a.view(4, 6) * 2, x)
    case("reshape", "infer", lambda a: a.transpose(0, 1).reshape(-1, 2), x)
    case("flatten", "f32", lambda a: torch.flatten(a, 1), x)
    case("unflatten", "f32", lambda a: a.unflatten(2, (2, 2)), x)
    case("squeeze", "dim", lambda a: a.squeeze(1), randn(2, 1, 3))
    case("squeeze", "all", lambda a: a.squeeze(), randn(1, 2, 1, 3))
    case("unsqueeze", "neg", lambda a: a.unsqueeze(-1) + 1, x)
    case("permute", "f32", lambda a: a.permute(2, 0, 1), x)
    case("transpose", "f32", lambda a: a.transpose(-1, 0), x)
    case("t", "f32", lambda a: a.t(), randn(3, 5))
    # output rows of 37: 32 columns in 16 x 16 blocks, the last 5 apart
    case("t", "ragged_rows_split", lambda a: a.t() * 2.0, randn(37, 32))
    case("expand", "f32", lambda a: a.expand(2, 3, 4) + 0, randn(3, 1))
    case("expand", "new_dims", lambda a: a.expand(4, 2, 3) * 1, randn(2, 3))
    case("contiguous", "f32", lambda a: a.transpose(0, 1).contiguous(), x)
    case("clone", "f32", lambda a: a.clone(), x)
    case("slice", "step", lambda a: a[:, 1:, ::2], x)
    case("slice", "negative", lambda a: a[..., -3:-1], x)
    case("slice", "clamped_end", lambda a: a[:, :100], x)
    case("select", "f32", lambda a: a[:, 1], x)
    case("select", "negative", lambda a: a[-1], x)
    case("narrow", "f32", lambda a: a.narrow(2, 1, 2), x)
    case("split", "tensor", lambda a: torch.split(a, 2, dim=2), x)
    case("split", "sizes", lambda a: torch.split(a, [1, 2], dim=1), x)
    case("chunk", "uneven", lambda a: torch.chunk(a, 3, dim=-1), randn(2, 7))
    case("unbind", "f32", lambda a: torch.unbind(a, 1), x)
    case("cat", "dim1", lambda a, b: torch.cat([a, b], 1), x, randn(2, 2, 4))
    case("cat", "mixed_dtypes", lambda a, b: torch.cat([a, b]), randn(2, 3), randint(1, 3))
    case("stack", "new_dim", lambda a, b: torch.stack([a, b], 1), x, x * 2)
    case("repeat", "f32", lambda a: a.repeat(2, 1, 3), randn(3, 2))
    case("flip", "f32", lambda a: torch.flip(a, (0, 2)), x)
    case("roll", "dims", lambda a: torch.roll(a, (1, -2), (1, 2)), x)
    case("roll", "flat", lambda a: torch.roll(a, 5), x)
    case("diagonal", "offset", lambda a: torch.diagonal(a, 1, 1, 2), randn(2, 4, 5))
    case("as_strided", "overlap", lambda a: torch.as_strided(a, (3, 3), (2, 1), 1), randn(12))
    case("triu", "f32", lambda a: torch.triu(a, 1), randn(2, 4, 5))
    case("tril", "int", lambda a: torch.tril(a, -1), randint(4, 4))
    case("constant_pad_nd", "f32", lambda a: F.pad(a, (1, 2, 0, 1), value=0.5), x)
    case("constant_pad_nd", "negative", lambda a: F.pad(a, (-1, 2)), x)
    case("reflection_pad2d", "f32", lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"), randn(1, 2, 4, 5))
    case("reflection_pad1d", "f32", lambda a: F.pad(a, (2, 3), mode="reflect"), randn(1, 2, 5))
    case("replication_pad2d", "f32", lambda a: F.pad(a, (2, 1, 1, 2), mode="replicate"), randn(1, 2, 4, 5))
    case("replication_pad3d", "f32", lambda a: F.pad(a, (1, 1, 1, 0, 0, 1), mode="replicate"), randn(1, 1, 2, 3, 3))
    case("to", "f32_to_i32", lambda a: (a * 10).to(torch.int32), x)
    case("to", "i64_to_f16", lambda a: a.to(torch.float16), randint(5))
    case("to", "f32_to_bool", lambda a: a.round().bool(), x)
    case("to", "f32_to_u8", lambda a: (a.abs() * 50).to(torch.uint8), x)
    case("to", "u8_to_f32", lambda a: a.float(), randint(6, low=0, high=255, dtype=torch.uint8))
    case("to", "f16_to_bf16_to_f32", lambda a: a.to(torch.bfloat16).float(), randn(6, dtype=torch.float16))
    case("type_as", "f32", lambda a, b: a.type_as(b), randint(4), randn(4, dtype=torch.float64))
    case("slice_scatter", "f32", lambda a, b: torch.slice_scatter(a, b, 1, 0, 3, 2), randn(3, 5), randn(3, 2))
    case("select_scatter", "f32", lambda a, b: torch.select_scatter(a, b, 0, 1), randn(3, 5), randn(5))


def creation_cases():
    x = randn(2, 3)
    case("full", "f32", lambda a: a + torch.full((2, 3), 2.5), x)
    case("zeros", "i64", lambda a: torch.zeros(2, 3, dtype=torch.int64) + a, randint(2, 3))
    case("ones", "f32", lambda a: torch.ones(3) + a, x)
    case("zeros_like", "f32", lambda a: torch.zeros_like(a) + 1, x)
    case("ones_like", "i32", lambda a: torch.ones_like(a) * a, randint(4, dtype=torch.int32))
    case("full_like", "f32", lambda a: torch.full_like(a, 7.0) - a, x)
    case("empty_like", "fill", lambda a: torch.empty_like(a).fill_(3.0) * a, x)
    case("new_zeros", "f32", lambda a: a.new_zeros(4) + 1, x)
    case("new_ones", "f32", lambda a: a.new_ones((2, 2)) * 3, x)
    case("arange", "end", lambda a: torch.arange(6) * a, randint(6))
    case("arange", "start_step_float", lambda a: torch.arange(0.5, 3.0, 0.25) + a, randn(10))
    case("arange", "negative_step", lambda a: torch.arange(10, 0, -3) + a, randint(4))
    case("scalar_tensor", "f32", lambda a: a * torch.tensor(2.0), x)
    case("fill", "tensor", lambda a, v: a.clone().fill_(v), x, torch.tensor(4.0))
    case("no_inputs", "constant_program", None, module=NoInputs())
    case("outputs", "nested_and_repeated", lambda a, b: (a + b, (a * b, [a - b, a + b]), a + b), x, randn(3))


class NoInputs(torch.nn.Module):
    def forward(self):
        return torch.arange(5, dtype=torch.float32) * 2 + torch.ones(5)


def index_cases():
    w = randn(10, 4)
    case("embedding", "f32", lambda i: F.embedding(i, w), torch.tensor([[0, 3, 9], [1, 1, 2]]))
    case("embedding", "module", None, torch.tensor([[0, 3, 9, 2]]), module=torch.nn.Embedding(10, 6))
    # the weight stored once as the head's padded panels (300 -> 304 rows,
    # [19, 24, 16]), which the lookup reads its rows from (ids in the first
    # and the last, partly padded, panel too)
    case("embedding", "tied_head_panels", None, torch.tensor([[0, 299, 17, 16, 5, 288, 1]]), module=TiedHead(300, 24))
    x = randn(5, 6)
    case("index_select", "dim1", lambda a, i: torch.index_select(a, 1, i), x, torch.tensor([4, 0, 2, 2]))
    case("gather", "dim1", lambda a, i: torch.gather(a, 1, i), x, randint(5, 3, low=0, high=6))
    case("gather", "dim0", lambda a, i: torch.gather(a, 0, i), x, randint(2, 6, low=0, high=5))
    case("index", "one_tensor", lambda a, i: a[i], x, torch.tensor([3, 0, 3]))
    case("index", "two_adjacent", lambda a, i, j: a[i, j], x, torch.tensor([0, 4]), torch.tensor([5, 1]))
    case("index", "middle", lambda a, i: a[:, i], randn(3, 5, 2), torch.tensor([[0, 4], [2, 2]]))
    case("index", "broadcast_separated", lambda a, i, j: a[i, :, j], randn(4, 3, 5), torch.tensor([[0], [3]]), torch.tensor([1, 4, 2]))
    case("index_put", "assign", lambda a, i, v: torch.index_put(a, (i,), v), x, torch.tensor([1, 3]), randn(2, 6))
    case("index_put", "accumulate", lambda a, i, v: torch.index_put(a, (i,), v, accumulate=True), x, torch.tensor([1, 1, 4]), randn(3, 6))
    case("index_put", "two_indices_scalar", lambda a, i, j: a.index_put((i, j), torch.tensor(9.0)), x, torch.tensor([0, 2]), torch.tensor([1, 5]))
    case("scatter", "src", lambda a, i, s: torch.scatter(a, 1, i, s), x, torch.tensor([[0, 1], [2, 3], [4, 5], [0, 0], [1, 1]]), randn(5, 2))
    case("scatter", "value", lambda a, i: torch.scatter(a, 0, i, 2.5), x, torch.tensor([[0, 1, 2, 3, 4, 0]]))
    case("scatter_add", "dim0", lambda a, i, s: torch.scatter_add(a, 0, i, s), x, randint(3, 6, low=0, high=5), randn(3, 6))
    for r in ["sum", "prod", "amax", "amin", "mean"]:
        case("scatter_reduce", r, lambda a, i, s, r=r: torch.scatter_reduce(a, 1, i, s, r), x, randint(5, 4, low=0, high=6), randn(5, 4))
    case("scatter_reduce", "amax_exclude_self", lambda a, i, s: torch.scatter_reduce(a, 1, i, s, "amax", include_self=False), x, randint(5, 4, low=0, high=6), randn(5, 4))


def overload_cases():
    """Core overloads that Python code rarely reaches, called directly."""
    aten = torch.ops.aten
    x = randn(3, 4)
    case("div", "scalar_overload", lambda a: aten.div.Scalar(a, 2.0), x)
    case("div", "scalar_mode_overload", lambda a: aten.div.Scalar_mode(a, 2.0, rounding_mode="floor"), x * 5)
    case("sub", "scalar_overload", lambda a: aten.sub.Scalar(a, 1.5), x)
    case("empty", "memory_format", lambda a: aten.fill.Scalar(aten.empty.memory_format([3, 4]), 2.0) + a, x)
    case("empty_strided", "f32", lambda a: aten.fill.Scalar(aten.empty_strided([3, 4], [4, 1]), 2.0) * a, x)
    case("reflection_pad1d", "overload", lambda a: aten.reflection_pad1d(a, [2, 1]), randn(1, 2, 5))
    case("reflection_pad2d", "overload", lambda a: aten.reflection_pad2d(a, [1, 2, 2, 1]), randn(1, 2, 4, 5))
    case("reflection_pad3d", "overload", lambda a: aten.reflection_pad3d(a, [1, 1, 1, 0, 0, 1]), randn(1, 1, 3, 3, 3))
    case("replication_pad2d", "overload", lambda a: aten.replication_pad2d(a, [1, 2, 2, 1]), randn(1, 2, 4, 5))
    case("replication_pad3d", "overload", lambda a: aten.replication_pad3d(a, [1, 1, 1, 0, 0, 1]), randn(1, 1, 3, 3, 3))
    case("select_scatter", "overload", lambda a, b: aten.select_scatter(a, b, 1, -1), randn(3, 5), randn(3))
    case("squeeze", "dim_overload", lambda a: aten.squeeze.dim(a, 1), randn(2, 1, 3))
    case("var", "dim_overload", lambda a: aten.var.dim(a, [1], True, False), x)
    case("embedding_bag", "core_overload", lambda w, i, o: aten._embedding_bag(w, i, o, False, 1)[0], randn(10, 3), torch.tensor([1, 2, 4, 5, 4, 3]), torch.tensor([0, 2, 2]))
    case("batch_norm", "legit_running_stats", None, randn(4, 6, 3), module=LegitBatchNorm())


def sort_cases():
    x = randn(3, 6)
    case("sort", "last", lambda a: torch.sort(a), x)
    case("sort", "dim0_descending", lambda a: torch.sort(a, 0, descending=True), x)
    case("sort", "ties_nan", lambda a: torch.sort(a, stable=True), torch.tensor([2.0, float("nan"), 1.0, 2.0, -1.0, 1.0]))
    case("sort", "int", lambda a: torch.sort(a, stable=True), randint(9))
    case("topk", "largest", lambda a: torch.topk(a, 3), x)
    case("topk", "smallest_dim0", lambda a: torch.topk(a, 2, dim=0, largest=False), x)
    case("topk", "vocabulary", lambda a: torch.topk(a, 5), randn(2, 20000))
    case("topk", "vocabulary_smallest_nan", lambda a: torch.topk(a, 4, largest=False), torch.cat([randn(3000), torch.tensor([float("nan")])]))


def recurrent_cases():
    case("lstm", "bidirectional", None, randn(7, 2, 5),
         module=torch.nn.LSTM(5, 6, bidirectional=True))
    case("gru", "batch_first_2layers", None, randn(2, 7, 5), module=torch.nn.GRU(5, 6, num_layers=2, batch_first=True))
    case("diff", "f32", lambda a: torch.diff(a, dim=1), randn(3, 6))
    case("diff", "prepend_n2", lambda a, p: torch.diff(a, n=2, prepend=p), randn(3, 6), randn(3, 2))


def spatial_cases():
    x = randn(2, 6)
    case("masked_scatter", "f32", lambda a, m, s: a.masked_scatter(m, s), x, mask(2, 6), randn(12))
    case("masked_scatter", "broadcast_mask", lambda a, m, s: a.masked_scatter(m, s), randn(3, 4), mask(4), randn(20))
    w = randn(10, 3)
    offsets = torch.tensor([0, 2, 2, 5])
    idx = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9])
    for mode in ["sum", "mean", "max"]:
        case("embedding_bag", mode, lambda i, o, mode=mode: F.embedding_bag(i, w, o, mode=mode), idx, offsets)
    case("embedding_bag", "per_sample_weights", lambda i, o, p: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=p), idx, offsets, randn(8))
    grid = rand(1, 4, 5, 2, low=-1.2, high=1.2)
    img = randn(1, 2, 6, 7)
    case("grid_sample", "bilinear_zeros", lambda a, g: F.grid_sample(a, g, align_corners=False), img, grid)
    case("grid_sample", "nearest_border_align", lambda a, g: F.grid_sample(a, g, mode="nearest", padding_mode="border", align_corners=True), img, grid)
    case("fold", "col2im", lambda a: F.fold(a, (5, 6), (2, 3), padding=1, stride=(1, 2)), randn(2, 3 * 6, 18))
    case("cdist", "p2", lambda a, b: torch.cdist(a, b), randn(2, 4, 3), randn(2, 5, 3))
    case("cdist", "p1", lambda a, b: torch.cdist(a, b, p=1.0), randn(4, 3), randn(6, 3))
    case("pdist", "p2", lambda a: F.pdist(a), randn(5, 3))


def empty_cases():
    """Size-0 dims in every family: the result is empty, or the identity of
    its reduction (torch accepts them everywhere)."""
    case("exp", "empty_rows", torch.exp, randn(0, 3))
    case("add", "empty_broadcast", torch.add, randn(0, 3), randn(3))
    case("mm", "empty_rows", torch.mm, randn(0, 5), randn(5, 3))
    case("mm", "empty_inner", torch.mm, randn(4, 0), randn(0, 3))
    case("linear", "empty_batch", None, randn(0, 5), module=torch.nn.Linear(5, 3))
    case("linear", "empty_inner", lambda x, w, b: F.linear(x, w, b), randn(4, 0), randn(3, 0), randn(3))
    case("bmm", "empty_inner", torch.bmm, randn(2, 3, 0), randn(2, 0, 4))
    case("matmul", "empty_batch", torch.matmul, randn(0, 3, 4), randn(4, 2))
    case("conv2d", "empty_batch", None, randn(0, 3, 8, 8), module=torch.nn.Conv2d(3, 4, 3))
    case("conv2d", "empty_batch_groups", None, randn(0, 4, 8, 8), module=torch.nn.Conv2d(4, 4, 3, groups=2))
    case("max_pool2d", "empty_batch", lambda a: F.max_pool2d(a, 2), randn(0, 2, 4, 4))
    case("sum", "empty_dim", lambda a: a.sum(1), randn(3, 0))
    case("sum", "empty_dim_keepdim", lambda a: a.sum(1, keepdim=True), randn(3, 0))
    case("prod", "empty_dim", lambda a: a.prod(1), randn(3, 0))
    case("mean", "empty_dim", lambda a: a.mean(0), randn(0, 3))
    # a pool over an empty window (NaN) and over a window of empty rows
    case("mean", "silu_then_empty_window", lambda a: F.silu(a).mean((2, 3)), randn(1, 4, 0, 7))
    case("sum", "silu_then_window_of_empty_rows", lambda a: F.silu(a).sum((2, 3)), randn(1, 4, 3, 0))
    case("any", "empty_dim", lambda a: a.any(1), mask(3, 0))
    case("all", "empty_dim", lambda a: a.all(1), mask(3, 0))
    case("var", "empty_dim", lambda a: a.var(1), randn(3, 0))
    case("logsumexp", "empty_dim", lambda a: torch.logsumexp(a, 1), randn(3, 0))
    case("norm", "empty_dim", lambda a: torch.linalg.vector_norm(a, dim=1), randn(3, 0))
    case("cumsum", "empty", lambda a: torch.cumsum(a, 1), randn(3, 0))
    case("softmax", "empty_rows", lambda a: F.softmax(a, -1), randn(0, 5))
    case("layer_norm", "empty_batch", lambda a: F.layer_norm(a, (4,)), randn(0, 4))
    case("cat", "empty_piece", lambda a, b: torch.cat([a, b], 0), randn(0, 3), randn(2, 3))
    # a legacy empty piece ([0], any dim): dropped, and the one piece left
    # read as the cat's result (graph::drop_empty_cat_pieces)
    case("cat", "legacy_empty_piece", lambda a, b: torch.cat([a, b], -2) * 2, randn(0), randn(2, 3, 4))
    case("cat", "partial_rotary", lambda x: torch.cat([x[..., :16] * 2, x[..., 16:]], -1), randn(2, 4, 3, 16))
    case("slice", "to_empty", lambda a: a[:, 5:] + 1, randn(3, 5))
    case("split", "empty_piece", lambda a: torch.split(a, [0, 3], 1), randn(2, 3))
    case("stack", "empty", lambda a, b: torch.stack([a, b]), randn(0, 2), randn(0, 2))
    case("constant_pad_nd", "empty", lambda a: F.pad(a, (1, 1)), randn(2, 0))
    case("expand", "to_empty", lambda a: a.expand(0, 3) + 1, randn(1, 3))
    case("index_select", "no_indices", lambda a, i: torch.index_select(a, 0, i), randn(4, 3), torch.zeros(0, dtype=torch.long))
    case("embedding", "no_indices", lambda i, w: F.embedding(i, w), torch.zeros(0, dtype=torch.long), randn(5, 3))
    case("gather", "empty_index", lambda a, i: torch.gather(a, 1, i), randn(4, 3), torch.zeros(4, 0, dtype=torch.long))
    case("scaled_dot_product_attention", "no_queries", F.scaled_dot_product_attention, randn(1, 2, 0, 4), randn(1, 2, 3, 4), randn(1, 2, 3, 4))
    case("arange", "empty", lambda a: torch.arange(0) + a, randn(0))


def zero_d_cases():
    """0-d sources, indices and results."""
    case("index_select", "0d_source", lambda a, i: torch.index_select(a, 0, i), randn(()), torch.tensor([0]))
    case("index_select", "0d_index", lambda a, i: torch.index_select(a, 1, i), randn(3, 4), torch.tensor(2))
    case("gather", "0d_source", lambda a, i: torch.gather(a, 0, i), randn(()), torch.tensor([0]))
    case("scatter_add", "0d", lambda a, i, s: torch.scatter_add(a, 0, i, s), randn(()), torch.tensor(0), randn(()))
    case("sum", "0d", lambda a: (a * 2).sum(), randn(()))


class SliceFill(torch.nn.Module):
    """Swin's shifted-window mask: writes into slices of a new tensor."""

    def forward(self, x):
        m = x.new_zeros(6, 6)
        count = 0
        for h in (slice(0, 2), slice(2, 4), slice(4, None)):
            for w in (slice(0, 3), slice(3, None)):
                m[h, w] = count
                count += 1
        return x + m


class KVCache(torch.nn.Module):
    """A buffer written through a slice, as a key/value cache is."""

    def __init__(self):
        super().__init__()
        self.register_buffer("k", torch.zeros(2, 8, 4))

    def forward(self, x):
        self.k[:, 2:4].copy_(x)
        return self.k.sum(1)


class PaddedMHA(torch.nn.Module):
    """nn.MultiheadAttention with key_padding_mask and need_weights: its
    default export keeps masked_fill_."""

    def __init__(self):
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x, m):
        return self.mha(x, x, x, key_padding_mask=m, need_weights=True)


def view_chain(x):
    y = x.clone()
    a = y[1:3]
    b = a.t()
    b[0].mul_(10)
    c = y.view(-1)
    return y, a * 1, c + 0


def read_old_view(x):
    y = x.clone()
    v = y[0]
    y.add_(1)
    return v * 2


def unbind_write(x):
    y = x.clone()
    a, b = y.unbind(0)
    b.zero_()
    return y


def split_write(x):
    y = x.clone()
    p, q = torch.split(y, [2, 3], dim=1)
    q.fill_(7)
    p.add_(1)
    return y


def transpose_write(x):
    y = x.clone()
    y.transpose(0, 1)[2].fill_(3)
    return y


def index_put_(x, i, v):
    y = x.clone()
    y[i] = v
    return y


def in_place_cases():
    """Writes through views and in-place ops of the default export."""
    case("fill", "slice_writes_shifted_window_mask", None, randn(6, 6), module=SliceFill())
    case("mul", "write_through_two_views", view_chain, randn(4, 3))
    case("add", "view_read_after_base_write", read_old_view, randn(3, 4))
    case("zero", "unbind_write", unbind_write, randn(2, 3))
    case("fill", "split_write", split_write, randn(2, 5))
    case("fill", "transpose_write", transpose_write, randn(4, 3))
    case("index_put", "setitem", index_put_, randn(5, 3), torch.tensor([0, 3]), randn(2, 3))
    case("masked_fill", "in_place", lambda a, m: (a * 2).masked_fill_(m, -1.0), randn(3, 4), mask(3, 4))
    case("copy", "buffer_slice_cache", None, randn(2, 2, 4), module=KVCache())
    case("masked_fill", "mha_key_padding_mask", None, randn(2, 5, 8), torch.tensor([[False] * 4 + [True], [False] * 5]),
         module=PaddedMHA())


class SwinBlock(torch.nn.Module):
    """torchvision's shifted-window block: roll, window partition/reverse,
    relative position bias gathered by a buffer of indices, masked window
    attention, LayerNorm over the last dim."""

    def __init__(self):
        super().__init__()
        from torchvision.models.swin_transformer import SwinTransformerBlock
        self.block = SwinTransformerBlock(16, 2, window_size=[4, 4], shift_size=[2, 2], stochastic_depth_prob=0.0)
        with torch.no_grad():
            self.block.attn.relative_position_bias_table.normal_(0, 0.5, generator=G)

    def forward(self, x):
        return self.block(x)


class Cond(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(6, 6), torch.nn.Linear(6, 6)

    def forward(self, x):
        def inner(y):
            return torch.cond(y.mean() > 0.1, lambda z: self.a(z).relu(), lambda z: self.b(z) * 2, (y,))

        def other(y):
            return torch.softmax(self.a(y) @ self.b(y).t(), -1) @ y

        return torch.cond(x.sum() > 0, inner, other, (x,))


class While(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(8, 8, generator=G) * 0.3)

    def forward(self, x, n):
        from torch._higher_order_ops.while_loop import while_loop
        return while_loop(lambda i, h: i < n, lambda i, h: (i + 1, torch.tanh(h @ self.w + h.sum())),
                          (torch.zeros((), dtype=torch.int64), x))


class Map(torch.nn.Module):
    def forward(self, xs, y):
        from torch._higher_order_ops.map import map as hmap
        return hmap(lambda x, y: x.sin() * y + x.sum(), xs, y)


def new_op_cases():
    case("pixel_shuffle", "r2", lambda a: F.pixel_shuffle(a, 2), randn(1, 8, 3, 4))
    case("pixel_unshuffle", "r2", lambda a: F.pixel_unshuffle(a, 2), randn(2, 2, 6, 4))
    case("var", "default_overload", lambda a: torch.ops.aten.var.default(a), randn(3, 4))
    case("var", "default_unbiased_false", lambda a: torch.ops.aten.var.default(a, False), randn(3, 4))
    case("std", "default_overload", lambda a: torch.ops.aten.std.default(a), randn(3, 4))
    case("pad", "circular2d", lambda a: F.pad(a, (1, 2, 2, 1), mode="circular"), randn(1, 2, 4, 5))
    case("pad", "circular1d", lambda a: F.pad(a, (2, 3), mode="circular"), randn(1, 2, 5))
    case("pad", "circular_negative", lambda a: F.pad(a, (-1, 1, -2, 1), mode="circular"), randn(1, 3, 4, 4))
    case("conv1d", "unbatched", None, randn(3, 10), module=torch.nn.Conv1d(3, 4, 3, padding=1))
    case("conv2d", "unbatched", None, randn(3, 6, 7), module=torch.nn.Conv2d(3, 4, 3))
    case("conv3d", "unbatched", None, randn(2, 5, 5, 5), module=torch.nn.Conv3d(2, 3, 3))
    case("conv_transpose1d", "unbatched", None, randn(3, 6), module=torch.nn.ConvTranspose1d(3, 2, 3, stride=2))
    case("conv_transpose2d", "unbatched", None, randn(3, 4, 5), module=torch.nn.ConvTranspose2d(3, 2, 3, stride=2))
    case("adaptive_max_pool2d", "indices", lambda a: F.adaptive_max_pool2d(a, (3, 2), return_indices=True), randn(1, 2, 7, 5))
    case("adaptive_max_pool1d", "indices", lambda a: F.adaptive_max_pool1d(a, 3, return_indices=True), randn(1, 2, 7))
    case("max_pool1d", "indices", lambda a: F.max_pool1d(a, 3, 2, 1, return_indices=True), randn(2, 3, 11))
    case("diagonal", "non_square_offset", lambda a: torch.diagonal(a, -1, 0, 1), randn(3, 5))
    case("diagonal", "linalg", lambda a: torch.linalg.diagonal(a, offset=1), randn(2, 4, 5))
    case("div", "alias_divide", lambda a, b: torch.divide(a, b), randn(3), randn(3))
    case("clamp", "alias_clip", lambda a: torch.clip(a, -0.5, 0.5), randn(5))
    case("addmm", "beta0_ignores_nan", lambda c, a, b: torch.addmm(c, a, b, beta=0.0), torch.full((2, 3), float("nan")),
         randn(2, 4), randn(4, 3))
    case("cond", "nested_true", None, rand(5, 6), module=Cond())
    case("cond", "nested_false", None, -rand(5, 6), module=Cond())
    case("while_loop", "matmul_body", None, randn(4, 8), torch.tensor(3), module=While())
    case("map", "body", None, randn(3, 4), randn(4), module=Map())
    case("swin_block", "shifted_window", None, randn(1, 8, 8, 16), module=SwinBlock())


def programs():
    for group in [spatial_cases, overload_cases, sort_cases, recurrent_cases, unary_cases, binary_cases, select_cases, reduction_cases, linalg_cases, conv_cases,
                  pool_cases, norm_cases, attention_cases, shape_cases, creation_cases, index_cases,
                  empty_cases, zero_d_cases, in_place_cases, new_op_cases]:
        group()
    return CASES


def flatten(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat = []
    for o in outputs:
        flat.extend(flatten(o))
    return flat


def export(out_dir):
    included, excluded = core_ops.split_inference(core_ops.core_ops())
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "core_ops.json"), "w") as f:
        json.dump({"torch": torch.__version__, "included": included, "excluded": excluded}, f, indent=1)
    seen = {}
    for op, variant, module, inputs, tol in programs():
        name = re.sub(r"[^A-Za-z0-9_]", "_", f"{op}__{variant}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name += f"_{seen[name]}"
        module = module.eval()
        # the reference runs on a copy: the exported program shares the
        # module's buffers, which a program that mutates them would change
        reference = copy.deepcopy(module)
        ep = torch.export.export(module, tuple(inputs))
        with torch.no_grad():
            outputs = flatten(reference(*inputs))
        meta = {"op": op, "variant": variant, "tolerance": tol}
        fixture_io.save_both_forms(os.path.join(out_dir, "ops", name), ep, inputs, outputs, meta)


if __name__ == "__main__":
    export(sys.argv[1])
