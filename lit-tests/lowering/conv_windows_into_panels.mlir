// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// One image whose output rows are whole 16-column panels, 100 rows of
// col (4 channels x 25 taps): each tap's window [1, 4, 8, 16] is split
// into panels [1, 4, 8, 1, 16], transposed to [8, 1, 4, 1, 16] (output
// row, panel, channel, the image's unit dim, column) and inserted as the
// tap's rows of the packed panels [8, 1, 4, 5, 5, 16]; those are viewed
// as [8 panels, 100, 16] and the product reads them (the panel product's
// maps), from the bias broadcast over [8, 8 panels, 16]. (Output rows
// that are not whole panels keep col [K, N] and a linalg.matmul: conv.mlir.)
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: tensor.pad {{.*}} low[0, 0, 2, 2] high[0, 0, 2, 2]
// CHECK: tensor.empty() {{.*}} : tensor<8x1x4x5x5x16xf32>
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0, 1, 2] [1, 4, 1, 1, 8, 16]
// CHECK-NEXT: tensor.expand_shape {{.*}} {{\[}}[0], [1], [2], [3, 4]] output_shape [1, 4, 8, 1, 16]
// CHECK: linalg.transpose ins({{.*}} : tensor<1x4x8x1x16xf32>) outs({{.*}} : tensor<8x1x4x1x16xf32>) permutation = [2, 3, 1, 0, 4]
// CHECK-NEXT: tensor.insert_slice {{.*}}[0, 0, 0, 1, 2, 0] [8, 1, 4, 1, 1, 16] [1, 1, 1, 1, 1, 1] : tensor<8x1x4x1x16xf32> into tensor<8x1x4x5x5x16xf32>
// CHECK: tensor.expand_shape {{.*}} output_shape [8, 100, 16]
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<8xf32>) outs(%{{.*}} : tensor<8x8x16xf32>)
// CHECK: linalg.generic {indexing_maps = [#map2, #map3, #map4], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins({{.*}} : tensor<8x100xf32>, tensor<8x100x16xf32>) outs({{.*}} : tensor<8x8x16xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x4x8x16xf32>, %w: tensor<8x4x5x5xf32>, %b: tensor<8xf32>) -> tensor<1x8x8x16xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"], padding = array<i64: 2, 2>} : (tensor<1x4x8x16xf32>, tensor<8x4x5x5xf32>, tensor<8xf32>) -> tensor<1x8x8x16xf32>
    return %y : tensor<1x8x8x16xf32>
  }
}
