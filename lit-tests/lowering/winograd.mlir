// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// (the map the rows read the stacked outputs by: stacked[a, b, f, i, j])
// CHECK: #[[ROWS:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d2, d4, d0, d1, d3)>
// A 3x3 stride-1 convolution with 32 channels and 7x7 tiles (14x14
// outputs) is Winograd F(2x2, 3x3):
// CHECK-LABEL: func.func @aotc_w_forward
// the filter transform G g G^T, tagged for weight packing: [16, F, C]
// CHECK: arith.constant dense<{{.*}}> : tensor<16x3x3xf32>
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]} ins({{.*}} : tensor<16x3x3xf32>, tensor<48x32x3x3xf32>) outs({{.*}} : tensor<16x48x32xf32>) attrs =  {aotc.winograd_filter}
// the padded input split by column parity, then one pass for the 16
// elements of every tile's B^T d B, from 16 strided slices
// CHECK: linalg.generic {{.*}} outs({{.*}} : tensor<32x16x2x8xf32>)
// CHECK: tensor.extract_slice {{.*}}[0, 3, 1, 1] [32, 7, 1, 7] [1, 2, 1, 1] : tensor<32x16x2x8xf32> to tensor<32x7x1x7xf32>
// CHECK: %{{.*}}:16 = linalg.generic
// CHECK: } -> (tensor<32x7x7xf32>, tensor<32x7x7xf32>,
// 16 products [48, 32] x [32, 49], few columns: on row panels of U, each
// filter transform seen as [F/8, C, 8] (stored so: weight packing), the
// first 48 columns in three groups of 16 from zeros in the result's slot,
// the 49th with the panel's 8 rows as the vector, from zeros of its own;
// both parts are inserted after both products (which are then
// independent: the matmul strategy fuses their block loops)
// CHECK: tensor.expand_shape {{.*}} output_shape [16, 6, 8, 32] : tensor<16x48x32xf32> into tensor<16x6x8x32xf32>
// CHECK: linalg.transpose ins({{.*}} : tensor<16x6x8x32xf32>) outs({{.*}} : tensor<16x6x32x8xf32>) permutation = [0, 1, 3, 2]
// CHECK: %[[RESULT:.*]] = tensor.empty() {{.*}} : tensor<16x48x49xf32>
// CHECK: tensor.extract_slice %[[RESULT]][0, 0, 0] [16, 48, 48]
// CHECK: %[[ZEROS:.*]] = linalg.fill {{.*}} -> tensor<16x6x8x3x16xf32>
// CHECK: %[[MAIN:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]} ins({{.*}} : tensor<16x6x32x8xf32>, tensor<16x32x3x16xf32>) outs(%[[ZEROS]] : tensor<16x6x8x3x16xf32>)
// CHECK-NOT: tensor.insert_slice
// CHECK: %[[OWN:.*]] = tensor.empty() {{.*}}: tensor<16x6x1x8xf32>
// CHECK: %[[ZEROS_REST:.*]] = linalg.fill {{.*}} outs(%[[OWN]] : tensor<16x6x1x8xf32>) -> tensor<16x6x1x8xf32>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins({{.*}} : tensor<16x32x1xf32>, tensor<16x6x32x8xf32>) outs(%[[ZEROS_REST]] : tensor<16x6x1x8xf32>)
// CHECK: %[[WITH_MAIN:.*]] = tensor.insert_slice {{.*}} into %[[RESULT]][0, 0, 0] [16, 48, 48]
// CHECK: tensor.insert_slice {{.*}} into %[[WITH_MAIN]][0, 0, 48] [16, 48, 1]
// A^T M A, four outputs per tile (every operand read alike: one flat
// loop), each a slice of one [2, 2, F, TH, TW] tensor, read into rows
// with the bias added
// CHECK: %{{.*}}:4 = linalg.generic {{.*}} ins({{.*}} : {{.*}}tensor<48x7x7xf32>) outs(
// CHECK: } -> (tensor<48x7x7xf32>, tensor<48x7x7xf32>, tensor<48x7x7xf32>, tensor<48x7x7xf32>)
// CHECK: tensor.insert_slice {{.*}}[0, 0, 0, 0, 0] [1, 1, 48, 7, 7] [1, 1, 1, 1, 1] : tensor<1x1x48x7x7xf32> into tensor<2x2x48x7x7xf32>
// CHECK: tensor.insert_slice {{.*}}[1, 1, 0, 0, 0] [1, 1, 48, 7, 7] [1, 1, 1, 1, 1] : tensor<1x1x48x7x7xf32> into tensor<2x2x48x7x7xf32>
// CHECK: linalg.generic {indexing_maps = [#[[ROWS]], {{.*}}ins({{.*}} : tensor<2x2x48x7x7xf32>, tensor<48xf32>) outs({{.*}} : tensor<48x7x2x7x2xf32>)
// CHECK: arith.addf
// CHECK: tensor.collapse_shape {{.*}} : tensor<48x7x2x7x2xf32> into tensor<48x14x14xf32>
// A strided 3x3 convolution stays im2col + a product (49 columns: on row
// panels of its weight, [48 / 8, 288, 8], by the first 48 columns in
// three groups of 16)
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<6x288x8xf32>, tensor<288x3x16xf32>) outs({{.*}} : tensor<6x8x3x16xf32>)
// CHECK-NOT: aotc.winograd_filter
module attributes {aotc.model = "w"} {
  func.func @forward(%x: tensor<1x32x14x14xf32>, %w: tensor<48x32x3x3xf32>, %b: tensor<48xf32>) -> (tensor<1x48x14x14xf32>, tensor<1x48x7x7xf32>) {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x32x14x14xf32>, tensor<48x32x3x3xf32>, tensor<48xf32>) -> tensor<1x48x14x14xf32>
    %s = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x32x14x14xf32>, tensor<48x32x3x3xf32>, tensor<48xf32>) -> tensor<1x48x7x7xf32>
    return %y, %s : tensor<1x48x14x14xf32>, tensor<1x48x7x7xf32>
  }
}
