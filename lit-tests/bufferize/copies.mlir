// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// Buffer-to-buffer copies become row loops of vector transfers: the input
// copied into the interior of its zero-padded buffer (rows of 20 at a
// stride of 22), then the result copied out of the arena (rows of 22).
// No copy is left to scalar loops.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.map
// CHECK: scf.for {{.*}} to %c4
// CHECK: scf.for {{.*}} to %c20
// CHECK: vector.transfer_read {{.*}} : memref<1x1x1x20xf32, strided<[1600, 400, 20, 1], offset: ?>>, vector<1x1x1x20xf32>
// CHECK: vector.transfer_write {{.*}} : vector<1x1x1x20xf32>, memref<1x1x1x20xf32, strided<[1936, 484, 22, 1], offset: ?>>
// CHECK: vector.transfer_read {{.*}} vector<1x1x1x22xf32>
// CHECK: vector.transfer_write
// CHECK-NOT: linalg.copy
// CHECK-NOT: memref.copy
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<1x4x20x20xf32>, %out: memref<1x4x22x22xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<1x4x20x20xf32> to tensor<1x4x20x20xf32>
    %zero = arith.constant 0.0 : f32
    %p = tensor.pad %t low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%a: index, %b: index, %c: index, %d: index):
      tensor.yield %zero : f32
    } : tensor<1x4x20x20xf32> to tensor<1x4x22x22xf32>
    bufferization.materialize_in_destination %p in restrict writable %out : (tensor<1x4x22x22xf32>, memref<1x4x22x22xf32>) -> ()
    return
  }
}
