// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A strided depthwise convolution in the channel-blocked layout followed by
// a ReLU6 (mobilenet_v2's): elementwise fusion takes the transposition back
// to [N, C, OH, OW] and the clamp into the loop of the taps, so the result
// is written once, in its final layout and clamped (it was three passes:
// taps, transposition, clamp). Each tap's window is transposed in
// registers (16 channels x the row) before its FMA.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: -> (tensor<1x2x16x5x5xf32>)
// CHECK-COUNT-9: math.fma {{.*}} : vector<16x5xf32>
// CHECK-NEXT: arith.cmpf olt, {{.*}} : vector<16x5xf32>
// CHECK-NEXT: arith.select
// CHECK-NEXT: arith.cmpf ogt, {{.*}} : vector<16x5xf32>
// CHECK-NEXT: arith.select
// CHECK-NOT: arith.cmpf
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x32x10x10xf32>, %w: tensor<32x1x3x3xf32>, %b: tensor<32xf32>) -> tensor<1x32x5x5xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, groups = 32 : i64} : (tensor<1x32x10x10xf32>, tensor<32x1x3x3xf32>, tensor<32xf32>) -> tensor<1x32x5x5xf32>
    %r = "aten.hardtanh"(%y) {operand_names = ["self"], min_val = 0.0 : f64, max_val = 6.0 : f64} : (tensor<1x32x5x5xf32>) -> tensor<1x32x5x5xf32>
    return %r : tensor<1x32x5x5xf32>
  }
}
