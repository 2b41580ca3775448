// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A convolution whose product has ragged columns (6x6 = 36 outputs, not a
// multiple of the 16-column panel; too few tiles for Winograd) and a weight
// over 4 MiB (512 x 2304 floats) is computed transposed: out^T [36, 512] =
// col^T [36, 2304] @ w^T,
// a linear layer with 49 rows over the weight packed in 16-column panels
// ([32, 2304, 16], folded into the stored layout at compile time). Untransposed,
// the 49th column would be a dot product per row reading the whole weight
// again. For one image, col^T comes from a channels-last copy of the
// padded input: each of the 9 taps' windows [6, 6, 256] is a slice of it,
// inserted into col^T as [6, 6, 9, 256] (K ordered tap, channel); the
// weight is permuted to [512, 3, 3, 256] to match.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.transpose ins({{.*}} : tensor<1x256x1x1x8x8xf32>) outs({{.*}} : tensor<1x1x1x8x8x256xf32>) permutation = [0, 2, 3, 4, 5, 1]
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 2, 2, 0] [1, 1, 1, 6, 6, 256] [1, 1, 1, 1, 1, 1] : tensor<1x1x1x8x8x256xf32> to tensor<1x1x1x6x6x256xf32>
// CHECK: tensor.insert_slice {{.*}}[0, 0, 8, 0] [6, 6, 1, 256] [1, 1, 1, 1] : tensor<6x6x1x256xf32> into tensor<6x6x9x256xf32>
// CHECK: linalg.transpose ins({{.*}} : tensor<512x256x3x3xf32>) outs({{.*}} : tensor<512x3x3x256xf32>) permutation = [0, 2, 3, 1]
// CHECK: linalg.transpose ins({{.*}} : tensor<32x16x2304xf32>) outs({{.*}} : tensor<32x2304x16xf32>) permutation = [0, 2, 1]
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]{{.*}} ins({{.*}} : tensor<36x2304xf32>, tensor<32x2304x16xf32>) outs({{.*}} : tensor<36x32x16xf32>)
// CHECK: linalg.transpose ins({{.*}} : tensor<36x512xf32>) outs({{.*}} : tensor<512x36xf32>) permutation = [1, 0]
//
// A small weight (16 x 72 floats) is read as row panels instead
// ([2, 72, 8], folded into the stored layout; 8 rows, so that a register
// tile spans the 48 columns' three 16-column groups): the micro-kernel
// takes 48 columns, the 49th is computed with the panel's 8 rows as the
// vector dim. Nothing is transposed but the weight.
// CHECK-NOT: tensor<49x72xf32>
// CHECK: linalg.transpose ins({{.*}} : tensor<2x8x72xf32>) outs({{.*}} : tensor<2x72x8xf32>) permutation = [0, 2, 1]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<2x72x8xf32>, tensor<72x3x16xf32>) outs({{.*}} : tensor<2x8x3x16xf32>)
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<72x1xf32>, tensor<2x72x8xf32>) outs({{.*}} : tensor<2x1x8xf32>)
// CHECK-NOT: tensor<49x72xf32>
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x256x6x6xf32>, %w: tensor<512x256x3x3xf32>, %b: tensor<512xf32>, %x2: tensor<1x8x7x7xf32>, %w2: tensor<16x8x3x3xf32>) -> (tensor<1x512x6x6xf32>, tensor<1x16x7x7xf32>) {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x256x6x6xf32>, tensor<512x256x3x3xf32>, tensor<512xf32>) -> tensor<1x512x6x6xf32>
    %z = "aten.conv2d"(%x2, %w2) {operand_names = ["input", "weight"], stride = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x8x7x7xf32>, tensor<16x8x3x3xf32>) -> tensor<1x16x7x7xf32>
    return %y, %z : tensor<1x512x6x6xf32>, tensor<1x16x7x7xf32>
  }
}
