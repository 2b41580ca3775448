// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A sum over the two trailing dims of a 7 x 7 map (a global pool) with the
// op before it fused in (elementwise fusion expands a reduction over a
// collapsed tensor back to its producer's dims) reduces one dim of 49
// instead: the row's 48 first elements in vectors of 16, the last one
// after them, no scalar loop over the 7 x 7 window.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.collapse_shape {{.*}} {{\[}}[0], [1], [2, 3]] : tensor<1x32x7x7xf32> into tensor<1x32x49xf32>
// CHECK: scf.for
// CHECK: vector.transfer_read {{.*}} vector<48xf32>
// CHECK: math.fma {{.*}} : vector<48xf32>
// CHECK-NOT: iterator_types = [{{.*}}"reduction", "reduction"]
// CHECK-NOT: vector<7xf32>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<1x32x7x7xf32>, %out: memref<1x32xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<1x32x7x7xf32> to tensor<1x32x7x7xf32>
    %one = arith.constant 1.0 : f32
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<1x32x7x7xf32>
    %a = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%t : tensor<1x32x7x7xf32>) outs(%e : tensor<1x32x7x7xf32>) {
    ^bb0(%in: f32, %o: f32):
      %m = math.fma %in, %in, %one : f32
      linalg.yield %m : f32
    } -> tensor<1x32x7x7xf32>
    %flat = tensor.collapse_shape %a [[0], [1], [2, 3]] : tensor<1x32x7x7xf32> into tensor<1x32x49xf32>
    %init = tensor.empty() : tensor<1x32xf32>
    %z = linalg.fill ins(%zero : f32) outs(%init : tensor<1x32xf32>) -> tensor<1x32xf32>
    %s = linalg.generic {indexing_maps = [affine_map<(a, b, c) -> (a, b, c)>, affine_map<(a, b, c) -> (a, b)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%flat : tensor<1x32x49xf32>) outs(%z : tensor<1x32xf32>) {
    ^bb0(%in: f32, %acc: f32):
      %r = arith.addf %in, %acc : f32
      linalg.yield %r : f32
    } -> tensor<1x32xf32>
    bufferization.materialize_in_destination %s in restrict writable %out : (tensor<1x32xf32>, memref<1x32xf32>) -> ()
    return
  }
}
