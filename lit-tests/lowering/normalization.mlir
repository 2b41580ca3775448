// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// native_layer_norm: mean and variance over the last dim, rsqrt(var + eps),
// then (x - mean) * rstd * weight + bias; mean and rstd are results too.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: arith.divf
// CHECK: math.rsqrt
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}, #[[W:.*]], #[[W]], #{{.*}}]
// CHECK: arith.subf
// CHECK: arith.mulf
// CHECK: arith.addf
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<2x3x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>) -> (tensor<2x3x8xf32>, tensor<2x3x1xf32>, tensor<2x3x1xf32>) {
    %o:3 = "aten.native_layer_norm"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], normalized_shape = array<i64: 8>, eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<2x3x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<2x3x8xf32>, tensor<2x3x1xf32>, tensor<2x3x1xf32>)
    return %o#0, %o#1, %o#2 : tensor<2x3x8xf32>, tensor<2x3x1xf32>, tensor<2x3x1xf32>
  }
}
