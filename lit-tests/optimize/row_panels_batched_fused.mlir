// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A Winograd F(2x2, 3x3) convolution of 7x7 tiles: 16 products on row
// panels of U, each 48 columns (three groups of 16) and a 49th apart on
// the same panels. The two products share their blocks of (element, 3
// panels: the last column's tile): in each, the main product sweeps the 3
// panels, then the last column reads them again, now from cache. The two
// fused loops are what the threads share (16 x 2 pieces).
// CHECK-LABEL: func.func @aotc_w_forward
// CHECK: %{{.*}}:2 = scf.for %{{.*}} = %c0 to %c16 step %c1 iter_args({{.*}}) -> (tensor<16x6x8x3x16xf32>, tensor<16x6x1x8xf32>)
// CHECK-NEXT: %{{.*}}:2 = scf.for %{{.*}} = %c0 to %c6 step %c3 iter_args({{.*}}) -> (tensor<16x6x8x3x16xf32>, tensor<16x6x1x8xf32>)
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (vector<8x3x16xf32>)
// CHECK-COUNT-24: vector.fma {{.*}} : vector<16xf32>
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (vector<3x8xf32>)
// CHECK-COUNT-3: vector.fma {{.*}} : vector<8xf32>
// CHECK: scf.yield {{.*}} : tensor<16x6x8x3x16xf32>, tensor<16x6x1x8xf32>
// CHECK-NEXT: } {aotc.parallel}
// CHECK-NEXT: scf.yield {{.*}} : tensor<16x6x8x3x16xf32>, tensor<16x6x1x8xf32>
// CHECK-NEXT: } {aotc.parallel}
module attributes {aotc.model = "w"} {
  func.func @forward(%x: tensor<1x32x14x14xf32>, %w: tensor<48x32x3x3xf32>) -> tensor<1x48x14x14xf32> {
    %y = "aten.conv2d"(%x, %w) {operand_names = ["input", "weight"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x32x14x14xf32>, tensor<48x32x3x3xf32>) -> tensor<1x48x14x14xf32>
    return %y : tensor<1x48x14x14xf32>
  }
}
