// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize | aotc-opt - --pass bufferize | FileCheck %s

// A 1x1 convolution with bias over 196 = 192 + 4 positions: the product of
// the first 192 columns and the dot products of the last 4 each start from
// a bias broadcast of their own. The product's register tiles load the bias
// themselves (no kernel fills the whole accumulator first), and both parts
// write their slices of one arena buffer in place (`eliminate-empty-tensors`
// before bufferization): nothing is copied.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK-SAME: %[[BIAS:[a-z0-9]+]]: memref<16xf32>
// CHECK-SAME: %[[ARENA:[a-z0-9]+]]: memref<?xi8>
// CHECK-NOT: memref.copy
// CHECK-NOT: linalg.copy
// CHECK: %[[RESULT:.*]] = memref.view %[[ARENA]]{{.*}} to memref<16x196xf32>
// CHECK: %[[MAIN:.*]] = memref.subview %[[RESULT]][0, 0] [16, 192]
// CHECK: scf.for
// CHECK: %[[TILE:.*]] = memref.subview %[[MAIN]]
// CHECK: scf.for
// CHECK: %[[TILE_BIAS:.*]] = memref.subview %[[BIAS]]
// CHECK: vector.transfer_read %[[TILE_BIAS]]
// CHECK: scf.for {{.*}} -> (vector<4x16xf32>)
// CHECK: vector.fma
// CHECK: %[[REST:.*]] = memref.subview %[[RESULT]][0, 192] [16, 4]
// CHECK: memref.subview %[[BIAS]]
// CHECK: vector.transfer_write {{.*}} memref<8x4xf32, strided<[196, 1], offset: ?>>
// CHECK: memref.subview %[[REST]]
// CHECK: arith.mulf
// CHECK-NOT: memref.copy
// CHECK-NOT: linalg.copy
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x8x14x14xf32>, %w: tensor<16x8x1x1xf32>, %b: tensor<16xf32>) -> tensor<1x16x14x14xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x8x14x14xf32>, tensor<16x8x1x1xf32>, tensor<16xf32>) -> tensor<1x16x14x14xf32>
    // the product's result is read twice, so it lives in the arena
    %r = "aten.relu"(%y) {operand_names = ["self"]} : (tensor<1x16x14x14xf32>) -> tensor<1x16x14x14xf32>
    %s = "aten.mul_tensor"(%r, %y) {operand_names = ["self", "other"]} : (tensor<1x16x14x14xf32>, tensor<1x16x14x14xf32>) -> tensor<1x16x14x14xf32>
    return %s : tensor<1x16x14x14xf32>
  }
}
