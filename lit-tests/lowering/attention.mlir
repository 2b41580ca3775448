// RUN: aotc-opt %s --pass lower-aten | FileCheck %s
// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize --vector-bits 512 --vector-registers 32 | aotc-opt - --pass bufferize | FileCheck %s --check-prefix=BUFFERS

// scaled_dot_product_attention (f32) is one tiled kernel with an online
// softmax. 2 heads x 128 queries x 512 keys, causal: per head, per block
// of 64 queries, a loop over blocks of 256 keys that ends at the block's
// last query, carrying the output block and the row maximum and sum.
// CHECK-LABEL: func.func @aotc_t_forward
// K^T once
// CHECK: linalg.transpose ins({{.*}} : tensor<2x512x16xf32>) outs({{.*}} : tensor<2x16x512xf32>)
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (tensor<2x128x16xf32>)
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (tensor<2x128x16xf32>)
// CHECK: tensor.extract_slice %{{.*}}[%[[B]], %[[I]], 0] [1, 64, 16]
// causal: the last key block the queries reach
// CHECK: %[[END:.*]] = arith.minui
// CHECK: %{{.*}}:3 = scf.for %[[J:.*]] = %{{.*}} to %[[END]] step %{{.*}} iter_args({{.*}}) -> (tensor<1x64x16xf32>, tensor<1x64xf32>, tensor<1x64xf32>)
// S = Q K^T for one block: [64, 16] x [16, 256], never more
// CHECK: tensor.extract_slice %{{.*}}[%[[B]], 0, %[[J]]] [1, 16, 256]
// CHECK: linalg.matmul ins({{.*}} : tensor<64x16xf32>, tensor<16x256xf32>) outs({{.*}} : tensor<64x256xf32>)
// the mask: a key after the query is -inf
// CHECK: linalg.index 2
// CHECK: arith.cmpi ugt
// the row maximum, the exponentials, the sum, P V
// CHECK: arith.maximumf
// CHECK: math.fma
// CHECK: linalg.matmul ins({{.*}} : tensor<64x256xf32>, tensor<256x16xf32>) outs({{.*}} : tensor<64x16xf32>)
// the running sum and output rescaled in place: c * l + rowsum P, c * O + P V
// CHECK: scf.yield {{.*}} : tensor<1x64x16xf32>, tensor<1x64xf32>, tensor<1x64xf32>
// out = O / l
// CHECK: arith.divf
// CHECK: tensor.insert_slice {{.*}} into %{{.*}}[%[[B]], %[[I]], 0] [1, 64, 16]
// CHECK-NOT: tensor<2x128x512xf32>
// CHECK-NOT: 128x512

// Bufferized, the blocks' temporaries live in the arena (64 x 256 scores at
// most) and the loops' state is updated in place.
// BUFFERS: // arena: {{[0-9]+}} bytes
// BUFFERS-NOT: memref<{{.*}}128x512xf32>
// BUFFERS-LABEL: func.func @aotc_t_forward
// BUFFERS: memref.view {{.*}} to memref<64x256xf32>
// BUFFERS-NOT: memref<{{.*}}128x512xf32>
// BUFFERS-NOT: memref.alloc
module attributes {aotc.model = "t"} {
  func.func @forward(%q: tensor<1x2x128x16xf32>, %k: tensor<1x2x512x16xf32>, %v: tensor<1x2x512x16xf32>) -> (tensor<1x2x128x16xf32>) {
    %a = "aten.scaled_dot_product_attention"(%q, %k, %v) {operand_names = ["query", "key", "value"], is_causal = true} : (tensor<1x2x128x16xf32>, tensor<1x2x512x16xf32>, tensor<1x2x512x16xf32>) -> tensor<1x2x128x16xf32>
    return %a : tensor<1x2x128x16xf32>
  }
}
