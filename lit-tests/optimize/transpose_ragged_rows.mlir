// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A transpose whose output rows are not whole vectors ([.., 56, 16] ->
// [.., 16, 56], the output of a channel-blocked depthwise convolution at
// 56x56) is tiled in 16 x 8 blocks (8: the largest power-of-two piece of
// 56), not one 16 x 56 shuffle per row block.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c56 step %c8
// CHECK: vector.transfer_read {{.*}} : tensor<1x8x16xf32>, vector<8x16xf32>
// CHECK: vector.transfer_write {{.*}} : vector<16x8xf32>
// CHECK-NOT: vector<1x16x56xf32>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<2x56x16xf32>, %out: memref<2x16x56xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<2x56x16xf32> to tensor<2x56x16xf32>
    %e = tensor.empty() : tensor<2x16x56xf32>
    %r = linalg.transpose ins(%t : tensor<2x56x16xf32>) outs(%e : tensor<2x16x56xf32>) permutation = [0, 2, 1]
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<2x16x56xf32>, memref<2x16x56xf32>) -> ()
    return
  }
}
