// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// linear: x @ W^T + b, as a matmul that starts from the broadcast bias.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.transpose ins({{.*}} : tensor<10x32xf32>) outs({{.*}} : tensor<32x10xf32>) permutation = [1, 0]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<10xf32>) outs({{.*}} : tensor<2x10xf32>)
// CHECK: linalg.matmul ins({{.*}} : tensor<2x32xf32>, tensor<32x10xf32>) outs({{.*}} : tensor<2x10xf32>)
// addmm with beta/alpha scales the bias and the product
// CHECK: linalg.matmul
// CHECK: arith.mulf
// CHECK: arith.addf
// linear of one row: a reduction along the weight's rows (no transpose)
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}], iterator_types = ["parallel", "reduction"]} ins({{.*}} : tensor<1x32xf32>, tensor<10x32xf32>) outs({{.*}} : tensor<10xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// permute and view
// CHECK: linalg.transpose {{.*}} permutation = [1, 0]
// CHECK: tensor.collapse_shape
// CHECK: tensor.expand_shape {{.*}} output_shape [5, 4]
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<2x32xf32>, %w: tensor<10x32xf32>, %b: tensor<10xf32>, %m: tensor<32x10xf32>, %x1: tensor<1x32xf32>) -> (tensor<2x10xf32>, tensor<2x10xf32>, tensor<5x4xf32>, tensor<1x10xf32>) {
    %y = "aten.linear"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<2x32xf32>, tensor<10x32xf32>, tensor<10xf32>) -> tensor<2x10xf32>
    %z = "aten.addmm"(%b, %x, %m) {operand_names = ["self", "mat1", "mat2"], beta = 5.000000e-01 : f64, alpha = 2.000000e+00 : f64} : (tensor<10xf32>, tensor<2x32xf32>, tensor<32x10xf32>) -> tensor<2x10xf32>
    %r = "aten.linear"(%x1, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x32xf32>, tensor<10x32xf32>, tensor<10xf32>) -> tensor<1x10xf32>
    %p = "aten.permute"(%y) {operand_names = ["self"], dims = array<i64: 1, 0>} : (tensor<2x10xf32>) -> tensor<10x2xf32>
    %v = "aten.view"(%p) {operand_names = ["self"], size = array<i64: 5, 4>} : (tensor<10x2xf32>) -> tensor<5x4xf32>
    return %y, %z, %v, %r : tensor<2x10xf32>, tensor<2x10xf32>, tensor<5x4xf32>, tensor<1x10xf32>
  }
}
