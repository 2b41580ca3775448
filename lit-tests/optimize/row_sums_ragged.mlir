// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// Rows of 49 (a global pool over 7x7) are no whole number of vectors: the
// first 48 elements of each row are summed as vectors (three of 16 lanes),
// then across the lanes; the 49th is added after, by a sum over [576, 1],
// instead of the whole row being summed element by element.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c576 step %c1
// CHECK: vector.transfer_read {{.*}} vector<48xf32>
// CHECK: arith.addf {{.*}} : vector<48xf32>
// CHECK: vector.reduction <add>, {{.*}} : vector<48xf32> into f32
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<576x1xf32>)
// CHECK: arith.addf {{.*}} : f32
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<576x49xf32>, %out: memref<576xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<576x49xf32> to tensor<576x49xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<576xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<576xf32>) -> tensor<576xf32>
    %s = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]} ins(%t : tensor<576x49xf32>) outs(%init : tensor<576xf32>) {
    ^bb0(%in: f32, %acc: f32):
      %a = arith.addf %in, %acc : f32
      linalg.yield %a : f32
    } -> tensor<576xf32>
    bufferization.materialize_in_destination %s in restrict writable %out : (tensor<576xf32>, memref<576xf32>) -> ()
    return
  }
}
