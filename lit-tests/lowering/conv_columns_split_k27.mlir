// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A convolution whose windows have K = 27 (3 channels x 3 x 3), too few
// for dot products of its last columns (K not a multiple of 8), and 25
// output columns (not a multiple of 16): two products, of the first 16
// columns and of the last 9, each from its own broadcast bias (which its
// register tiles then make), inserted into one result, rather than one
// product that the matmul strategy splits at the same column with the
// bias a pass of its own over the whole result (squeezenet's stem).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[RESULT:.*]] = tensor.empty() {{.*}} : tensor<4x25xf32>
// CHECK: %[[BIAS16:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<4xf32>) outs(%{{.*}} : tensor<4x16xf32>)
// CHECK: %[[MAIN:.*]] = linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<4x27xf32>, tensor<27x16xf32>) outs(%[[BIAS16]] : tensor<4x16xf32>)
// CHECK: %[[WITH_MAIN:.*]] = tensor.insert_slice %[[MAIN]] into %[[RESULT]][0, 0] [4, 16] [1, 1]
// CHECK: %[[BIAS9:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<4xf32>) outs(%{{.*}} : tensor<4x9xf32>)
// CHECK: %[[REST:.*]] = linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<4x27xf32>, tensor<27x9xf32>) outs(%[[BIAS9]] : tensor<4x9xf32>)
// CHECK: tensor.insert_slice %[[REST]] into %[[WITH_MAIN]][0, 16] [4, 9] [1, 1]
// CHECK-NOT: linalg.matmul
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x3x10x10xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) -> tensor<1x4x5x5xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>} : (tensor<1x3x10x10xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x5x5xf32>
    return %y : tensor<1x4x5x5xf32>
  }
}
