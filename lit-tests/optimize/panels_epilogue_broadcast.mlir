// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// An op after a panel product that reads one of its operands through a
// broadcast (here a row of 64 added to every row) is not an epilogue
// (`kernels::epilogue::panel_epilogue` takes identity maps only): the
// product stores its register tiles, and the op is a loop of its own.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[ACC:.*]] = scf.for {{.*}} to %c64 step %c1 iter_args({{.*}}) -> (vector<8x2x16xf32>)
// CHECK: vector.transfer_write %[[ACC]]
// CHECK: scf.for
// CHECK: arith.maximumf {{.*}} : vector<64xf32>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<16x64xf32>, %panels: memref<4x64x16xf32>, %bias: memref<64xf32>, %res: memref<64xf32>, %out: memref<1x16x64xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %tx = bufferization.to_tensor %x restrict : memref<16x64xf32> to tensor<16x64xf32>
    %tp = bufferization.to_tensor %panels restrict : memref<4x64x16xf32> to tensor<4x64x16xf32>
    %tb = bufferization.to_tensor %bias restrict : memref<64xf32> to tensor<64xf32>
    %tr = bufferization.to_tensor %res restrict : memref<64xf32> to tensor<64xf32>
    %split = tensor.expand_shape %tb [[0, 1]] output_shape [4, 16] : tensor<64xf32> into tensor<4x16xf32>
    %e = tensor.empty() : tensor<16x4x16xf32>
    %init = linalg.generic {indexing_maps = [affine_map<(m, j, p) -> (j, p)>, affine_map<(m, j, p) -> (m, j, p)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%split : tensor<4x16xf32>) outs(%e : tensor<16x4x16xf32>) {
    ^bb0(%in: f32, %o: f32):
      linalg.yield %in : f32
    } -> tensor<16x4x16xf32>
    %c = linalg.generic {indexing_maps = [affine_map<(m, j, p, k) -> (m, k)>, affine_map<(m, j, p, k) -> (j, k, p)>, affine_map<(m, j, p, k) -> (m, j, p)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%tx, %tp : tensor<16x64xf32>, tensor<4x64x16xf32>) outs(%init : tensor<16x4x16xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %p : f32
      linalg.yield %s : f32
    } -> tensor<16x4x16xf32>
    %r = tensor.collapse_shape %c [[0], [1, 2]] : tensor<16x4x16xf32> into tensor<16x64xf32>
    %r1 = tensor.collapse_shape %r [[0, 1]] : tensor<16x64xf32> into tensor<1024xf32>
    %r3 = tensor.expand_shape %r1 [[0, 1, 2]] output_shape [1, 16, 64] : tensor<1024xf32> into tensor<1x16x64xf32>
    %e2 = tensor.empty() : tensor<1x16x64xf32>
    %g = linalg.generic {indexing_maps = [affine_map<(b, m, n) -> (b, m, n)>, affine_map<(b, m, n) -> (n)>, affine_map<(b, m, n) -> (b, m, n)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%r3, %tr : tensor<1x16x64xf32>, tensor<64xf32>) outs(%e2 : tensor<1x16x64xf32>) {
    ^bb0(%a: f32, %b: f32, %o: f32):
      %z = arith.constant 0.0 : f32
      %m = arith.maximumf %a, %z : f32
      %s = arith.addf %m, %b : f32
      linalg.yield %s : f32
    } -> tensor<1x16x64xf32>
    bufferization.materialize_in_destination %g in restrict writable %out : (tensor<1x16x64xf32>, memref<1x16x64xf32>) -> ()
    return
  }
}
