// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// Every intermediate is a view of the arena argument at a planned offset;
// buffers live at the same time never share bytes, and nothing is allocated.
// %a, %b and %c (16 KiB each) are all live at the add, so they need 48 KiB;
// %d is computed after %a's last use and takes %a's bytes again (through
// a view of its own: views of two buffers stay two values); the
// result %f is computed straight into the output argument, with no copy.
// CHECK: // arena: 49152 bytes
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK-NOT: memref.alloc
// CHECK: %[[A:.*]] = memref.view %arg2[%c0][] {aotc.buffer = {{[0-9]+}} : index} : memref<?xi8> to memref<64x64xf32>
// CHECK: linalg.exp ins(%arg0 : memref<64x64xf32>) outs(%[[A]] : memref<64x64xf32>)
// CHECK: %[[B:.*]] = memref.view %arg2[%c16384][]
// CHECK: %[[C:.*]] = memref.view %arg2[%c32768][]
// CHECK: linalg.add ins(%[[A]], %[[B]] : {{.*}}) outs(%[[C]] : memref<64x64xf32>)
// CHECK: %[[D:.*]] = memref.view %arg2[%c0][] {aotc.buffer = {{[0-9]+}} : index}
// CHECK: linalg.transpose ins(%[[C]] : memref<64x64xf32>) outs(%[[D]] : memref<64x64xf32>)
// CHECK: linalg.exp ins(%[[D]] : memref<64x64xf32>) outs(%arg1 : memref<64x64xf32>)
// CHECK-NOT: linalg.copy
// CHECK-NOT: memref.alloc
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<64x64xf32>, %out: memref<64x64xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<64x64xf32> to tensor<64x64xf32>
    %e1 = tensor.empty() : tensor<64x64xf32>
    %a = linalg.exp ins(%t : tensor<64x64xf32>) outs(%e1 : tensor<64x64xf32>) -> tensor<64x64xf32>
    %e2 = tensor.empty() : tensor<64x64xf32>
    %b = linalg.transpose ins(%a : tensor<64x64xf32>) outs(%e2 : tensor<64x64xf32>) permutation = [1, 0]
    %e3 = tensor.empty() : tensor<64x64xf32>
    %c = linalg.add ins(%a, %b : tensor<64x64xf32>, tensor<64x64xf32>) outs(%e3 : tensor<64x64xf32>) -> tensor<64x64xf32>
    %e4 = tensor.empty() : tensor<64x64xf32>
    %d = linalg.transpose ins(%c : tensor<64x64xf32>) outs(%e4 : tensor<64x64xf32>) permutation = [1, 0]
    %e5 = tensor.empty() : tensor<64x64xf32>
    %f = linalg.exp ins(%d : tensor<64x64xf32>) outs(%e5 : tensor<64x64xf32>) -> tensor<64x64xf32>
    bufferization.materialize_in_destination %f in restrict writable %out : (tensor<64x64xf32>, memref<64x64xf32>) -> ()
    return
  }
}
