// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A transpose whose output rows (37) are neither whole vectors nor of a
// power-of-two piece of 8 or more is split at the last whole vector: the
// first 32 columns in 16 x 16 blocks shuffled in registers, the last 5 as
// 5 x 16 blocks. Before, the whole transpose was one element per step
// (GPT-2's tied LM head read its [50257, 768] embedding so: 180 ms a run).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c32 step %c16
// CHECK: scf.for {{.*}} to %c32 step %c16
// CHECK: vector.transfer_read {{.*}} : tensor<16x16xf32>, vector<16x16xf32>
// CHECK: vector.shuffle
// CHECK: vector.transfer_write {{.*}} : vector<16x16xf32>, tensor<16x16xf32>
// CHECK: scf.for {{.*}} to %c32 step %c16
// CHECK: vector.transfer_read {{.*}} : tensor<5x16xf32>, vector<5x16xf32>
// CHECK: vector.transfer_write {{.*}} : vector<16x5xf32>, tensor<16x5xf32>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<37x32xf32>, %out: memref<32x37xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<37x32xf32> to tensor<37x32xf32>
    %e = tensor.empty() : tensor<32x37xf32>
    %r = linalg.transpose ins(%t : tensor<37x32xf32>) outs(%e : tensor<32x37xf32>) permutation = [1, 0]
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<32x37xf32>, memref<32x37xf32>) -> ()
    return
  }
}
