// RUN: aotc-opt %s --pass lower-aten | aotc-opt - --pass optimize --vector-bits 512 --vector-registers 32 | aotc-opt - --pass bufferize | FileCheck %s

// A softmax over 8 rows of 256: one loop over rows (tagged `aotc.rows` by
// the row strategy), four passes over each row. The heaviest pass (the
// exponentials) prefetches the next row of the input (the last row
// prefetches itself), one prefetch per 64-byte line of its 64-element step;
// the other passes do not.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for %[[ROW:.*]] = %c0 to %c8 step %c1
// CHECK: scf.for
// CHECK-NOT: memref.prefetch
// CHECK: arith.cmpf ogt
// CHECK: scf.for %[[COLUMN:.*]] = %c0 to %c256 step %c64
// CHECK: %[[NEXT:.*]] = arith.addi %[[ROW]], %c1
// CHECK: %[[CLAMPED:.*]] = arith.minui %[[NEXT]], %c7
// CHECK: memref.prefetch %arg0[%[[CLAMPED]], %[[COLUMN]]], read, locality<3>, data : memref<8x256xf32>
// CHECK: %[[LINE1:.*]] = arith.addi %[[COLUMN]], %c16
// CHECK: memref.prefetch %arg0[%[[CLAMPED]], %[[LINE1]]]
// CHECK: %[[LINE2:.*]] = arith.addi %[[COLUMN]], %c32
// CHECK: memref.prefetch %arg0[%[[CLAMPED]], %[[LINE2]]]
// CHECK: %[[LINE3:.*]] = arith.addi %[[COLUMN]], %c48
// CHECK: memref.prefetch %arg0[%[[CLAMPED]], %[[LINE3]]]
// CHECK-NOT: memref.prefetch
// CHECK: math.fma
// CHECK-NOT: memref.prefetch
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<8x256xf32>) -> tensor<8x256xf32> {
    %s = "aten.softmax"(%x) {operand_names = ["self"], dim = -1 : i64, half_to_float = false} : (tensor<8x256xf32>) -> tensor<8x256xf32>
    return %s : tensor<8x256xf32>
  }
}
