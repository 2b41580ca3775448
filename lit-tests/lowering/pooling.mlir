// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// max pooling at stride 1: a windowed reduction from -inf; NaN propagates
// through maximumf.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]}
// CHECK: arith.maximumf
// strided, separably: the maxima over each window's rows (slices of the
// input's rows, every second row), made straight into the stride phases of
// their columns (2 phases of 4 columns: a transposing copy of the row
// maxima, not of the input), then the maxima over the window's columns,
// each tap's a slice of one phase padded with -inf by the window's padding
// (1 column low). Output row 0's window reaches the padding row above the
// input: it is made apart from its 2 taps inside (input rows 0 and 1),
// rows 1..3 from all 3 (input rows 1, 2, 3 on, every second). The input is
// neither padded nor copied into phases.
// CHECK-NOT: tensor.pad
// CHECK: %[[PHASES:.*]] = tensor.empty() {{.*}} : tensor<1x2x1x2x4x4xf32>
// CHECK-NEXT: tensor.extract_slice %[[X:[0-9a-z_]+]][0, 0, 0, 0] [1, 2, 1, 8] [1, 1, 2, 1]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 1, 0] [1, 2, 1, 8] [1, 1, 2, 1]
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.maximumf
// CHECK-NEXT: linalg.yield
// CHECK: output_shape [1, 2, 1, 1, 4, 2]
// CHECK: %[[TOP:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x1x2x1x4xf32>)
// CHECK: %[[P1:.*]] = tensor.insert_slice %[[TOP]] into %[[PHASES]][0, 0, 0, 0, 0, 0] [1, 2, 1, 2, 1, 4]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 1, 0] [1, 2, 3, 8] [1, 1, 2, 1]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 2, 0] [1, 2, 3, 8] [1, 1, 2, 1]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 3, 0] [1, 2, 3, 8] [1, 1, 2, 1]
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0
// CHECK-COUNT-2: arith.maximumf
// CHECK-NEXT: linalg.yield
// CHECK: output_shape [1, 2, 3, 1, 4, 2]
// CHECK: %[[REST:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x1x2x3x4xf32>)
// CHECK: %[[ALL:.*]] = tensor.insert_slice %[[REST]] into %[[P1]][0, 0, 0, 0, 1, 0] [1, 2, 1, 2, 3, 4]
// column tap 0 reads input column 2j - 1: phase 1 from padded column 0;
// tap 1 phase 0 from column 1, tap 2 phase 1 from column 1
// CHECK: tensor.pad %[[ALL]] low[0, 0, 0, 0, 0, 1] high[0, 0, 0, 0, 0, 0]
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 0, 1, 0, 0] [1, 2, 1, 1, 4, 4]
// CHECK-NEXT: tensor.extract_slice %{{.*}}[0, 0, 0, 0, 0, 1] [1, 2, 1, 1, 4, 4]
// CHECK-NEXT: tensor.extract_slice %{{.*}}[0, 0, 0, 1, 0, 1] [1, 2, 1, 1, 4, 4]
// CHECK: linalg.generic {indexing_maps = [#[[ID:map[0-9]*]], #[[ID]], #[[ID]], #[[ID]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-NEXT: ^bb0
// CHECK-COUNT-2: arith.maximumf
// CHECK-NEXT: linalg.yield
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
