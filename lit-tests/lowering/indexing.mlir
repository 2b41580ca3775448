// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// embedding: each output element reads the weight row its index names;
// indices are wrapped when negative and clamped, so no read leaves the tensor.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.index 0
// CHECK: tensor.extract {{.*}} : tensor<2x3xi64>
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: tensor.extract {{.*}} : tensor<10x4xf32>
// cat inserts each input at its offset along the dim (a tensor list is 64
// optional operands in IRDL, so each can have its own type)
// CHECK: tensor.insert_slice {{.*}}[0, 0, 0] [2, 3, 4] [1, 1, 1] : tensor<2x3x4xf32> into tensor<2x6x4xf32>
// CHECK: tensor.insert_slice {{.*}}[0, 3, 0] [2, 3, 4] [1, 1, 1] : tensor<2x3x4xf32> into tensor<2x6x4xf32>
module attributes {aotc.model = "t"} {
  func.func @forward(%w: tensor<10x4xf32>, %i: tensor<2x3xi64>, %e: tensor<2x3x4xf32>) -> (tensor<2x3x4xf32>, tensor<2x6x4xf32>) {
    %o = "aten.embedding"(%w, %i) {operand_names = ["weight", "indices"]} : (tensor<10x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    %c = "aten.cat"(%e, %o) {operand_names = ["tensors", "tensors"], dim = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0>} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
    return %o, %c : tensor<2x3x4xf32>, tensor<2x6x4xf32>
  }
}
