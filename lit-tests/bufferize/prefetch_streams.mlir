// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | aotc-opt - --pass bufferize | FileCheck %s

// A product on packed panels (8 rows x 2 panels of 16 columns, K 256):
// each step of K reads one 64-byte line of each of its two panels, a
// stream from memory. The step prefetches both panels' lines into L2, 4 KiB
// (64 steps) ahead, addressed in the panels' buffer seen flat: the first
// panel's last steps prefetch the second's first lines, the second's stop
// at the buffer's last element (8191). The rows of x (4 bytes a step, the
// smaller operand) are not prefetched.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for %[[K:.*]] = %c0 to %c256 step %c1 iter_args
// CHECK-NEXT: %[[FLAT:.*]] = memref.reinterpret_cast %arg1 to offset: [0], sizes: [8192], strides: [1] : memref<2x256x16xf32> to memref<8192xf32>
// CHECK-NEXT: %[[AHEAD:.*]] = arith.addi %[[K]], %c64
// CHECK-NEXT: %[[FIRST:.*]] = arith.muli %[[AHEAD]], %c16
// CHECK-NEXT: %[[CLAMPED:.*]] = arith.minui %[[FIRST]], %c8191
// CHECK-NEXT: memref.prefetch %[[FLAT]][%[[CLAMPED]]], read, locality<1>, data : memref<8192xf32>
// CHECK-NEXT: %[[SECOND:.*]] = arith.addi %[[FIRST]], %c4096
// CHECK-NEXT: %[[CLAMPED2:.*]] = arith.minui %[[SECOND]], %c8191
// CHECK-NEXT: memref.prefetch %[[FLAT]][%[[CLAMPED2]]], read, locality<1>, data : memref<8192xf32>
// CHECK-NOT: memref.prefetch
// CHECK-COUNT-16: vector.fma {{.*}} : vector<16xf32>
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<8x256xf32>, %panels: memref<2x256x16xf32>, %out: memref<8x32xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %tx = bufferization.to_tensor %x restrict : memref<8x256xf32> to tensor<8x256xf32>
    %tp = bufferization.to_tensor %panels restrict : memref<2x256x16xf32> to tensor<2x256x16xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<8x2x16xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<8x2x16xf32>) -> tensor<8x2x16xf32>
    %c = linalg.generic {indexing_maps = [affine_map<(m, j, p, k) -> (m, k)>, affine_map<(m, j, p, k) -> (j, k, p)>, affine_map<(m, j, p, k) -> (m, j, p)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%tx, %tp : tensor<8x256xf32>, tensor<2x256x16xf32>) outs(%init : tensor<8x2x16xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %p : f32
      linalg.yield %s : f32
    } -> tensor<8x2x16xf32>
    %flat = tensor.collapse_shape %c [[0], [1, 2]] : tensor<8x2x16xf32> into tensor<8x32xf32>
    bufferization.materialize_in_destination %flat in restrict writable %out : (tensor<8x32xf32>, memref<8x32xf32>) -> ()
    return
  }
}

