// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | aotc-opt - --pass bufferize | FileCheck %s

// A product on one packed panel (8 rows x 16 columns, K 256): its step
// reads one line, which is prefetched the whole 8 KiB in flight ahead (128
// steps), in the panel's buffer seen flat, up to its last element.
// CHECK-LABEL: func.func @aotc_one_forward
// CHECK: scf.for %[[K:.*]] = %c0 to %c256 step %c1 iter_args
// CHECK-NEXT: %[[FLAT:.*]] = memref.reinterpret_cast %arg1 to offset: [0], sizes: [4096], strides: [1] : memref<1x256x16xf32> to memref<4096xf32>
// CHECK-NEXT: %[[AHEAD:.*]] = arith.addi %[[K]], %c128
// CHECK-NEXT: %[[FIRST:.*]] = arith.muli %[[AHEAD]], %c16
// CHECK-NEXT: %[[CLAMPED:.*]] = arith.minui %[[FIRST]], %c4095
// CHECK-NEXT: memref.prefetch %[[FLAT]][%[[CLAMPED]]], read, locality<1>, data : memref<4096xf32>
// CHECK-NOT: memref.prefetch
// CHECK: return
module attributes {aotc.model = "one"} {
  func.func @aotc_one_forward(%x: memref<8x256xf32>, %panels: memref<1x256x16xf32>, %out: memref<8x16xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %tx = bufferization.to_tensor %x restrict : memref<8x256xf32> to tensor<8x256xf32>
    %tp = bufferization.to_tensor %panels restrict : memref<1x256x16xf32> to tensor<1x256x16xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<8x1x16xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<8x1x16xf32>) -> tensor<8x1x16xf32>
    %c = linalg.generic {indexing_maps = [affine_map<(m, j, p, k) -> (m, k)>, affine_map<(m, j, p, k) -> (j, k, p)>, affine_map<(m, j, p, k) -> (m, j, p)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%tx, %tp : tensor<8x256xf32>, tensor<1x256x16xf32>) outs(%init : tensor<8x1x16xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %p : f32
      linalg.yield %s : f32
    } -> tensor<8x1x16xf32>
    %flat = tensor.collapse_shape %c [[0], [1, 2]] : tensor<8x1x16xf32> into tensor<8x16xf32>
    bufferization.materialize_in_destination %flat in restrict writable %out : (tensor<8x16xf32>, memref<8x16xf32>) -> ()
    return
  }
}
