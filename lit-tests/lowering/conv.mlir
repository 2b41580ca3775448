// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// conv2d is im2col + matmul: gather windows into [C*KH*KW, N*OH*OW], view
// the weight as [F, C*KH*KW], start from the broadcast bias. For one image
// the windows are copied one tap at a time: with stride 2 the input is
// split into its 2 x 2 phases (4 x 4 each), each padded with zeros by the
// convolution's padding in whole phase rows (1 before, none after), so the
// input is copied once; tap (kh, kw) reads input (2i + kh - 1, 2j + kw - 1),
// the contiguous slice of phase ((kh - 1) mod 2, (kw - 1) mod 2) from
// ((kh - 1) div 2 + 1, (kw - 1) div 2 + 1), inserted at col[:, kh, kw].
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x3x4x2x4x2xf32>) outs({{.*}} : tensor<1x3x2x2x4x4xf32>)
// CHECK: tensor.pad {{.*}} low[0, 0, 0, 0, 1, 1] high[0, 0, 0, 0, 0, 0]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 1, 1, 0, 0] [1, 3, 1, 1, 4, 4]
// CHECK-COUNT-4: tensor.extract_slice
// CHECK-NEXT: tensor.extract_slice {{.*}}[0, 0, 0, 1, 1, 1] [1, 3, 1, 1, 4, 4]
// CHECK: tensor.insert_slice {{.*}}[0, 0, 0, 0, 0, 0] [3, 1, 1, 1, 4, 4]
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
