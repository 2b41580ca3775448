// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// max pooling at stride 1: a windowed reduction from -inf; NaN propagates
// through maximumf.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]}
// CHECK: arith.maximumf
// strided: the input split into its 2x2 phases (4x4 each), each phase
// padded with -inf by the window's padding in whole phase rows (1 low, 0
// high: no window reads past the input); each of the 9 taps' windows is a
// contiguous slice of one phase (tap (1, 2) reads input (2i, 2j + 1):
// phase (0, 1) from padded row (1, 1)), and the maximum is elementwise
// over the 9. The input is copied once (into the phases), not padded first.
// CHECK-NOT: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 2, 4, 2, 4, 2]
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x2x2x4x4xf32>)
// CHECK: arith.constant 0xFF800000 : f32
// CHECK-NEXT: tensor.pad {{.*}} low[0, 0, 0, 0, 1, 1] high[0, 0, 0, 0, 0, 0]
// CHECK: } : tensor<1x2x2x2x4x4xf32> to tensor<1x2x2x2x5x5xf32>
// CHECK-NEXT: tensor.extract_slice %{{.*}}[0, 0, 1, 1, 0, 0] [1, 2, 1, 1, 4, 4]
// CHECK-COUNT-4: tensor.extract_slice
// CHECK-NEXT: tensor.extract_slice %{{.*}}[0, 0, 0, 1, 1, 1] [1, 2, 1, 1, 4, 4]
// CHECK: linalg.generic {indexing_maps = [#[[ID:map[0-9]*]], #[[ID]], #[[ID]], #[[ID]], #[[ID]], #[[ID]], #[[ID]], #[[ID]], #[[ID]], #[[ID]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-COUNT-8: arith.maximumf
// CHECK-NOT: arith.maximumf
// CHECK: linalg.yield
// with indices: two results, the flat index h * W + w of the first maximum (or a NaN)
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 0, 0]
// CHECK: linalg.generic {{.*}} outs({{.*}}, {{.*}} : tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>)
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpf uno
// CHECK: arith.select
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x2x8x8xf32>) -> (tensor<1x2x7x7xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>) {
    %w = "aten.max_pool2d"(%x) {operand_names = ["self"], kernel_size = array<i64: 2, 2>, stride = array<i64: 1, 1>} : (tensor<1x2x8x8xf32>) -> tensor<1x2x7x7xf32>
    %y = "aten.max_pool2d"(%x) {operand_names = ["self"], kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>} : (tensor<1x2x8x8xf32>) -> tensor<1x2x4x4xf32>
    %z, %i = "aten.max_pool2d_with_indices"(%x) {operand_names = ["self"], kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>} : (tensor<1x2x8x8xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>)
    return %w, %y, %z, %i : tensor<1x2x7x7xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>
  }
}
