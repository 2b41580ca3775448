// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A matrix times one column (a squeeze-and-excite block's 1x1 convolution
// of its pooled channels) is the dot products of the weight's rows with the
// column read as one row: a reduction along the rows, not a matmul.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK-NOT: linalg.matmul
// CHECK: linalg.generic {indexing_maps = [#[[ROW:map[0-9]*]], #[[MATRIX:map[0-9]*]], #[[OUT:map[0-9]*]]], iterator_types = ["parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<1x48xf32>, tensor<12x48xf32>) outs(%{{.*}} : tensor<12xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: linalg.generic {indexing_maps = [#[[ROW]], #[[MATRIX]], #[[OUT]]], iterator_types = ["parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<1x40xf32>, tensor<24x40xf32>) outs(%{{.*}} : tensor<24xf32>)
// CHECK-NOT: linalg.matmul
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x48x1x1xf32>, %w: tensor<12x48x1x1xf32>, %b: tensor<12xf32>, %a: tensor<24x40xf32>, %c: tensor<40x1xf32>) -> (tensor<1x12x1x1xf32>, tensor<24x1xf32>) {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x48x1x1xf32>, tensor<12x48x1x1xf32>, tensor<12xf32>) -> tensor<1x12x1x1xf32>
    %z = "aten.mm"(%a, %c) {operand_names = ["self", "mat2"]} : (tensor<24x40xf32>, tensor<40x1xf32>) -> tensor<24x1xf32>
    return %y, %z : tensor<1x12x1x1xf32>, tensor<24x1xf32>
  }
}
