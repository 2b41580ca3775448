// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A Winograd F(4x4, 3x3) convolution of 64 channels at 56x56: 36 products
// on row panels of U (4 panels of 16 filters by 64 channels: 16 KB) by 196
// tiles (12 groups of 16, and 4 apart). An element's tiles (50 KB) do not
// fit in L1 while its panels do, so the register tiles run the groups
// outside the panels: each group's 64 x 16 tiles stay in L1 while the four
// panels use them. The threads share groups and elements (the two outer
// loops, 12 x 36 pieces), groups outer: a thread's share is a band of
// tiles, the image's rows. The last 4 tiles are a loop nest of their own.
// CHECK-LABEL: func.func @aotc_w_forward
// CHECK: scf.for %[[GROUP:.*]] = %c0 to %c12 step %c1 iter_args({{.*}}) -> (tensor<36x4x16x12x16xf32>)
// CHECK: scf.for %[[ELEMENT:.*]] = %c0 to %c36 step %c1 iter_args({{.*}}) -> (tensor<36x4x16x1x16xf32>)
// CHECK-NEXT: scf.for %[[PANEL:.*]] = %c0 to %c4 step %c1 iter_args({{.*}}) -> (tensor<36x4x16x1x16xf32>)
// CHECK: scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args({{.*}}) -> (vector<16x16xf32>)
// CHECK-COUNT-16: vector.fma {{.*}} : vector<16xf32>
// CHECK: } {aotc.stream}
// CHECK: tensor.insert_slice {{.*}}[%[[ELEMENT]], %[[PANEL]], 0, 0, 0] [1, 1, 16, 1, 16]
// CHECK: } {aotc.parallel}
// CHECK-NEXT: scf.yield
// CHECK-NEXT: } {aotc.parallel}
// CHECK-NEXT: tensor.insert_slice {{.*}}[0, 0, 0, %[[GROUP]], 0] [36, 4, 16, 1, 16]
// CHECK: } {aotc.parallel}
// CHECK: scf.for %{{.*}} = %c0 to %c36 step %c1 iter_args({{.*}}) -> (tensor<36x4x4x16xf32>)
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c4 step %c1 iter_args({{.*}}) -> (tensor<36x4x4x16xf32>)
// CHECK: scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args({{.*}}) -> (vector<4x16xf32>)
module attributes {aotc.model = "w"} {
  func.func @forward(%x: tensor<1x64x56x56xf32>, %w: tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32> {
    %y = "aten.conv2d"(%x, %w) {operand_names = ["input", "weight"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32>
    return %y : tensor<1x64x56x56xf32>
  }
}
