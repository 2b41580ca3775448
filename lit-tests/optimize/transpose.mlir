// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A transpose of an activation (attention's K^T: [.., 128, 64] ->
// [.., 64, 128]) is tiled into 16 x 16 blocks (AVX-512): 16 contiguous rows read,
// transposed in registers by the unpack-and-shuffle network (64 shuffles
// of two vectors each, no element-by-element moves), 16 rows written.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c64 step %c16
// CHECK: scf.for {{.*}} to %c128 step %c16
// CHECK: vector.transfer_read {{.*}} : tensor<1x16x16xf32>, vector<16x16xf32>
// CHECK-COUNT-64: vector.shuffle {{.*}} : vector<16xf32>, vector<16xf32>
// CHECK-NOT: vector.extract {{.*}} : f32
// CHECK: vector.transfer_write {{.*}} : vector<16x16xf32>
// CHECK-NOT: linalg.transpose
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<2x128x64xf32>, %out: memref<2x64x128xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<2x128x64xf32> to tensor<2x128x64xf32>
    %e = tensor.empty() : tensor<2x64x128xf32>
    %r = linalg.transpose ins(%t : tensor<2x128x64xf32>) outs(%e : tensor<2x64x128xf32>) permutation = [0, 2, 1]
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<2x64x128xf32>, memref<2x64x128xf32>) -> ()
    return
  }
}
