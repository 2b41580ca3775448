// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// Global adaptive pooling: the pooled dims as one contiguous dim, summed by
// a plain reduction over it, then divided by the window (48 elements).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 3, 48]
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.*}} : tensor<1x3x48xf32>)
// CHECK: arith.addf
// CHECK: arith.constant 4.800000e+01 : f32
// CHECK: arith.divf
// Windows that tile the input (8x6 -> 4x2: 2x3 each): the input split into
// [.., O1, W1, O2, W2], the window dims reduced; no window is gathered.
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 3, 4, 2, 2, 3]
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel", "reduction"]} ins(%{{.*}} : tensor<1x3x4x2x2x3xf32>)
// CHECK: arith.maximumf
// Uneven windows (8x6 -> 3x4) keep the masked windows of the largest size.
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<4x2xi1>) outs(%{{.*}} : tensor<1x3x3x4xf32>)
// CHECK: linalg.index
// CHECK: arith.select
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x3x8x6xf32>) -> (tensor<1x3x1x1xf32>, tensor<1x3x4x2xf32>, tensor<1x3x3x4xf32>) {
    %g = "aten.adaptive_avg_pool2d"(%x) {operand_names = ["self"]} : (tensor<1x3x8x6xf32>) -> tensor<1x3x1x1xf32>
    %m, %i = "aten.adaptive_max_pool2d"(%x) {operand_names = ["self"]} : (tensor<1x3x8x6xf32>) -> (tensor<1x3x4x2xf32>, tensor<1x3x4x2xi64>)
    %u = "aten.adaptive_avg_pool2d"(%x) {operand_names = ["self"]} : (tensor<1x3x8x6xf32>) -> tensor<1x3x3x4xf32>
    return %g, %m, %u : tensor<1x3x1x1xf32>, tensor<1x3x4x2xf32>, tensor<1x3x3x4xf32>
  }
}
