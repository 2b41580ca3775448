// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// Depthwise convolution (groups = channels) is a sum of shifted windows:
// one all-parallel generic whose inputs are the nine windows of the padded
// input and the nine per-channel weights, summed by an FMA chain starting
// from the bias. No reduction loop, no im2col.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0, 0, 0] [1, 8, 1, 1, 10, 10] [1, 1, 1, 1, 1, 1] {{.*}} to tensor<1x8x10x10xf32>
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0, 2, 2] [1, 8, 1, 1, 10, 10]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0] [8, 1, 1, 1] [1, 1, 1, 1] : tensor<8x1x3x3xf32> to tensor<8xf32>
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel"]
// CHECK-COUNT-9: math.fma
// CHECK-NOT: math.fma
// CHECK: linalg.yield
//
// With stride 2 the input (10 x 10) is split into its 2 x 2 phases, one
// transposing copy ([.., 5, 2, 5, 2] -> [.., 2, 2, 5, 5]), and each phase
// padded with zeros in whole phase rows (1 before, none after); each tap
// then reads a contiguous window of one phase: tap (1, 2) reads input
// (2i, 2j + 1), phase (0, 1) from (1, 1).
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 8, 5, 2, 5, 2]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x8x5x2x5x2xf32>) outs({{.*}} : tensor<1x8x2x2x5x5xf32>)
// CHECK: tensor.pad {{.*}} low[0, 0, 0, 0, 1, 1] high[0, 0, 0, 0, 0, 0]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 1, 1, 1] [1, 8, 1, 1, 5, 5] [1, 1, 1, 1, 1, 1] : tensor<1x8x2x2x6x6xf32> to tensor<1x8x5x5xf32>
// CHECK: linalg.generic
// CHECK-COUNT-9: math.fma
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x8x10x10xf32>, %w: tensor<8x1x3x3xf32>, %b: tensor<8xf32>) -> (tensor<1x8x10x10xf32>, tensor<1x8x5x5xf32>) {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, groups = 8 : i64} : (tensor<1x8x10x10xf32>, tensor<8x1x3x3xf32>, tensor<8xf32>) -> tensor<1x8x10x10xf32>
    %z = "aten.conv2d"(%x, %w) {operand_names = ["input", "weight"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, groups = 8 : i64} : (tensor<1x8x10x10xf32>, tensor<8x1x3x3xf32>) -> tensor<1x8x5x5xf32>
    return %y, %z : tensor<1x8x10x10xf32>, tensor<1x8x5x5xf32>
  }
}
