// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// softmax: max, exp(x - max), sum, multiply by 1/sum; reductions are "reduction"
// iterators. exp is a polynomial (fma) scaled by 2^n built from bits, not a
// libm call. The row statistics are read through a (d0, d1) -> (d0) map,
// never reshaped, so the chain tiles and fuses row by row.
// CHECK: #[[ROW:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: arith.maximumf
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[ROW]], #{{.*}}]
// CHECK: arith.subf
// exp(x - max) with x - max <= 0: only the lower clamp (-87.5, for -inf),
// r = x - n ln2 in one fma, a degree-5 polynomial (5 fma).
// CHECK-NOT: math.exp
// CHECK: arith.cmpf olt
// CHECK-NOT: arith.cmpf ogt
// CHECK-COUNT-7: math.fma
// CHECK-NOT: math.fma
// CHECK: arith.shli {{.*}} : i32
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: arith.addf
// One division per row (the reciprocal of the sum), then a multiply per element.
// CHECK: arith.divf
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[ROW]], #{{.*}}]
// CHECK-NOT: arith.divf
// CHECK: arith.mulf
// argmax keeps the first maximum and lets NaN win: two outputs, value and index
// CHECK: linalg.generic {{.*}}outs({{.*}} : tensor<4xf32>, tensor<4xi64>)
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpf uno
// CHECK: linalg.yield {{.*}} : f32, i64
// float16 sums accumulate in f32
// CHECK: arith.extf {{.*}} : f16 to f32
// CHECK: arith.truncf {{.*}} : f32 to f16
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<4x10xf32>, %h: tensor<4x33xf16>) -> (tensor<4x10xf32>, tensor<4xi64>, tensor<4xf16>) {
    %s = "aten.softmax"(%x) {operand_names = ["self"], dim = -1 : i64, half_to_float = false} : (tensor<4x10xf32>) -> tensor<4x10xf32>
    %a = "aten.argmax"(%x) {operand_names = ["self"], dim = 1 : i64, keepdim = false} : (tensor<4x10xf32>) -> tensor<4xi64>
    %m = "aten.sum_dim_intlist"(%h) {operand_names = ["self"], dim = array<i64: -1>} : (tensor<4x33xf16>) -> tensor<4xf16>
    return %s, %a, %m : tensor<4x10xf32>, tensor<4xi64>, tensor<4xf16>
  }
}
