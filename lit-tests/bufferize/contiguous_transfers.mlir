// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize | aotc-opt - --pass bufferize | FileCheck %s

// A strided max pool's row maxima are made into the stride phases of their
// columns: each input row's 16 pairs are read as vector<16x2xf32> and
// shuffled into the two phases' rows of 16. The pairs lie back to back
// (strides [2, 1]), so the read is one of 32 floats through a collapsed
// view, not 16 reads of 2 (LLVM's lowering of an n-d read, one innermost
// row at a time); the phases' rows lie 64 floats apart and are written as
// they are.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for
// CHECK-COUNT-3: memref.collapse_shape %{{.*}} {{\[}}[0], [1], [2], [3], [4, 5]] : memref<1x1x1x1x16x2xf32, strided<[2304, 288, 64, 32, 2, 1], offset: ?>> into memref<1x1x1x1x32xf32, strided<[2304, 288, 64, 32, 1], offset: ?>>
// CHECK-NOT: vector.transfer_read {{.*}} vector<16x2xf32>
// CHECK: vector.transfer_write {{.*}} : vector<2x1x16xf32>, memref<1x1x1x2x1x16xf32
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x8x9x32xf32>) -> tensor<1x8x4x16xf32> {
    %y = "aten.max_pool2d"(%x) {operand_names = ["self"], kernel_size = array<i64: 3, 2>, stride = array<i64: 2, 2>} : (tensor<1x8x9x32xf32>) -> tensor<1x8x4x16xf32>
    return %y : tensor<1x8x4x16xf32>
  }
}
