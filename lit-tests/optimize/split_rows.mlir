// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s
// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | aotc-opt - --pass bufferize | FileCheck %s --check-prefix=BUFFERS

// Rows of whole vectors and one power-of-two piece (56 = 3 x 16 + 8, the
// rows of a 56x56 feature map, scaled per channel) are split along the row: the 48 columns in
// vectors of 16, the last 8 in vectors of 8 with more rows at a time. As
// one vector of 56, LLVM would compute the row in four vectors of 16.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c56 step %c1
// CHECK: vector.transfer_read {{.*}} : tensor<1x1x1x48xf32>, vector<48xf32>
// the channel's scale: one element, broadcast along the row
// CHECK: vector.transfer_read {{.*}} : tensor<1xf32>, vector<1xf32>
// CHECK-NEXT: vector.broadcast {{.*}} : vector<1xf32> to vector<48xf32>
// CHECK: math.fma {{.*}} : vector<48xf32>
// CHECK: scf.for {{.*}} to %c56 step %c4
// CHECK: vector.transfer_read {{.*}} : tensor<1x1x4x8xf32>, vector<4x8xf32>
// CHECK: math.fma {{.*}} : vector<4x8xf32>
// CHECK-NOT: vector<1x1x1x56xf32>

// Each part writes its slice of the caller's output buffer: no copy.
// BUFFERS-LABEL: func.func @aotc_t_forward
// BUFFERS-NOT: memref.alloc
// BUFFERS: vector.transfer_write {{.*}} memref<1x1x1x48xf32
// BUFFERS: vector.transfer_write {{.*}} memref<1x1x4x8xf32
// BUFFERS-NOT: memref.copy
// BUFFERS-NOT: linalg.copy
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<1x4x56x56xf32>, %scale: memref<4xf32>, %out: memref<1x4x56x56xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<1x4x56x56xf32> to tensor<1x4x56x56xf32>
    %s = bufferization.to_tensor %scale restrict : memref<4xf32> to tensor<4xf32>
    %one = arith.constant 1.0 : f32
    %e = tensor.empty() : tensor<1x4x56x56xf32>
    %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (b)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%t, %s : tensor<1x4x56x56xf32>, tensor<4xf32>) outs(%e : tensor<1x4x56x56xf32>) {
    ^bb0(%in: f32, %k: f32, %o: f32):
      %m = math.fma %in, %k, %one : f32
      linalg.yield %m : f32
    } -> tensor<1x4x56x56xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<1x4x56x56xf32>, memref<1x4x56x56xf32>) -> ()
    return
  }
}
