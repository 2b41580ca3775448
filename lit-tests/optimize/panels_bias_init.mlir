// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A linear layer's product on packed panels starts from its bias, built
// in the panels' shape [M, N/16, 16] (`aotc_dialects::lower::linear::
// column_bias`): the register tiles (8 rows x 2 panels) start as the bias's
// two panel rows broadcast in registers; no pass writes the bias into the
// output first.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[ROW:.*]] = vector.transfer_read {{.*}} : tensor<2x16xf32>, vector<2x16xf32>
// CHECK: %[[ACC:.*]] = vector.broadcast %[[ROW]] : vector<2x16xf32> to vector<8x2x16xf32>
// CHECK: scf.for {{.*}} to %c64 step %c1 iter_args({{.*}} = %[[ACC]]) -> (vector<8x2x16xf32>)
// CHECK-COUNT-16: vector.fma {{.*}} : vector<16xf32>
// CHECK-NOT: linalg.generic
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<8x64xf32>, %panels: memref<2x64x16xf32>, %bias: memref<32xf32>, %out: memref<8x32xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %tx = bufferization.to_tensor %x restrict : memref<8x64xf32> to tensor<8x64xf32>
    %tp = bufferization.to_tensor %panels restrict : memref<2x64x16xf32> to tensor<2x64x16xf32>
    %tb = bufferization.to_tensor %bias restrict : memref<32xf32> to tensor<32xf32>
    %split = tensor.expand_shape %tb [[0, 1]] output_shape [2, 16] : tensor<32xf32> into tensor<2x16xf32>
    %e = tensor.empty() : tensor<8x2x16xf32>
    %init = linalg.generic {indexing_maps = [affine_map<(m, j, p) -> (j, p)>, affine_map<(m, j, p) -> (m, j, p)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%split : tensor<2x16xf32>) outs(%e : tensor<8x2x16xf32>) {
    ^bb0(%in: f32, %o: f32):
      linalg.yield %in : f32
    } -> tensor<8x2x16xf32>
    %c = linalg.generic {indexing_maps = [affine_map<(m, j, p, k) -> (m, k)>, affine_map<(m, j, p, k) -> (j, k, p)>, affine_map<(m, j, p, k) -> (m, j, p)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%tx, %tp : tensor<8x64xf32>, tensor<2x64x16xf32>) outs(%init : tensor<8x2x16xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %p : f32
      linalg.yield %s : f32
    } -> tensor<8x2x16xf32>
    %r = tensor.collapse_shape %c [[0], [1, 2]] : tensor<8x2x16xf32> into tensor<8x32xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<8x32xf32>, memref<8x32xf32>) -> ()
    return
  }
}
