// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// Two attention layers given the same bool mask (BERT's and GPT-2's layers
// all share the model's): the lowering converts it into the additive mask
// once per layer, into an init without an id, so that CSE leaves one
// conversion (a select of its two constants), which both layers read
// (BERT: 4 conversions of a 128 x 128 mask were 0.75% of a run).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: arith.select %{{[^,]*}}, %cst{{[_0-9]*}}, %cst{{[_0-9]*}} : vector<{{[0-9x]*}}xi1>
// CHECK-NOT: arith.select %{{[^,]*}}, %cst{{[_0-9]*}}, %cst{{[_0-9]*}} :
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%q: tensor<1x2x64x16xf32>, %k: tensor<1x2x32x16xf32>, %v: tensor<1x2x32x16xf32>, %m: tensor<1x1x64x32xi1>) -> (tensor<1x2x64x16xf32>) {
    %a = "aten.scaled_dot_product_attention"(%q, %k, %v, %m) {operand_names = ["query", "key", "value", "attn_mask"]} : (tensor<1x2x64x16xf32>, tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>, tensor<1x1x64x32xi1>) -> tensor<1x2x64x16xf32>
    %b = "aten.scaled_dot_product_attention"(%a, %k, %v, %m) {operand_names = ["query", "key", "value", "attn_mask"]} : (tensor<1x2x64x16xf32>, tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>, tensor<1x1x64x32xi1>) -> tensor<1x2x64x16xf32>
    return %b : tensor<1x2x64x16xf32>
  }
}
