// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// A strided max pool over sides that are no multiples of the stride (7 x 9,
// 2x2 windows, stride 2, ceil_mode: the last window of each dim reads past
// the input): the input is neither padded nor copied. The maxima over the
// windows' rows are made in pieces into the phases of their columns (2
// phases of 5 columns): output rows 0..2 from both window rows, row 3
// (whose second window row is past the input) from its one row inside;
// columns 0..7 as whole groups, column 8 padded with -inf to a whole group.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK-NOT: tensor.pad {{.*}} : tensor<1x2x7x9xf32>
// CHECK: %[[PHASES:.*]] = tensor.empty() {{.*}} : tensor<1x2x1x2x4x5xf32>
// CHECK-NEXT: tensor.extract_slice %[[X:[0-9a-z_]+]][0, 0, 0, 0] [1, 2, 3, 8] [1, 1, 2, 1]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 1, 0] [1, 2, 3, 8] [1, 1, 2, 1]
// CHECK: arith.maximumf
// CHECK: %[[WHOLE:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x1x2x3x4xf32>)
// CHECK: %[[P1:.*]] = tensor.insert_slice %[[WHOLE]] into %[[PHASES]][0, 0, 0, 0, 0, 0] [1, 2, 1, 2, 3, 4]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 0, 8] [1, 2, 3, 1] [1, 1, 2, 1]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 1, 8] [1, 2, 3, 1] [1, 1, 2, 1]
// CHECK: arith.maximumf
// CHECK: arith.constant 0xFF800000 : f32
// CHECK-NEXT: tensor.pad {{.*}} low[0, 0, 0, 0] high[0, 0, 0, 1]
// CHECK: %[[COLUMN:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x1x2x3x1xf32>)
// CHECK: %[[P2:.*]] = tensor.insert_slice %[[COLUMN]] into %[[P1]][0, 0, 0, 0, 0, 4] [1, 2, 1, 2, 3, 1]
// the last row: one window row inside, its slice itself
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 6, 0] [1, 2, 1, 8] [1, 1, 2, 1]
// CHECK-NOT: arith.maximumf
// CHECK: %[[P3:.*]] = tensor.insert_slice %{{.*}} into %[[P2]][0, 0, 0, 0, 3, 0] [1, 2, 1, 2, 1, 4]
// CHECK-NEXT: tensor.extract_slice %[[X]][0, 0, 6, 8] [1, 2, 1, 1] [1, 1, 2, 1]
// CHECK-NOT: arith.maximumf
// CHECK: tensor.pad {{.*}} low[0, 0, 0, 0] high[0, 0, 0, 1]
// CHECK: %[[ALL:.*]] = tensor.insert_slice %{{.*}} into %[[P3]][0, 0, 0, 0, 3, 4] [1, 2, 1, 2, 1, 1]
// the 2 column taps' windows are the 2 phases, their maximum elementwise
// CHECK-NEXT: tensor.extract_slice %[[ALL]][0, 0, 0, 0, 0, 0] [1, 2, 1, 1, 4, 5]
// CHECK-NEXT: tensor.extract_slice %[[ALL]][0, 0, 0, 1, 0, 0] [1, 2, 1, 1, 4, 5]
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.maximumf
// CHECK-NEXT: linalg.yield
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x2x7x9xf32>) -> tensor<1x2x4x5xf32> {
    %y = "aten.max_pool2d"(%x) {operand_names = ["self"], kernel_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, ceil_mode = true} : (tensor<1x2x7x9xf32>) -> tensor<1x2x4x5xf32>
    return %y : tensor<1x2x4x5xf32>
  }
}
