// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A bool attention mask becomes the additive mask torch makes of it (0
// where attention is allowed, -inf elsewhere), once, before the loops over
// batch-heads and query blocks (ops on bools in memory are scalar loops);
// each block of scores then adds its slice of it.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[ADDITIVE:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<1x1x64x32xi1>) outs(%{{.*}} : tensor<1x1x64x32xf32>)
// CHECK: ^bb0(%[[ALLOWED:.*]]: i1, %{{.*}}: f32):
// CHECK: %[[ZERO:.*]] = arith.constant 0.0{{.*}} : f32
// CHECK: %[[INF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: arith.select %[[ALLOWED]], %[[ZERO]], %[[INF]] : f32
// CHECK: scf.for
// CHECK: scf.for
// CHECK: tensor.extract_slice {{.*}} : tensor<1x64x32xf32> to tensor<1x64x32xf32>
// CHECK: arith.mulf
// CHECK-NEXT: arith.addf
// CHECK-NOT: xi1>
module attributes {aotc.model = "t"} {
  func.func @forward(%q: tensor<1x2x64x16xf32>, %k: tensor<1x2x32x16xf32>, %v: tensor<1x2x32x16xf32>, %m: tensor<1x1x64x32xi1>) -> (tensor<1x2x64x16xf32>) {
    %a = "aten.scaled_dot_product_attention"(%q, %k, %v, %m) {operand_names = ["query", "key", "value", "attn_mask"]} : (tensor<1x2x64x16xf32>, tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>, tensor<1x1x64x32xi1>) -> tensor<1x2x64x16xf32>
    return %a : tensor<1x2x64x16xf32>
  }
}
