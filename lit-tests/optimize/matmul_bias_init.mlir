// RUN: aotc-opt %s --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A product whose init is a broadcast bias (a linear layer's, a
// convolution's with its batch norm folded in) starts its register tiles
// from the bias: the accumulators are the bias row broadcast in registers,
// no pass writes the bias into C first. (The ReLU after it is a pass of
// its own.) With 32 vector registers the register tile is two vectors
// wide: 8 rows x 32 columns, each broadcast of A feeding one FMA of two
// vectors.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK-NOT: scf.for {{.*}} step %c16
// CHECK: %[[ROW:.*]] = vector.transfer_read {{.*}} : tensor<32xf32>, vector<32xf32>
// CHECK: %[[ACC:.*]] = vector.broadcast %[[ROW]] : vector<32xf32> to vector<8x32xf32>
// CHECK: scf.for {{.*}} to %c64 step %c1 iter_args({{.*}} = %[[ACC]]) -> (vector<8x32xf32>)
// CHECK-COUNT-8: vector.fma {{.*}} : vector<32xf32>
// CHECK-NOT: vector.fma
// CHECK: arith.maximumf
// CHECK-NOT: linalg.generic
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%a: memref<8x64xf32>, %b: memref<64x32xf32>, %bias: memref<32xf32>, %out: memref<8x32xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %ta = bufferization.to_tensor %a restrict : memref<8x64xf32> to tensor<8x64xf32>
    %tb = bufferization.to_tensor %b restrict : memref<64x32xf32> to tensor<64x32xf32>
    %tc = bufferization.to_tensor %bias restrict : memref<32xf32> to tensor<32xf32>
    %e = tensor.empty() : tensor<8x32xf32>
    %init = linalg.generic {indexing_maps = [affine_map<(m, n) -> (n)>, affine_map<(m, n) -> (m, n)>], iterator_types = ["parallel", "parallel"]} ins(%tc : tensor<32xf32>) outs(%e : tensor<8x32xf32>) {
    ^bb0(%in: f32, %o: f32):
      linalg.yield %in : f32
    } -> tensor<8x32xf32>
    %c = linalg.matmul ins(%ta, %tb : tensor<8x64xf32>, tensor<64x32xf32>) outs(%init : tensor<8x32xf32>) -> tensor<8x32xf32>
    %zero = arith.constant 0.0 : f32
    %e2 = tensor.empty() : tensor<8x32xf32>
    %r = linalg.generic {indexing_maps = [affine_map<(m, n) -> (m, n)>, affine_map<(m, n) -> (m, n)>], iterator_types = ["parallel", "parallel"]} ins(%c : tensor<8x32xf32>) outs(%e2 : tensor<8x32xf32>) {
    ^bb0(%in: f32, %o: f32):
      %m = arith.maximumf %in, %zero : f32
      linalg.yield %m : f32
    } -> tensor<8x32xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<8x32xf32>, memref<8x32xf32>) -> ()
    return
  }
}
