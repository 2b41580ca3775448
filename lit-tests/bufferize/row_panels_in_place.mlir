// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize | aotc-opt - --pass bufferize | FileCheck %s

// A 1x1 convolution of 49 positions on row panels of its 64 x 40 weight
// (8 rows each) writes its 48 columns straight into the output, through
// a [8, 8, 3, 16] view of the output's first 48 columns; the 49th, a
// product of its own fused with the first (optimize/row_panels.mlir), is
// computed into a buffer of its own and copied into the output's last
// column (rows 49 floats apart): 64 floats. The output is not copied.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK-NOT: memref.copy
// CHECK-NOT: linalg.copy
// CHECK: %[[OUT:.*]] = memref.collapse_shape %{{.*}} : memref<1x64x7x7xf32> into memref<64x49xf32>
// CHECK: %[[MAIN:.*]] = memref.subview %[[OUT]][0, 0] [64, 48] [1, 1]
// CHECK: memref.expand_shape %[[MAIN]] {{.*}} into memref<8x8x3x16xf32, strided<[392, 49, 16, 1]>>
// CHECK: %[[OWN:.*]] = memref.view {{.*}} to memref<8x1x8xf32>
// CHECK-NOT: memref.copy
// CHECK-NOT: linalg.copy
// CHECK: %[[COLUMN:.*]] = memref.collapse_shape %[[OWN]]
// CHECK-NEXT: %[[LAST:.*]] = memref.subview %[[OUT]][0, 48] [64, 1] [1, 1] : memref<64x49xf32> to memref<64xf32, strided<[49], offset: 48>>
// CHECK-NEXT: linalg.copy ins(%[[COLUMN]] : memref<64xf32>) outs(%[[LAST]] : memref<64xf32, strided<[49], offset: 48>>)
// CHECK-NOT: memref.copy
// CHECK-NOT: linalg.copy
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x40x7x7xf32>, %w: tensor<64x40x1x1xf32>, %b: tensor<64xf32>) -> tensor<1x64x7x7xf32> {
    %y = "aten.conv2d"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x40x7x7xf32>, tensor<64x40x1x1xf32>, tensor<64xf32>) -> tensor<1x64x7x7xf32>
    return %y : tensor<1x64x7x7xf32>
  }
}
