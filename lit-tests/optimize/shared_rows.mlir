// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A 1x1 convolution over 13x13 positions: 160 columns on panels, the last
// 9 as dot products (`linear::last_columns`), rows of the weight times the
// 9 columns transposed, a reduction over the 64 channels. The 9 columns of
// a weight row are reduced together, one vector of partial sums each (9
// accumulators), so each step loads the row's vector once and broadcasts
// it to the 9, instead of one column at a time reading the row again;
// then once across the lanes of each.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c96 step %c1 {{.*}} -> (tensor<96x9xf32>)
// CHECK: scf.for {{.*}} to %c64 step %c16 {{.*}} -> (vector<9x16xf32>)
// CHECK: vector.transfer_read {{.*}} vector<16xf32>
// CHECK: vector.transfer_read {{.*}} vector<9x16xf32>
// CHECK: vector.broadcast {{.*}} : vector<16xf32> to vector<9x16xf32>
// CHECK: arith.mulf {{.*}} : vector<9x16xf32>
// CHECK: arith.addf {{.*}} : vector<9x16xf32>
// CHECK-COUNT-9: vector.reduction <add>, {{.*}} : vector<16xf32> into f32
// CHECK-NOT: vector.reduction
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x64x13x13xf32>, %w: tensor<96x64x1x1xf32>, %b: tensor<96xf32>) -> tensor<1x96x13x13xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x64x13x13xf32>, tensor<96x64x1x1xf32>, tensor<96xf32>) -> tensor<1x96x13x13xf32>
    return %y : tensor<1x96x13x13xf32>
  }
}
