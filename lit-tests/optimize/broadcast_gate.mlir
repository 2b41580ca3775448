// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A squeeze-and-excite gate: x [1, C, 56, 56] times a per-channel value
// kept as [1, C, 1, 1] (read through (d0, d1, 0, 0)). The gate's read is a
// one-element read broadcast along the row, without the unit dims; as
// vector<1x1x1x48> through a permutation map it was unrolled lane by lane
// through the stack.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c56 step %c1
// CHECK-NOT: vector<1x1x1x48xf32>
// CHECK: vector.transfer_read {{.*}} : tensor<1x1x1x48xf32>, vector<48xf32>
// CHECK: vector.transfer_read {{.*}} permutation_map = {{.*}} : tensor<1x1x1x1xf32>, vector<48xf32>
// CHECK: arith.mulf {{.*}} : vector<48xf32>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<1x4x56x56xf32>, %gate: memref<1x4x1x1xf32>, %out: memref<1x4x56x56xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<1x4x56x56xf32> to tensor<1x4x56x56xf32>
    %g = bufferization.to_tensor %gate restrict : memref<1x4x1x1xf32> to tensor<1x4x1x1xf32>
    %e = tensor.empty() : tensor<1x4x56x56xf32>
    %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, 0, 0)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%t, %g : tensor<1x4x56x56xf32>, tensor<1x4x1x1xf32>) outs(%e : tensor<1x4x56x56xf32>) {
    ^bb0(%in: f32, %k: f32, %o: f32):
      %m = arith.mulf %in, %k : f32
      linalg.yield %m : f32
    } -> tensor<1x4x56x56xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<1x4x56x56xf32>, memref<1x4x56x56xf32>) -> ()
    return
  }
}
