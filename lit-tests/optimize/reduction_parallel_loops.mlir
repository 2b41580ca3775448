// RUN: aotc-opt %s --pass optimize | FileCheck %s

// A sum over rows and columns per channel, each column scaled by a factor
// of its own (so the rows and columns stay two dims, see
// reduction_dims_collapsed.mlir): the loop over channels is parallel, the
// loop over rows is not (each row adds into the channel's sum in memory),
// so only the first is marked for the worker pool (`aotc.parallel`):
// splitting the rows among threads would race on the sums and change their
// order.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c4 step %c1
// CHECK: scf.for {{.*}} to %c32 step %c1
// CHECK: scf.for {{.*}} to %c64 step %c32 iter_args({{.*}}) -> (vector<32xf32>)
// CHECK: } {aotc.hoist}
// CHECK: vector.reduction <add>
// CHECK-NOT: aotc.parallel
// CHECK: {{^ *}}}{{$}}
// CHECK-NEXT: scf.yield
// CHECK-NEXT: } {aotc.parallel}
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<4x32x64xf32>, %w: memref<4x64xf32>, %out: memref<4xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<4x32x64xf32> to tensor<4x32x64xf32>
    %f = bufferization.to_tensor %w restrict : memref<4x64xf32> to tensor<4x64xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<4xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
    %s = linalg.generic {indexing_maps = [affine_map<(c, i, j) -> (c, i, j)>, affine_map<(c, i, j) -> (c, j)>, affine_map<(c, i, j) -> (c)>], iterator_types = ["parallel", "reduction", "reduction"]} ins(%t, %f : tensor<4x32x64xf32>, tensor<4x64xf32>) outs(%init : tensor<4xf32>) {
    ^bb0(%in: f32, %k: f32, %acc: f32):
      %p = arith.mulf %in, %k : f32
      %a = arith.addf %p, %acc : f32
      linalg.yield %a : f32
    } -> tensor<4xf32>
    bufferization.materialize_in_destination %s in restrict writable %out : (tensor<4xf32>, memref<4xf32>) -> ()
    return
  }
}
