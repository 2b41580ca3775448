// RUN: aotc-opt %s --pass optimize | FileCheck %s

// A matmul becomes a register micro-kernel inside cache blocks: N is
// blocked so that the worker threads share at least 8 blocks (784 columns:
// 49 blocks of one 16-column register tile; K = 75 needs no block), the
// block loop marked parallel; the 6x16 accumulator tile is carried in
// vector registers through the reduction loop, and each step is one
// broadcast + vector.fma per row. K is one block, so the zero fill of the
// accumulator is fused into the tiles: the accumulators start as a zero
// vector in registers, no pass fills C first.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<6x16xf32>
// CHECK-NOT: linalg.fill
// CHECK: scf.for {{.*}} to %c784{{.*}} step %c16
// CHECK: scf.for {{.*}} to %c75{{.*}} step %c1{{.*}} iter_args({{.*}} = %[[ZERO]]) -> (vector<6x16xf32>)
// CHECK-COUNT-6: vector.fma {{.*}} : vector<16xf32>
// CHECK: } {aotc.parallel}
// CHECK-NOT: linalg.matmul
// CHECK-NOT: linalg.fill
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%a: memref<6x75xf32>, %b: memref<75x784xf32>, %out: memref<6x784xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %ta = bufferization.to_tensor %a restrict : memref<6x75xf32> to tensor<6x75xf32>
    %tb = bufferization.to_tensor %b restrict : memref<75x784xf32> to tensor<75x784xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<6x784xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<6x784xf32>) -> tensor<6x784xf32>
    %c = linalg.matmul ins(%ta, %tb : tensor<6x75xf32>, tensor<75x784xf32>) outs(%init : tensor<6x784xf32>) -> tensor<6x784xf32>
    bufferization.materialize_in_destination %c in restrict writable %out : (tensor<6x784xf32>, memref<6x784xf32>) -> ()
    return
  }
  // K = 1024 in blocks of 64 (a row of B spans 4 KB: 64 pages bound a
  // block): each block adds to the ones before, so the accumulator is
  // filled once, before the blocks, and each tile loads it.
  // CHECK-LABEL: func.func @aotc_t_blocked_forward
  // CHECK: linalg.fill {{.*}} -> tensor<12x1024xf32>
  // CHECK: scf.for {{.*}} to %c1024{{.*}} step %c64
  // CHECK: vector.transfer_read
  // CHECK: vector.fma
  func.func @aotc_t_blocked_forward(%a: memref<12x1024xf32>, %b: memref<1024x1024xf32>, %out: memref<12x1024xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %ta = bufferization.to_tensor %a restrict : memref<12x1024xf32> to tensor<12x1024xf32>
    %tb = bufferization.to_tensor %b restrict : memref<1024x1024xf32> to tensor<1024x1024xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<12x1024xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<12x1024xf32>) -> tensor<12x1024xf32>
    %c = linalg.matmul ins(%ta, %tb : tensor<12x1024xf32>, tensor<1024x1024xf32>) outs(%init : tensor<12x1024xf32>) -> tensor<12x1024xf32>
    bufferization.materialize_in_destination %c in restrict writable %out : (tensor<12x1024xf32>, memref<12x1024xf32>) -> ()
    return
  }
}
