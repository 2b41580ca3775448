// RUN: aotc-opt %s --pass optimize | FileCheck %s --check-prefix=TENSORS
// RUN: aotc-opt %s --pass optimize | aotc-opt - --pass bufferize | FileCheck %s --check-prefix=BUFFERS

// A ReLU whose result is zero-padded for a convolution: the ReLU writes the
// interior of the padded tensor, the pad becomes the insertion of that very
// slice, and only the border is filled (one slice below and one above each
// padded dim), after the producer.
// TENSORS-LABEL: func.func @aotc_t_forward
// TENSORS: %[[PADDED:.*]] = bufferization.alloc_tensor() : tensor<1x4x22x22xf32>
// TENSORS: %[[INSIDE:.*]] = tensor.extract_slice %[[PADDED]][0, 0, 1, 1] [1, 4, 20, 20] [1, 1, 1, 1]
// (rows of 20 = 16 + 4: the ReLU is split in two parts along them, each
// computed in its slice of the interior)
// TENSORS: %[[PART:.*]] = tensor.extract_slice %[[INSIDE]][0, 0, 0, 0] [1, 4, 20, 16]
// TENSORS: scf.for {{.*}} iter_args({{.*}} = %[[PART]])
// TENSORS: arith.maximumf
// TENSORS: tensor.insert_slice {{.*}} into %[[PADDED]][0, 0, 1, 1] [1, 4, 20, 20] [1, 1, 1, 1]
// TENSORS: linalg.fill {{.*}} -> tensor<1x4x1x22xf32>
// TENSORS: linalg.fill {{.*}} -> tensor<1x4x1x22xf32>
// TENSORS: linalg.fill {{.*}} -> tensor<1x4x20x1xf32>
// TENSORS: linalg.fill {{.*}} -> tensor<1x4x20x1xf32>
// TENSORS-NOT: tensor.pad

// Bufferized: no copy into the padded buffer, no fill of all of it; the
// border is filled channel by channel in the loop over the channels that
// writes the interior's last part (the threads share it with the rows
// inside it, 4 x 5 iterations: the piece that starts a channel fills its
// border, see parallel/collapse.mlir).
// BUFFERS-LABEL: func.func @aotc_t_forward
// BUFFERS-NOT: linalg.map
// BUFFERS: arith.maximumf
// BUFFERS: } {aotc.parallel}
// BUFFERS-NEXT: } {aotc.parallel}
// BUFFERS: scf.for {{.*}} to %c4 step %c1 {
// BUFFERS: scf.for {{.*}} to %c20 step %c4 {
// BUFFERS: arith.maximumf
// BUFFERS: } {aotc.parallel}
// BUFFERS: linalg.fill {{.*}} memref<1x1x1x22xf32
// BUFFERS: linalg.fill {{.*}} memref<1x1x1x22xf32
// BUFFERS: linalg.fill {{.*}} memref<1x1x20x1xf32
// BUFFERS: linalg.fill {{.*}} memref<1x1x20x1xf32
// BUFFERS-NEXT: } {aotc.parallel}
// BUFFERS-NOT: memref.copy
// BUFFERS-NOT: linalg.copy
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<1x4x20x20xf32>, %out: memref<1x4x22x22xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<1x4x20x20xf32> to tensor<1x4x20x20xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<1x4x20x20xf32>
    %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%t : tensor<1x4x20x20xf32>) outs(%e : tensor<1x4x20x20xf32>) {
    ^bb0(%in: f32, %o: f32):
      %m = arith.maximumf %in, %zero : f32
      linalg.yield %m : f32
    } -> tensor<1x4x20x20xf32>
    %p = tensor.pad %r low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%a: index, %b: index, %c: index, %d: index):
      tensor.yield %zero : f32
    } : tensor<1x4x20x20xf32> to tensor<1x4x22x22xf32>
    bufferization.materialize_in_destination %p in restrict writable %out : (tensor<1x4x22x22xf32>, memref<1x4x22x22xf32>) -> ()
    return
  }
}
