// RUN: aotc-opt %s --pass optimize | FileCheck %s

// A sum along rows: each row accumulates a tile of vectors of partial sums,
// then the lanes are summed once as a tree (`fastmath<reassoc>`: LLVM
// shuffles and adds halves; an ordered reduction would be one scalar add
// after another, 32 of them for a tile of four 8-lane vectors).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c8 step %c1
// CHECK: scf.for {{.*}} to %c128 step %c32 iter_args({{.*}}) -> (vector<32xf32>)
// CHECK: arith.addf {{.*}} : vector<32xf32>
// CHECK: vector.reduction <add>, {{.*}} fastmath<reassoc> : vector<32xf32> into f32
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<8x128xf32>, %out: memref<8xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %t = bufferization.to_tensor %x restrict : memref<8x128xf32> to tensor<8x128xf32>
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<8xf32>
    %init = linalg.fill ins(%zero : f32) outs(%e : tensor<8xf32>) -> tensor<8xf32>
    %s = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]} ins(%t : tensor<8x128xf32>) outs(%init : tensor<8xf32>) {
    ^bb0(%in: f32, %acc: f32):
      %a = arith.addf %in, %acc : f32
      linalg.yield %a : f32
    } -> tensor<8xf32>
    bufferization.materialize_in_destination %s in restrict writable %out : (tensor<8xf32>, memref<8xf32>) -> ()
    return
  }
}
