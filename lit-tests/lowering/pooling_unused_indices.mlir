// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// The core ATen form always returns indices; when nothing reads them they
// are not computed.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: arith.maximumf
// CHECK-NOT: xi64>
// CHECK-NOT: arith.select
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x4x4xf32> {
    %y, %i = "aten.max_pool2d_with_indices"(%x) {operand_names = ["self"], kernel_size = array<i64: 2, 2>} : (tensor<1x2x8x8xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xi64>)
    return %y : tensor<1x2x4x4xf32>
  }
}
