// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A product whose rows have no divisor from 4 to 8 (19 here; ViT's 197
// tokens) is two products on the same packed panels: the rows up to the
// last multiple of 8 and the 3 past them, each inserted into the result.
// The register tiles would otherwise be one row high, each row streaming
// all of the weight. Each part's init is its own rows of the bias: the
// linear layer's bias broadcast over 16 and 3 rows, addmm's full [19, 32]
// self sliced at rows 0 and 16.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[X16:.*]] = tensor.extract_slice %{{.*}}[0, 0] [16, 24] [1, 1] : tensor<19x24xf32> to tensor<16x24xf32>
// CHECK: linalg.generic {{.*}} ins(%[[X16]], %{{.*}} : tensor<16x24xf32>, tensor<3x24x16xf32>) outs(%{{.*}} : tensor<16x3x16xf32>)
// CHECK: tensor.insert_slice %{{.*}}[0, 0] [16, 48] [1, 1] : tensor<16x48xf32> into tensor<19x48xf32>
// CHECK: %[[X3:.*]] = tensor.extract_slice %{{.*}}[16, 0] [3, 24] [1, 1] : tensor<19x24xf32> to tensor<3x24xf32>
// CHECK: linalg.generic {{.*}} ins(%[[X3]], %{{.*}} : tensor<3x24xf32>, tensor<3x24x16xf32>) outs(%{{.*}} : tensor<3x3x16xf32>)
// CHECK: tensor.insert_slice %{{.*}}[16, 0] [3, 48] [1, 1] : tensor<3x48xf32> into tensor<19x48xf32>
// CHECK: tensor.extract_slice %{{.*}}[0, 0] [16, 32] [1, 1] : tensor<19x32xf32> to tensor<16x32xf32>
// CHECK: ins(%{{.*}}, %{{.*}} : tensor<16x24xf32>, tensor<2x24x16xf32>) outs(%{{.*}} : tensor<16x2x16xf32>)
// CHECK: tensor.extract_slice %{{.*}}[16, 0] [3, 32] [1, 1] : tensor<19x32xf32> to tensor<3x32xf32>
// CHECK: ins(%{{.*}}, %{{.*}} : tensor<3x24xf32>, tensor<2x24x16xf32>) outs(%{{.*}} : tensor<3x2x16xf32>)
// CHECK: tensor.insert_slice %{{.*}}[16, 0] [3, 32] [1, 1] : tensor<3x32xf32> into tensor<19x32xf32>
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<19x24xf32>, %w: tensor<48x24xf32>, %b: tensor<48xf32>, %s: tensor<19x32xf32>, %a: tensor<19x24xf32>, %c: tensor<24x32xf32>) -> (tensor<19x48xf32>, tensor<19x32xf32>) {
    %y = "aten.linear"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<19x24xf32>, tensor<48x24xf32>, tensor<48xf32>) -> tensor<19x48xf32>
    %z = "aten.addmm"(%s, %a, %c) {operand_names = ["self", "mat1", "mat2"]} : (tensor<19x32xf32>, tensor<19x24xf32>, tensor<24x32xf32>) -> tensor<19x32xf32>
    return %y, %z : tensor<19x48xf32>, tensor<19x32xf32>
  }
}
