// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A 1x1 convolution of a 7x7 image (49 columns) by a 64 x 40 weight reads
// the weight as row panels [8, 40, 8] (folded into the stored layout when
// the weight is a parameter; here an argument, so a copy transposes it):
// each step of K broadcasts the panel's 8 rows from one contiguous
// 32-byte chunk.
// CHECK-LABEL: func.func @aotc_t_forward
// The 48 columns and the 49th are two products on the same panels, their
// block loops fused: each block of four panels (the 49th column's tile)
// is swept by the main product, then read again, from cache, for the last
// column. The fused loop is what the threads share.
// CHECK: scf.for {{.*}} to %c8 step %c4 iter_args({{.*}}) -> (tensor<8x8x3x16xf32>, tensor<8x1x8xf32>)
// 48 columns as three 16-column groups: the register tile is a panel's 8
// rows by all three (24 accumulators), so one sweep of K reads the panel
// once; the accumulators start as the bias of each row; one FMA per row,
// group and step of K
// CHECK: scf.for {{.*}} to %c4 step %c1 iter_args({{.*}}) -> (tensor<4x8x3x16xf32>)
// CHECK-NOT: scf.for {{.*}} step %c16
// CHECK: scf.for {{.*}} to %c40 step %c1 iter_args({{.*}}) -> (vector<8x3x16xf32>)
// CHECK-COUNT-24: vector.fma {{.*}} : vector<16xf32>
// CHECK-NOT: vector.fma
// CHECK: scf.yield {{.*}} : vector<8x3x16xf32>
// the 49th column: a panel's 8 rows are the vector, the block's four
// panels at once (four chains of one FMA per step of K, not one waiting
// on the last)
// CHECK: scf.for {{.*}} to %c40 step %c1 iter_args({{.*}}) -> (vector<4x8xf32>)
// CHECK-COUNT-4: vector.fma {{.*}} : vector<8xf32>
// CHECK-NOT: vector.fma
// CHECK: scf.yield {{.*}} : vector<4x8xf32>
// CHECK-NOT: vector.fma
// CHECK: scf.yield {{.*}} : tensor<8x8x3x16xf32>, tensor<8x1x8xf32>
// CHECK-NEXT: } {aotc.parallel}
// CHECK-NOT: vector.fma
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x40x7x7xf32>, %w: tensor<64x40x1x1xf32>, %b: tensor<64xf32>) -> tensor<1x64x7x7xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x40x7x7xf32>, tensor<64x40x1x1xf32>, tensor<64xf32>) -> tensor<1x64x7x7xf32>
    return %y : tensor<1x64x7x7xf32>
  }
}
