// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A strided 2-d depthwise convolution on whole 16-channel blocks runs in a
// channel-blocked layout: the input [1, 32, 10, 10] is copied once into
// [1, 2, 10, 10, 16] and padded there; each tap's window is a strided slice
// (stride 2 along the rows and columns) of 16 contiguous channels; each
// tap's weights are a contiguous slice of the weight transposed to
// [1, 3, 3, 32] (folded into the stored layout at compile time); the
// result [1, 2, 5, 5, 16] goes back to [1, 32, 5, 5] through a transposing
// generic and one collapse of the channel blocks, so that elementwise
// fusion takes the transposition and a following ReLU6 into the taps (see
// optimize/depthwise_blocked_relu6.mlir).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 2, 16, 10, 10]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x2x16x10x10xf32>) outs({{.*}} : tensor<1x2x10x10x16xf32>)
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1, 0] high[0, 0, 1, 1, 0]
// CHECK: linalg.transpose ins({{.*}} : tensor<32x1x3x3xf32>) outs({{.*}} : tensor<1x3x3x32xf32>) permutation = [1, 2, 3, 0]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0, 0] [1, 2, 5, 5, 16] [1, 1, 2, 2, 1] : tensor<1x2x12x12x16xf32> to tensor<1x2x5x5x16xf32>
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0] [1, 1, 1, 32] [1, 1, 1, 1] : tensor<1x3x3x32xf32> to tensor<32xf32>
// CHECK: tensor.expand_shape {{.*}} output_shape [2, 16] : tensor<32xf32> into tensor<2x16xf32>
// CHECK: tensor.extract_slice {{.*}}[0, 0, 2, 2, 0] [1, 2, 5, 5, 16] [1, 1, 2, 2, 1]
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]
// CHECK-COUNT-9: math.fma
// CHECK-NOT: math.fma
// CHECK: linalg.yield
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x2x5x5x16xf32>) outs({{.*}} : tensor<1x2x16x5x5xf32>)
// CHECK: tensor.collapse_shape {{.*}} {{\[}}[0], [1, 2], [3], [4]] : tensor<1x2x16x5x5xf32> into tensor<1x32x5x5xf32>
//
// Stride 1 with rows of 10 keeps the plain layout (its taps fill 10 of 16
// lanes; the copies into and out of the layout would cost more).
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK-NOT: tensor<1x2x10x10x16xf32>
//
// Stride 1 with rows of 7 (mobilenet_v2's 7x7 stage) is blocked: in NCHW
// a row fills under half a vector. The windows are plain slices of the
// padded blocked copy.
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x2x16x7x7xf32>) outs({{.*}} : tensor<1x2x7x7x16xf32>)
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1, 0] high[0, 0, 1, 1, 0]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 2, 2, 0] [1, 2, 7, 7, 16] [1, 1, 1, 1, 1] : tensor<1x2x9x9x16xf32> to tensor<1x2x7x7x16xf32>
// CHECK-COUNT-9: math.fma
// CHECK-NOT: math.fma
// CHECK: tensor.collapse_shape {{.*}} : tensor<1x2x16x7x7xf32> into tensor<1x32x7x7xf32>
//
// A 7x7 kernel is blocked whatever its rows (here 20): its 49 taps would
// each be a misaligned row load in NCHW.
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x2x16x12x20xf32>) outs({{.*}} : tensor<1x2x12x20x16xf32>)
// CHECK: tensor.pad {{.*}} low[0, 0, 3, 3, 0] high[0, 0, 3, 3, 0]
// CHECK-COUNT-49: math.fma
// CHECK-NOT: math.fma
// CHECK: tensor.collapse_shape {{.*}} : tensor<1x2x16x12x20xf32> into tensor<1x32x12x20xf32>
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x32x10x10xf32>, %w: tensor<32x1x3x3xf32>, %b: tensor<32xf32>, %s: tensor<1x32x7x7xf32>, %l: tensor<1x32x12x20xf32>, %w7: tensor<32x1x7x7xf32>) -> (tensor<1x32x5x5xf32>, tensor<1x32x10x10xf32>, tensor<1x32x7x7xf32>, tensor<1x32x12x20xf32>) {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, groups = 32 : i64} : (tensor<1x32x10x10xf32>, tensor<32x1x3x3xf32>, tensor<32xf32>) -> tensor<1x32x5x5xf32>
    %z = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, groups = 32 : i64} : (tensor<1x32x10x10xf32>, tensor<32x1x3x3xf32>, tensor<32xf32>) -> tensor<1x32x10x10xf32>
    %v = "aten.conv2d"(%s, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, groups = 32 : i64} : (tensor<1x32x7x7xf32>, tensor<32x1x3x3xf32>, tensor<32xf32>) -> tensor<1x32x7x7xf32>
    %u = "aten.conv2d"(%l, %w7) {operand_names = ["input", "weight"], stride = array<i64: 1, 1>, padding = array<i64: 3, 3>, groups = 32 : i64} : (tensor<1x32x12x20xf32>, tensor<32x1x7x7xf32>) -> tensor<1x32x12x20xf32>
    return %y, %z, %v, %u : tensor<1x32x5x5xf32>, tensor<1x32x10x10xf32>, tensor<1x32x7x7xf32>, tensor<1x32x12x20xf32>
  }
}
