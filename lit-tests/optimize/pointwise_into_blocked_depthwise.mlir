// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: FileCheck %s --check-prefix=LOWERED < %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// mobilenet_v2's expansion before a strided depthwise convolution: a 1x1
// convolution of 16 channels, a ReLU6, and the depthwise convolution's copy
// into the channel-blocked layout. The 1x1 convolution is one all-parallel
// generic summing its 16 channels (one FMA each), so elementwise fusion
// takes it and the clamp into that copy: the blocked input is computed
// where it is written, 16 channels to a vector, instead of a product
// writing [32, 168] and a pass reading it back.
// LOWERED-LABEL: func.func @aotc_t_forward
// LOWERED: linalg.generic
// LOWERED-COUNT-16: math.fma {{.*}} : f32
// LOWERED-NOT: math.fma
// LOWERED: arith.cmpf olt
// The same convolution read by the output as well stays a product.
// LOWERED: linalg.matmul ins({{.*}} : tensor<32x16xf32>, tensor<16x160xf32>)
//
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: -> (tensor<1x2x14x12x16xf32>)
// CHECK-COUNT-16: math.fma {{.*}} : vector<6x16xf32>
// CHECK-NEXT: arith.cmpf olt, {{.*}} : vector<6x16xf32>
// (the product: tiles two vectors wide)
// CHECK: vector.fma {{.*}} : vector<32xf32>
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x16x14x12xf32>, %w: tensor<32x16x1x1xf32>, %b: tensor<32xf32>, %wd: tensor<32x1x3x3xf32>, %w2: tensor<32x16x1x1xf32>) -> (tensor<1x32x7x6xf32>, tensor<1x32x7x6xf32>, tensor<1x32x14x12xf32>) {
    %p = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x16x14x12xf32>, tensor<32x16x1x1xf32>, tensor<32xf32>) -> tensor<1x32x14x12xf32>
    %a = "aten.hardtanh"(%p) {operand_names = ["self"], min_val = 0.0 : f64, max_val = 6.0 : f64} : (tensor<1x32x14x12xf32>) -> tensor<1x32x14x12xf32>
    %d = "aten.conv2d"(%a, %wd) {operand_names = ["input", "weight"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, groups = 32 : i64} : (tensor<1x32x14x12xf32>, tensor<32x1x3x3xf32>) -> tensor<1x32x7x6xf32>
    %p2 = "aten.conv2d"(%x, %w2) {operand_names = ["input", "weight"]} : (tensor<1x16x14x12xf32>, tensor<32x16x1x1xf32>) -> tensor<1x32x14x12xf32>
    %d2 = "aten.conv2d"(%p2, %wd) {operand_names = ["input", "weight"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, groups = 32 : i64} : (tensor<1x32x14x12xf32>, tensor<32x1x3x3xf32>) -> tensor<1x32x7x6xf32>
    return %d, %d2, %p2 : tensor<1x32x7x6xf32>, tensor<1x32x7x6xf32>, tensor<1x32x14x12xf32>
  }
}
