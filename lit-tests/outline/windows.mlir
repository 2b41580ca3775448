// RUN: aotc-opt %s --pass outline-kernels | FileCheck %s

// A kernel that reads several windows of one buffer (a stencil's taps) gets
// the buffer once and rebuilds the windows inside, at constant offsets from
// one pointer, instead of one argument per window.
// CHECK: // kernels: 1, functions: 1
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: call @aotc_t_forward_k0(%arg0, %arg1) : (memref<4x32xf32>, memref<4x16xf32>) -> ()
// CHECK: func.func private @aotc_t_forward_k0(%[[X:.*]]: memref<4x32xf32>, %{{.*}}: memref<4x16xf32>)
// CHECK-DAG: memref.subview %[[X]][0, 1] [4, 16] [1, 1] : memref<4x32xf32> to memref<4x16xf32, strided<[32, 1], offset: 1>>
// CHECK-DAG: memref.subview %[[X]][0, 2] [4, 16] [1, 1] : memref<4x32xf32> to memref<4x16xf32, strided<[32, 1], offset: 2>>
// CHECK: scf.for
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<4x32xf32>, %out: memref<4x16xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %zero = arith.constant 0.0 : f32
    %w1 = memref.subview %x[0, 1] [4, 16] [1, 1] : memref<4x32xf32> to memref<4x16xf32, strided<[32, 1], offset: 1>>
    %w2 = memref.subview %x[0, 2] [4, 16] [1, 1] : memref<4x32xf32> to memref<4x16xf32, strided<[32, 1], offset: 2>>
    scf.for %i = %c0 to %c4 step %c1 {
      %a = vector.transfer_read %w1[%i, %c0], %zero : memref<4x16xf32, strided<[32, 1], offset: 1>>, vector<16xf32>
      %b = vector.transfer_read %w2[%i, %c0], %zero : memref<4x16xf32, strided<[32, 1], offset: 2>>, vector<16xf32>
      %s = arith.addf %a, %b : vector<16xf32>
      vector.transfer_write %s, %out[%i, %c0] : vector<16xf32>, memref<4x16xf32>
    }
    return
  }
}
