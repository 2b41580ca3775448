// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | aotc-opt - --pass bufferize | FileCheck %s

// A tiled product at the function's top level (16x64 times 64x64, register
// tiles of 8 rows x 32 columns): each K step prefetches the two lines of
// B's row k that the next tile to the right reads (32 and 48 elements on
// in the row, in B's buffer seen flat, up to its last element). The
// product inside a loop (an attention's per-head blocks, in cache) does not
// prefetch.
// CHECK-LABEL: func.func @aotc_tiles_forward
// CHECK: scf.for %[[K:.*]] = %c0 to %c64 step %c1 iter_args
// CHECK: %[[FLAT:.*]] = memref.reinterpret_cast %{{.*}} to offset: [0], sizes: [4096], strides: [1] : memref<64x32xf32, strided<[64, 1], offset: ?>> to memref<4096xf32>
// CHECK-NEXT: %[[ROW:.*]] = arith.muli %[[K]], %c64
// CHECK-NEXT: %[[AT:.*]] = arith.addi %{{.*}}, %[[ROW]]
// CHECK-NEXT: %[[NEXT:.*]] = arith.addi %[[AT]], %c32
// CHECK-NEXT: %[[CLAMPED:.*]] = arith.minui %[[NEXT]], %c4095
// CHECK-NEXT: memref.prefetch %[[FLAT]][%[[CLAMPED]]], read, locality<1>, data : memref<4096xf32>
// CHECK-NEXT: %[[SECOND:.*]] = arith.addi %[[AT]], %c48
// CHECK-NEXT: %[[CLAMPED2:.*]] = arith.minui %[[SECOND]], %c4095
// CHECK-NEXT: memref.prefetch %[[FLAT]][%[[CLAMPED2]]], read, locality<1>, data : memref<4096xf32>
// CHECK: } {aotc.next_tile}
// CHECK: scf.for %{{.*}} = %c0 to %c2 step %c1
// CHECK-NOT: memref.prefetch
// CHECK: return
module attributes {aotc.model = "tiles"} {
  func.func @aotc_tiles_forward(%a: memref<16x64xf32>, %b: memref<64x64xf32>, %b2: memref<64x32xf32>, %out: memref<16x64xf32>, %out2: memref<16x32xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %ta = bufferization.to_tensor %a restrict : memref<16x64xf32> to tensor<16x64xf32>
    %tb = bufferization.to_tensor %b restrict : memref<64x64xf32> to tensor<64x64xf32>
    %tb2 = bufferization.to_tensor %b2 restrict : memref<64x32xf32> to tensor<64x32xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<16x64xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<16x64xf32>) -> tensor<16x64xf32>
    %c = linalg.matmul ins(%ta, %tb : tensor<16x64xf32>, tensor<64x64xf32>) outs(%init : tensor<16x64xf32>) -> tensor<16x64xf32>
    bufferization.materialize_in_destination %c in restrict writable %out : (tensor<16x64xf32>, memref<16x64xf32>) -> ()
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %e2 = tensor.empty() : tensor<16x32xf32>
    %init2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<16x32xf32>) -> tensor<16x32xf32>
    %r = scf.for %i = %c0 to %c2 step %c1 iter_args(%acc = %init2) -> (tensor<16x32xf32>) {
      %p = linalg.matmul ins(%ta, %tb2 : tensor<16x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<16x32xf32>) -> tensor<16x32xf32>
      scf.yield %p : tensor<16x32xf32>
    }
    bufferization.materialize_in_destination %r in restrict writable %out2 : (tensor<16x32xf32>, memref<16x32xf32>) -> ()
    return
  }
}
