// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// The depthwise sum of windows is a stencil: its tile holds 8 vectors'
// worth of outputs (here the whole 10 x 10 image of one channel), so many
// FMA chains run at once; each tap is one vector read of its window and a
// broadcast weight. Rows of 10 are widened to full vectors of 16 lanes
// with a mask (one masked load per row, not a load of 8 and one of 2).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c8 step %c1 {{.*}} -> (tensor<1x8x10x10xf32>)
// CHECK: %[[ROWS:.*]] = vector.constant_mask [10, 10] : vector<10x16xi1>
// CHECK: vector.transfer_read {{.*}}, %[[ROWS]] {{.*}} : tensor<1x1x10x10xf32>, vector<10x16xf32>
// CHECK-COUNT-9: math.fma {{.*}} : vector<10x16xf32>
//
// The stride-2 phase split (of the input itself, 5 x 5 phases, padded
// after) reads pairs of columns contiguously and deinterleaves them with
// one shuffle (even columns, then odd).
// CHECK: vector.transfer_read {{.*}} : tensor<1x1x1x1x5x2xf32>, vector<5x2xf32>
// CHECK: vector.shuffle {{.*}} [0, 2, 4, 6, 8, 1, 3, 5, 7, 9] : vector<10xf32>, vector<10xf32>
// Its rows of 5 are widened to 8 lanes.
// CHECK: -> (tensor<1x8x5x5xf32>)
// CHECK-COUNT-9: math.fma {{.*}} : vector<5x8xf32>

module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x8x10x10xf32>, %w: tensor<8x1x3x3xf32>, %b: tensor<8xf32>) -> (tensor<1x8x10x10xf32>, tensor<1x8x5x5xf32>) {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, groups = 8 : i64} : (tensor<1x8x10x10xf32>, tensor<8x1x3x3xf32>, tensor<8xf32>) -> tensor<1x8x10x10xf32>
    %z = "aten.conv2d"(%x, %w) {operand_names = ["input", "weight"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, groups = 8 : i64} : (tensor<1x8x10x10xf32>, tensor<8x1x3x3xf32>) -> tensor<1x8x5x5xf32>
    return %y, %z : tensor<1x8x10x10xf32>, tensor<1x8x5x5xf32>
  }
}
