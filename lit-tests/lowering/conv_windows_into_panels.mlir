// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// One image whose output rows are whole 16-column panels, 100 rows of
// col (4 channels x 25 taps), gathered and multiplied one block of output
// rows at a time: rows of one panel pair up, so 4 blocks of 2 rows. In a
// block, each tap's window [1, 4, 2, 16] (tap (1, 0)'s from the padded
// input's row after the block's first) is split into panels
// [1, 4, 2, 1, 16], transposed to [2, 1, 4, 1, 16] (output row, panel,
// channel, the image's unit dim, column) and inserted
// as the tap's rows of the block's packed panels [2, 1, 4, 5, 5, 16];
// those are viewed as [2 panels, 100, 16] and the product reads them (the
// panel product's maps) into the block's panels of the result, from the
// bias broadcast there. (Output rows that are not whole panels keep col
// [K, N] and a linalg.matmul: conv.mlir.)
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.pad {{.*}} low[0, 0, 2, 2] high[0, 0, 2, 2]
// CHECK: %[[RESULT:.*]] = tensor.empty() {{.*}} : tensor<8x8x16xf32>
// CHECK: scf.for %[[BLOCK:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[RESULT]]) -> (tensor<8x8x16xf32>)
// CHECK: %[[ROW:.*]] = arith.muli %[[BLOCK]], %{{.*}} : index
// CHECK: tensor.empty() {{.*}} : tensor<2x1x4x5x5x16xf32>
// CHECK: %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT: %[[TAP_ROW:.*]] = arith.addi %[[ROW]], %[[ONE]] : index
// CHECK-NEXT: tensor.extract_slice {{.*}}[0, 0, 0, 0, %[[TAP_ROW]], 0] [1, 4, 1, 1, 2, 16]
// CHECK-NEXT: tensor.expand_shape {{.*}} {{\[}}[0], [1], [2], [3, 4]] output_shape [1, 4, 2, 1, 16]
// CHECK: linalg.transpose ins({{.*}} : tensor<1x4x2x1x16xf32>) outs({{.*}} : tensor<2x1x4x1x16xf32>) permutation = [2, 3, 1, 0, 4]
// CHECK-NEXT: tensor.insert_slice {{.*}}[0, 0, 0, 1, 0, 0] [2, 1, 4, 1, 1, 16] [1, 1, 1, 1, 1, 1] : tensor<2x1x4x1x16xf32> into tensor<2x1x4x5x5x16xf32>
// CHECK: tensor.expand_shape {{.*}} output_shape [2, 100, 16]
// CHECK: %[[PANEL:.*]] = arith.muli %[[BLOCK]], %{{.*}} : index
// CHECK-NEXT: %[[SLOT:.*]] = tensor.extract_slice %[[ACC]][0, %[[PANEL]], 0] [8, 2, 16] [1, 1, 1] : tensor<8x8x16xf32> to tensor<8x2x16xf32>
// CHECK-NEXT: %[[START:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<8xf32>) outs(%[[SLOT]] : tensor<8x2x16xf32>)
// CHECK: %[[PRODUCT:.*]] = linalg.generic {indexing_maps = [#map2, #map3, #map4], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins({{.*}} : tensor<8x100xf32>, tensor<2x100x16xf32>) outs(%[[START]] : tensor<8x2x16xf32>)
// CHECK: %[[UPDATED:.*]] = tensor.insert_slice %[[PRODUCT]] into %[[ACC]][0, %[[PANEL]], 0] [8, 2, 16] [1, 1, 1]
// CHECK-NEXT: scf.yield %[[UPDATED]]
// CHECK-NEXT: } {aotc.parallel}
// CHECK-NOT: linalg.matmul
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x4x8x16xf32>, %w: tensor<8x4x5x5xf32>, %b: tensor<8xf32>) -> tensor<1x8x8x16xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], padding = array<i64: 2, 2>} : (tensor<1x4x8x16xf32>, tensor<8x4x5x5xf32>, tensor<8xf32>) -> tensor<1x8x8x16xf32>
    return %y : tensor<1x8x8x16xf32>
  }
}
