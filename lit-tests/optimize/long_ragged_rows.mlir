// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// Rows of 111 (a stride-2 stem's output) written into a padded buffer:
// no tile of whole vectors divides them, and the 15 past the last whole
// vector are no power-of-two piece. They are split at 96: the first part
// in vectors of 48, the rest in masked vectors of 16, three rows at a
// time; not a scalar loop.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c96 step %c48
// CHECK: vector.transfer_read {{.*}} vector<48xf32>
// CHECK: vector.constant_mask [3, 15] : vector<3x16xi1>
// CHECK: vector.transfer_read {{.*}} vector<3x16xf32>
// CHECK: vector.transfer_write {{.*}} vector<3x16xf32>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<1x4x111x111xf32>, %out: memref<1x4x111x111xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<1x4x111x111xf32> to tensor<1x4x111x111xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<1x4x111x111xf32>
    %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%t : tensor<1x4x111x111xf32>) outs(%e : tensor<1x4x111x111xf32>) {
    ^bb0(%in: f32, %o: f32):
      %lt = arith.cmpf olt, %in, %zero : f32
      %m = arith.select %lt, %zero, %in : f32
      linalg.yield %m : f32
    } -> tensor<1x4x111x111xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<1x4x111x111xf32>, memref<1x4x111x111xf32>) -> ()
    return
  }
}
