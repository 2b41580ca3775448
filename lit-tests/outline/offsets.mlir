// RUN: aotc-opt %s --pass outline-kernels | FileCheck %s

// Two copies of different windows of one buffer (as im2col copies each tap's
// window): the windows differ only in their offsets, so both calls pass
// their window with its offset made unknown and share one kernel.
// CHECK: // kernels: 2, functions: 1
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[A:.*]] = memref.cast %{{.*}} : memref<4x16xf32, strided<[32, 1], offset: 1>> to memref<4x16xf32, strided<[32, 1], offset: ?>>
// CHECK: call @aotc_t_forward_k0(%[[A]], %arg1)
// CHECK: %[[B:.*]] = memref.cast %{{.*}} : memref<4x16xf32, strided<[32, 1], offset: 2>> to memref<4x16xf32, strided<[32, 1], offset: ?>>
// CHECK: call @aotc_t_forward_k0(%[[B]], %arg2)
// CHECK: func.func private @aotc_t_forward_k0(%{{.*}}: memref<4x16xf32, strided<[32, 1], offset: ?>>, %{{.*}}: memref<4x16xf32>)
// CHECK-NOT: func.func
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<4x32xf32>, %a: memref<4x16xf32>, %b: memref<4x16xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %zero = arith.constant 0.0 : f32
    %w1 = memref.subview %x[0, 1] [4, 16] [1, 1] : memref<4x32xf32> to memref<4x16xf32, strided<[32, 1], offset: 1>>
    scf.for %i = %c0 to %c4 step %c1 {
      %v = vector.transfer_read %w1[%i, %c0], %zero : memref<4x16xf32, strided<[32, 1], offset: 1>>, vector<16xf32>
      vector.transfer_write %v, %a[%i, %c0] : vector<16xf32>, memref<4x16xf32>
    }
    %w2 = memref.subview %x[0, 2] [4, 16] [1, 1] : memref<4x32xf32> to memref<4x16xf32, strided<[32, 1], offset: 2>>
    scf.for %i = %c0 to %c4 step %c1 {
      %v = vector.transfer_read %w2[%i, %c0], %zero : memref<4x16xf32, strided<[32, 1], offset: 2>>, vector<16xf32>
      vector.transfer_write %v, %b[%i, %c0] : vector<16xf32>, memref<4x16xf32>
    }
    return
  }
}
