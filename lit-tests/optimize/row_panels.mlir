// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A 1x1 convolution of a 7x7 image (49 columns) by a 64 x 40 weight reads
// the weight as row panels [4, 40, 16] (folded into the stored layout when
// the weight is a parameter; here an argument, so a copy transposes it):
// each step of K broadcasts the panel's 16 rows from one contiguous
// 64-byte chunk.
// CHECK-LABEL: func.func @aotc_t_forward
// 48 columns in 16 x 16 register tiles, the accumulators the bias of each
// row: one FMA per row and step of K
// CHECK: scf.for {{.*}} to %c48 step %c16
// CHECK: scf.for {{.*}} to %c40 step %c1 iter_args({{.*}}) -> (vector<16x16xf32>)
// CHECK-COUNT-16: vector.fma {{.*}} : vector<16xf32>
// CHECK: scf.yield {{.*}} : vector<16x16xf32>
// the 49th column: the panel's 16 rows are the vector, one FMA per step of K
// CHECK: scf.for {{.*}} to %c40 step %c1 iter_args({{.*}}) -> (vector<16xf32>)
// CHECK: vector.fma {{.*}} : vector<16xf32>
// CHECK-NEXT: scf.yield {{.*}} : vector<16xf32>
// CHECK-NOT: vector.fma
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x40x7x7xf32>, %w: tensor<64x40x1x1xf32>, %b: tensor<64xf32>) -> tensor<1x64x7x7xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x40x7x7xf32>, tensor<64x40x1x1xf32>, tensor<64xf32>) -> tensor<1x64x7x7xf32>
    return %y : tensor<1x64x7x7xf32>
  }
}
