// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A product on packed panels whose rows all fit under each column tile,
// with enough column tiles to share (64 rows x 16 panels, B 64 KiB): the
// rows go in 4 groups of 16 outermost, the column tiles (2 panels) inside
// each group, then the register tiles of 8 rows. The threads share groups
// x column tiles, groups outer: each thread's part is a band of the rows
// (the tokens), as the row-wise kernels around a linear layer share them
// (`kernels::matmul::row_group_rows`).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for %[[ROWS:.*]] = %c0 to %c64 step %c16
// CHECK-NEXT: scf.for %[[PANELS:.*]] = %c0 to %c16 step %c2
// CHECK-NEXT: tensor.extract_slice %{{.*}}[%[[ROWS]], 0] [16, 64] [1, 1] : tensor<64x64xf32> to tensor<16x64xf32>
// CHECK-NEXT: tensor.extract_slice %{{.*}}[%[[PANELS]], 0, 0] [2, 64, 16] [1, 1, 1] : tensor<16x64x16xf32> to tensor<2x64x16xf32>
// CHECK: scf.for %{{.*}} = %c0 to %c16 step %c8
// CHECK-COUNT-16: vector.fma {{.*}} : vector<16xf32>
// CHECK-COUNT-3: } {aotc.parallel}
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<64x64xf32>, %panels: memref<16x64x16xf32>, %out: memref<64x256xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
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
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<64x256xf32>, memref<64x256xf32>) -> ()
    return
  }
}
