// RUN: aotc-opt %s --pass optimize | FileCheck %s

// N = 196 is not a multiple of the 16-wide micro-kernel: the first 192
// columns are split off and keep full 16-wide tiles; the last 4 columns are
// a product of their own with 4-wide vectors (rather than every tile
// shrinking to 7 columns, a divisor of 196).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.extract_slice {{.*}}[0, 0] [64, 192] [1, 1] : tensor<64x196xf32> to tensor<64x192xf32>
// CHECK: scf.for {{.*}} to %c192{{.*}} step %c16
// CHECK: scf.for {{.*}} to %c64{{.*}} step %c1{{.*}} -> (vector<4x16xf32>)
// CHECK-COUNT-4: vector.fma {{.*}} : vector<16xf32>
// CHECK: tensor.extract_slice {{.*}}[0, 192] [64, 4] [1, 1] : tensor<64x196xf32> to tensor<64x4xf32>
// CHECK: scf.for {{.*}} to %c64{{.*}} step %c1{{.*}} -> (vector<8x4xf32>)
// CHECK-COUNT-8: vector.fma {{.*}} : vector<4xf32>
// CHECK-NOT: linalg.matmul
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%a: memref<8x64xf32>, %b: memref<64x196xf32>, %out: memref<8x196xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %ta = bufferization.to_tensor %a restrict : memref<8x64xf32> to tensor<8x64xf32>
    %tb = bufferization.to_tensor %b restrict : memref<64x196xf32> to tensor<64x196xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<8x196xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<8x196xf32>) -> tensor<8x196xf32>
    %c = linalg.matmul ins(%ta, %tb : tensor<8x64xf32>, tensor<64x196xf32>) outs(%init : tensor<8x196xf32>) -> tensor<8x196xf32>
    bufferization.materialize_in_destination %c in restrict writable %out : (tensor<8x196xf32>, memref<8x196xf32>) -> ()
    return
  }
}
