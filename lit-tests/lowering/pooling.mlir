// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// max pooling: a windowed reduction from -inf; NaN propagates through maximumf.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]}
// CHECK: arith.maximumf
// with indices: two results, the flat index h * W + w of the first maximum (or a NaN)
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 0, 0]
// CHECK: linalg.generic {{.*}} outs({{.*}}, {{.*}} : tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>)
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpf uno
// CHECK: arith.select
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x2x8x8xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>) {
    %y = "aten.max_pool2d"(%x) {operand_names = ["self"], kernel_size = array<i64: 2, 2>} : (tensor<1x2x8x8xf32>) -> tensor<1x2x4x4xf32>
    %z, %i = "aten.max_pool2d_with_indices"(%x) {operand_names = ["self"], kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>} : (tensor<1x2x8x8xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>)
    return %y, %z, %i : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>
  }
}
