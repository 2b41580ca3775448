// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// The product of panel_row_groups.mlir whose result a loop nest reads by
// heads (an attention's query, key or value, here a loop over 4 heads of
// 64 columns): no row groups, the column tiles (2 panels) outermost, so
// that the threads split the columns, which are the heads in order, as
// the attention's threads take them.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for %{{.*}} = %c0 to %c16 step %c2
// CHECK-NEXT: tensor.extract_slice
// CHECK-NEXT: tensor.extract_slice
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c64 step %c8
// CHECK-COUNT-16: vector.fma {{.*}} : vector<16xf32>
// CHECK-COUNT-2: } {aotc.parallel}
// CHECK: scf.for %{{.*}} = %c0 to %c4 step %c1
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<64x64xf32>, %panels: memref<16x64x16xf32>, %out: memref<64x64xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %tx = bufferization.to_tensor %x restrict : memref<64x64xf32> to tensor<64x64xf32>
    %tp = bufferization.to_tensor %panels restrict : memref<16x64x16xf32> to tensor<16x64x16xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<64x16x16xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<64x16x16xf32>) -> tensor<64x16x16xf32>
    %c = linalg.generic {indexing_maps = [affine_map<(m, j, p, k) -> (m, k)>, affine_map<(m, j, p, k) -> (j, k, p)>, affine_map<(m, j, p, k) -> (m, j, p)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%tx, %tp : tensor<64x64xf32>, tensor<16x64x16xf32>) outs(%init : tensor<64x16x16xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %p : f32
      linalg.yield %s : f32
    } -> tensor<64x16x16xf32>
    %r = tensor.collapse_shape %c [[0], [1, 2]] : tensor<64x16x16xf32> into tensor<64x256xf32>
    %heads = tensor.expand_shape %r [[0], [1, 2]] output_shape [64, 4, 64] : tensor<64x256xf32> into tensor<64x4x64xf32>
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %e2 = tensor.empty() : tensor<64x64xf32>
    %sum = scf.for %h = %c0 to %c4 step %c1 iter_args(%acc = %e2) -> (tensor<64x64xf32>) {
      %head = tensor.extract_slice %heads[0, %h, 0] [64, 1, 64] [1, 1, 1] : tensor<64x4x64xf32> to tensor<64x64xf32>
      scf.yield %head : tensor<64x64xf32>
    }
    bufferization.materialize_in_destination %sum in restrict writable %out : (tensor<64x64xf32>, memref<64x64xf32>) -> ()
    return
  }
}
