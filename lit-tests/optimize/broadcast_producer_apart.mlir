// RUN: aotc-opt %s --pass lower-aten > %t.mlir
// RUN: aotc-opt %t.mlir --pass optimize --vector-bits 512 --vector-registers 32 | FileCheck %s

// A squeeze-and-excite gate: sigmoid of a per-channel value, times every
// pixel of its channel. The sigmoid (an exp polynomial) stays its own op
// over the 4 channels instead of being fused into the product, where it
// would run once per pixel. A cheap producer (hardsigmoid: an add, a
// clamp and a scale) is still fused.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for {{.*}} -> (tensor<1x4x1x1xf32>)
// CHECK: math.fma
// CHECK: arith.divf
// CHECK: scf.for {{.*}} -> (tensor<1x4x56x48xf32>)
// CHECK-NOT: math.fma
// CHECK: arith.mulf {{.*}} : vector<48xf32>
// CHECK: scf.for {{.*}} -> (tensor<1x4x56x48xf32>)
// CHECK-NOT: math.fma
// CHECK: arith.divf {{.*}} : vector<48xf32>
// CHECK-NEXT: arith.mulf {{.*}} : vector<48xf32>
// CHECK-NOT: math.fma
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x4x56x56xf32>, %s: tensor<1x4x1x1xf32>) -> (tensor<1x4x56x56xf32>, tensor<1x4x56x56xf32>) {
    %g = "aten.sigmoid"(%s) {operand_names = ["self"]} : (tensor<1x4x1x1xf32>) -> tensor<1x4x1x1xf32>
    %y = "aten.mul_tensor"(%x, %g) {operand_names = ["self", "other"]} : (tensor<1x4x56x56xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x56x56xf32>
    %h = "aten.hardsigmoid"(%s) {operand_names = ["self"]} : (tensor<1x4x1x1xf32>) -> tensor<1x4x1x1xf32>
    %z = "aten.mul_tensor"(%x, %h) {operand_names = ["self", "other"]} : (tensor<1x4x56x56xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x56x56xf32>
    return %y, %z : tensor<1x4x56x56xf32>, tensor<1x4x56x56xf32>
  }
}
