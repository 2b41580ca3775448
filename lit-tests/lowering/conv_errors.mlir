// RUN: not aotc-opt %s --pass lower-aten 2>&1 | FileCheck %s

// Unsupported variants are named with the node's location.
// CHECK: error: loc("conv_g"("model.py":12:0)): grouped convolution (groups=2) is not supported yet
// CHECK: loc("conv_t"("model.py":13:0)): transposed convolution is not supported yet
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3x3xf32>, %wt: tensor<4x4x3x3xf32>) -> (tensor<1x4x6x6xf32>, tensor<1x4x10x10xf32>) {
    %y = "aten.conv2d"(%x, %w) {operand_names = ["input", "weight"], groups = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32> loc("conv_g"("model.py":12:0))
    %z = "aten.convolution"(%x, %wt) {operand_names = ["input", "weight"], transposed = true} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>) -> tensor<1x4x10x10xf32> loc("conv_t"("model.py":13:0))
    return %y, %z : tensor<1x4x6x6xf32>, tensor<1x4x10x10xf32>
  }
}
