// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// Decompositions call core rules: silu is sigmoid then mul (two generics
// that fusion merges later), scaled_dot_product_attention (in f64: f32 has
// its own kernel, see attention.mlir) is a batch matmul, softmax and a
// second batch matmul. The scale (1/sqrt(8)) has no pass of its own:
// softmax applies it where it subtracts the row's max.
// (exp is a polynomial: see reduction.mlir)
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: math.fma
// CHECK: arith.divf
// CHECK: linalg.generic
// CHECK: arith.mulf
// CHECK: linalg.batch_matmul
// CHECK-NOT: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel"]
// CHECK: arith.maximumf
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.subf
// CHECK-NEXT: %[[SCALE:.*]] = arith.constant 0.35355339059327373 : f64
// CHECK-NEXT: arith.mulf {{.*}}, %[[SCALE]] : f64
// CHECK: math.exp
// CHECK: linalg.batch_matmul
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<2x8xf32>, %q: tensor<1x2x5x8xf64>, %k: tensor<1x2x7x8xf64>, %v: tensor<1x2x7x8xf64>) -> (tensor<2x8xf32>, tensor<1x2x5x8xf64>) {
    %s = "aten.silu"(%x) {operand_names = ["self"]} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %a = "aten.scaled_dot_product_attention"(%q, %k, %v) {operand_names = ["query", "key", "value"]} : (tensor<1x2x5x8xf64>, tensor<1x2x7x8xf64>, tensor<1x2x7x8xf64>) -> tensor<1x2x5x8xf64>
    return %s, %a : tensor<2x8xf32>, tensor<1x2x5x8xf64>
  }
}
