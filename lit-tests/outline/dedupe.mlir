// RUN: aotc-opt %s --pass outline-kernels | FileCheck %s

// Every loop nest of the model's function becomes a call to a kernel
// function. The two row loops do the same thing to different buffers of the
// same type, so they share one kernel; the third differs (it scales by
// 3, not 2, in place) and gets its own. Constants are copied into the kernels (not
// passed), buffers are passed. Kernels are noinline.
// CHECK: // kernels: 3, functions: 2
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK-NOT: scf.for
// CHECK: call @aotc_t_forward_k0(%arg0, %arg1)
// CHECK-NEXT: call @aotc_t_forward_k0(%arg1, %arg2)
// CHECK-NEXT: call @aotc_t_forward_k1(%arg2)
// CHECK-NEXT: return
// CHECK: func.func private @aotc_t_forward_k0(%[[IN:.*]]: memref<4x16xf32>, %[[OUT:.*]]: memref<4x16xf32>) attributes {passthrough = ["noinline"]}
// CHECK-DAG: arith.constant 0 : index
// CHECK-DAG: arith.constant dense<2.000000e+00>
// CHECK: scf.for
// CHECK: vector.transfer_read %[[IN]]
// CHECK: vector.transfer_write {{.*}}, %[[OUT]]
// CHECK: func.func private @aotc_t_forward_k1
// CHECK: arith.constant dense<3.000000e+00>
// CHECK-NOT: func.func
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%a: memref<4x16xf32>, %b: memref<4x16xf32>, %c: memref<4x16xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %zero = arith.constant 0.0 : f32
    %two = arith.constant dense<2.0> : vector<16xf32>
    %three = arith.constant dense<3.0> : vector<16xf32>
    scf.for %i = %c0 to %c4 step %c1 {
      %v = vector.transfer_read %a[%i, %c0], %zero : memref<4x16xf32>, vector<16xf32>
      %w = arith.mulf %v, %two : vector<16xf32>
      vector.transfer_write %w, %b[%i, %c0] : vector<16xf32>, memref<4x16xf32>
    }
    scf.for %i = %c0 to %c4 step %c1 {
      %v = vector.transfer_read %b[%i, %c0], %zero : memref<4x16xf32>, vector<16xf32>
      %w = arith.mulf %v, %two : vector<16xf32>
      vector.transfer_write %w, %c[%i, %c0] : vector<16xf32>, memref<4x16xf32>
    }
    scf.for %i = %c0 to %c4 step %c1 {
      %v = vector.transfer_read %c[%i, %c0], %zero : memref<4x16xf32>, vector<16xf32>
      %w = arith.mulf %v, %three : vector<16xf32>
      vector.transfer_write %w, %c[%i, %c0] : vector<16xf32>, memref<4x16xf32>
    }
    return
  }
}
