// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A strided depthwise convolution over sides that are no multiples of the
// stride (7 x 9, stride 2): the input is not padded to a multiple first (a
// copy of all of it); its 2x2 phases (4 x 5 rows each) are made in pieces,
// each copied into its box of the phases: the whole groups (6 x 8
// elements, 3 x 4 phase rows), the last column (padded with zeros to a
// whole group), the last row, the corner. The phases are then padded by the
// convolution's padding (one phase row and column before), and each tap's
// window is a slice of one phase.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[PHASES:.*]] = tensor.empty() {{.*}} : tensor<1x2x2x2x4x5xf32>
// CHECK-NEXT: tensor.extract_slice %[[X:[0-9a-z_]+]][0, 0, 0, 0] [1, 2, 6, 8] [1, 1, 1, 1] : tensor<1x2x7x9xf32> to tensor<1x2x6x8xf32>
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 2, 3, 2, 4, 2]
// CHECK: %[[WHOLE:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x2x2x3x4xf32>)
// CHECK: %[[P1:.*]] = tensor.insert_slice %[[WHOLE]] into %[[PHASES]][0, 0, 0, 0, 0, 0] [1, 2, 2, 2, 3, 4]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 0, 8] [1, 2, 6, 1]
// CHECK: tensor.pad {{.*}} low[0, 0, 0, 0] high[0, 0, 0, 1]
// CHECK: %[[COLUMN:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x2x2x3x1xf32>)
// CHECK: %[[P2:.*]] = tensor.insert_slice %[[COLUMN]] into %[[P1]][0, 0, 0, 0, 0, 4] [1, 2, 2, 2, 3, 1]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 6, 0] [1, 2, 1, 8]
// CHECK: tensor.pad {{.*}} low[0, 0, 0, 0] high[0, 0, 1, 0]
// CHECK: %[[P3:.*]] = tensor.insert_slice %{{.*}} into %[[P2]][0, 0, 0, 0, 3, 0] [1, 2, 2, 2, 1, 4]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 6, 8] [1, 2, 1, 1]
// CHECK: tensor.pad {{.*}} low[0, 0, 0, 0] high[0, 0, 1, 1]
// CHECK: %[[ALL:.*]] = tensor.insert_slice %{{.*}} into %[[P3]][0, 0, 0, 0, 3, 4] [1, 2, 2, 2, 1, 1]
// CHECK: %[[PADDED:.*]] = tensor.pad %[[ALL]] low[0, 0, 0, 0, 1, 1] high[0, 0, 0, 0, 0, 0]
// tap (0, 0) reads input (2i - 1, 2j - 1): phase (1, 1) from padded row (0, 0)
// CHECK: tensor.extract_slice %[[PADDED]][0, 0, 1, 1, 0, 0] [1, 2, 1, 1, 4, 5]
// CHECK-COUNT-8: tensor.extract_slice %[[PADDED]]
// CHECK: linalg.generic
// CHECK-COUNT-9: math.fma
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x2x7x9xf32>, %w: tensor<2x1x3x3xf32>) -> tensor<1x2x4x5xf32> {
    %y = "aten.conv2d"(%x, %w) {operand_names = ["input", "weight"], stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x2x7x9xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x4x5xf32>
    return %y : tensor<1x2x4x5xf32>
  }
}
