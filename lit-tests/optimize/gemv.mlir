// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A linear layer on one row is a reduction along the weight's rows. Its
// rows (1176 floats) are not a multiple of the 16-lane vector but are of 8:
// each row is reduced in half vectors (a 24-float tile of partial sums),
// then across the lanes, instead of element by element.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} to %c10 step %c1
// CHECK: scf.for {{.*}} to %c1176 step %c24 {{.*}} -> (vector<24xf32>)
// CHECK: vector.transfer_read {{.*}} vector<24xf32>
// CHECK: arith.mulf {{.*}} : vector<24xf32>
// CHECK: arith.addf {{.*}} : vector<24xf32>
// CHECK: vector.reduction <add>, {{.*}} : vector<24xf32> into f32
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x1176xf32>, %w: tensor<10x1176xf32>, %b: tensor<10xf32>) -> tensor<1x10xf32> {
    %y = "aten.linear"(%x, %w, %b) {operand_names = ["input", "weight", "bias"]} : (tensor<1x1176xf32>, tensor<10x1176xf32>, tensor<10xf32>) -> tensor<1x10xf32>
    return %y : tensor<1x10xf32>
  }
}
