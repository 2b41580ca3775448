// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// (the map the rows read the stacked outputs by: stacked[a, b, f, i, j])
// CHECK: #[[ROWS:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d2, d4, d0, d1, d3)>
// A 3x3 stride-1 convolution with 28x28 outputs has 49 4x4 output tiles:
// Winograd F(4x4, 3x3) on 6x6 tiles.
// CHECK-LABEL: func.func @aotc_w_forward
// the filter transform G g G^T, tagged for weight packing: [36, F, C]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<36x3x3xf32>, tensor<32x32x3x3xf32>) outs({{.*}} : tensor<36x32x32xf32>) attrs =  {aotc.winograd_filter}
// the padded input [30, 30] padded on to [4 TH + 2, 4 (TW + 1)] = [30, 32]
// and split by column phase modulo 4, then the tiles' 36 slices (rows
// step 4; slice (i, j) at phase j % 4, column j / 4) and one pass for the
// 36 elements of every tile's B^T d B
// CHECK: tensor.pad {{.*}} low[0, 0, 0, 0] high[0, 0, 0, 2]
// CHECK: outs({{.*}} : tensor<32x30x4x8xf32>)
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0] [32, 7, 1, 7] [1, 4, 1, 1] : tensor<32x30x4x8xf32> to tensor<32x7x1x7xf32>
// CHECK: tensor.extract_slice {{.*}}[0, 5, 1, 1] [32, 7, 1, 7] [1, 4, 1, 1] : tensor<32x30x4x8xf32> to tensor<32x7x1x7xf32>
// CHECK: %{{.*}}:36 = linalg.generic
// CHECK: } -> (tensor<32x7x7xf32>, tensor<32x7x7xf32>,
// 36 products [32, 32] x [32, 49] on row panels of U: 48 columns in
// three groups of 16, the 49th apart
// CHECK: linalg.transpose ins({{.*}} : tensor<36x4x8x32xf32>) outs({{.*}} : tensor<36x4x32x8xf32>) permutation = [0, 1, 3, 2]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<36x4x32x8xf32>, tensor<36x32x3x16xf32>) outs({{.*}} : tensor<36x4x8x3x16xf32>)
// A^T M A: 16 outputs per tile from 36 slices, each a slice of one
// [4, 4, F, TH, TW] tensor, read into rows of 4 blocks of 4 with the bias
// added
// CHECK: %{{.*}}:16 = linalg.generic
// CHECK: } -> (tensor<32x7x7xf32>,
// CHECK: tensor.insert_slice {{.*}}[3, 3, 0, 0, 0] [1, 1, 32, 7, 7] [1, 1, 1, 1, 1] : tensor<1x1x32x7x7xf32> into tensor<4x4x32x7x7xf32>
// CHECK: linalg.generic {indexing_maps = [#[[ROWS]], {{.*}}ins({{.*}} : tensor<4x4x32x7x7xf32>, tensor<32xf32>) outs({{.*}} : tensor<32x7x4x7x4xf32>)
// CHECK: arith.addf
// CHECK: tensor.collapse_shape {{.*}} : tensor<32x7x4x7x4xf32> into tensor<32x28x28xf32>
module attributes {aotc.model = "w"} {
  func.func @forward(%x: tensor<1x32x28x28xf32>, %w: tensor<32x32x3x3xf32>, %b: tensor<32xf32>) -> tensor<1x32x28x28xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x32x28x28xf32>, tensor<32x32x3x3xf32>, tensor<32xf32>) -> tensor<1x32x28x28xf32>
    return %y : tensor<1x32x28x28xf32>
  }
}
