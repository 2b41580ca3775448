// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// conv2d is im2col + matmul: pad, gather windows into [C*KH*KW, N*OH*OW],
// view the weight as [F, C*KH*KW], start from the broadcast bias. For one
// image the windows are copied one tap at a time: with stride 2 the padded
// input is split into its 2 x 2 phases, and tap (kh, kw) is the contiguous
// slice of phase (kh mod 2, kw mod 2) from (kh div 2, kw div 2), inserted
// at col[:, kh, kw].
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x3x5x2x5x2xf32>) outs({{.*}} : tensor<1x3x2x2x5x5xf32>)
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0, 0, 0] [1, 3, 1, 1, 4, 4]
// CHECK: tensor.insert_slice {{.*}}[0, 0, 0, 0, 0, 0] [3, 1, 1, 1, 4, 4]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 1, 0, 0, 1] [1, 3, 1, 1, 4, 4]
// CHECK: tensor.insert_slice {{.*}}[0, 1, 2, 0, 0, 0] [3, 1, 1, 1, 4, 4]
// CHECK: tensor.collapse_shape {{.*}} {{\[}}[0, 1, 2], [3, 4, 5]] : tensor<3x3x3x1x4x4xf32> into tensor<27x16xf32>
// CHECK: linalg.matmul ins({{.*}} : tensor<4x27xf32>, tensor<27x16xf32>) outs({{.*}} : tensor<4x16xf32>)
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 4, 4, 4]
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) -> tensor<1x4x4x4xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
    return %y : tensor<1x4x4x4xf32>
  }
}
