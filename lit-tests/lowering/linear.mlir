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
// 32 output features are two whole panels of 16: the weight [32, 32] is
// read as packed panels [2, K = 32, 16], out[m, j, p] += x[m, k] * W^T panel j
// CHECK: %[[SPLIT:.*]] = tensor.expand_shape %{{.*}} {{\[}}[0, 1], [2]] output_shape [2, 16, 32] : tensor<32x32xf32> into tensor<2x16x32xf32>
// CHECK: %[[PANELS:.*]] = linalg.transpose ins(%[[SPLIT]] : tensor<2x16x32xf32>) outs({{.*}} : tensor<2x32x16xf32>) permutation = [0, 2, 1]
// The bias is the product's init in the panels' shape (bias [32] as
// [2, 16] broadcast over [2, 2, 16]), which the micro-kernel computes in
// its registers.
// CHECK: %[[BIAS:.*]] = tensor.expand_shape %{{.*}} {{\[}}[0, 1]] output_shape [2, 16] : tensor<32xf32> into tensor<2x16xf32>
// CHECK: %[[OUT:.*]] = linalg.generic {{.*}} ins(%[[BIAS]] : tensor<2x16xf32>) outs({{.*}} : tensor<2x2x16xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[A:.*]], #[[B:.*]], #[[C:.*]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%{{.*}}, %[[PANELS]] : tensor<2x32xf32>, tensor<2x32x16xf32>) outs(%[[OUT]] : tensor<2x2x16xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: tensor.collapse_shape {{.*}} : tensor<2x2x16xf32> into tensor<2x32xf32>
// mm by a [K, N] matrix: [32, 32] -> [32, 2, 16] -> panels [2, 32, 16]
// CHECK: tensor.expand_shape %{{.*}} {{\[}}[0], [1, 2]] output_shape [32, 2, 16] : tensor<32x32xf32> into tensor<32x2x16xf32>
// CHECK: linalg.transpose {{.*}} permutation = [1, 0, 2]
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// permute and view
// CHECK: linalg.transpose {{.*}} permutation = [1, 0]
// CHECK: tensor.collapse_shape
// CHECK: tensor.expand_shape {{.*}} output_shape [5, 4]
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<2x32xf32>, %w: tensor<10x32xf32>, %b: tensor<10xf32>, %m: tensor<32x10xf32>, %x1: tensor<1x32xf32>, %w32: tensor<32x32xf32>, %b32: tensor<32xf32>) -> (tensor<2x10xf32>, tensor<2x10xf32>, tensor<5x4xf32>, tensor<1x10xf32>, tensor<2x32xf32>, tensor<2x32xf32>) {
    %y = "aten.linear"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<2x32xf32>, tensor<10x32xf32>, tensor<10xf32>) -> tensor<2x10xf32>
    %z = "aten.addmm"(%b, %x, %m) {operand_names = ["self", "mat1", "mat2"], beta = 5.000000e-01 : f64, alpha = 2.000000e+00 : f64} : (tensor<10xf32>, tensor<2x32xf32>, tensor<32x10xf32>) -> tensor<2x10xf32>
    %r = "aten.linear"(%x1, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x32xf32>, tensor<10x32xf32>, tensor<10xf32>) -> tensor<1x10xf32>
    %q = "aten.linear"(%x, %w32, %b32) {operand_names = ["input", "weight", "bias"]} : (tensor<2x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<2x32xf32>
    %n = "aten.mm"(%x, %w32) {operand_names = ["self", "mat2"]} : (tensor<2x32xf32>, tensor<32x32xf32>) -> tensor<2x32xf32>
    %p = "aten.permute"(%y) {operand_names = ["self"], dims = array<i64: 1, 0>} : (tensor<2x10xf32>) -> tensor<10x2xf32>
    %v = "aten.view"(%p) {operand_names = ["self"], size = array<i64: 5, 4>} : (tensor<10x2xf32>) -> tensor<5x4xf32>
    return %y, %z, %v, %r, %q, %n : tensor<2x10xf32>, tensor<2x10xf32>, tensor<5x4xf32>, tensor<1x10xf32>, tensor<2x32xf32>, tensor<2x32xf32>
  }
}
