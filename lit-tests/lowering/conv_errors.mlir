// RUN: not aotc-opt %s --pass lower-aten 2>&1 | FileCheck %s

// Convolutions that cannot be lowered are named with the node's location.
// CHECK: error: loc("conv_g"("model.py":12:0)): convolution with groups=3: 4 input and 4 output channels
// CHECK: error: loc("conv_same"("model.py":13:0)): aten.conv2d_padding: padding='same' with an even kernel is not supported
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3x3xf32>, %w2: tensor<4x4x2x2xf32>) -> (tensor<1x4x6x6xf32>, tensor<1x4x8x8xf32>) {
    %y = "aten.conv2d"(%x, %w) {operand_names = ["input", "weight"], groups = 3 : i64} : (tensor<1x4x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32> loc("conv_g"("model.py":12:0))
    %z = "aten.conv2d_padding"(%x, %w2) {operand_names = ["input", "weight"], padding = "same"} : (tensor<1x4x8x8xf32>, tensor<4x4x2x2xf32>) -> tensor<1x4x8x8xf32> loc("conv_same"("model.py":13:0))
    return %y, %z : tensor<1x4x6x6xf32>, tensor<1x4x8x8xf32>
  }
}
