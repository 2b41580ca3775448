// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// Evaluation-mode batch norm, as torch's CPU inference kernel computes it:
// per channel scale = rsqrt(var + eps) * weight and shift = bias - mean * scale
// (small [C] generics), then one FMA per element: x * scale + shift, read
// through the channel map. No subtraction or second multiply per element.
// CHECK: #[[CHANNEL:.*]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: math.rsqrt {{.*}} : f32
// CHECK: linalg.generic {{.*}}outs({{.*}} : tensor<6xf32>)
// CHECK: arith.mulf
// CHECK: linalg.generic {{.*}}outs({{.*}} : tensor<6xf32>)
// CHECK: arith.mulf
// CHECK: arith.subf
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[CHANNEL]], #[[CHANNEL]], #{{.*}}]{{.*}}outs({{.*}} : tensor<2x6x5x4xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: math.fma
// CHECK-NEXT: linalg.yield
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<2x6x5x4xf32>, %w: tensor<6xf32>, %b: tensor<6xf32>, %m: tensor<6xf32>, %v: tensor<6xf32>) -> tensor<2x6x5x4xf32> {
    %y = "aten.batch_norm"(%x, %w, %b, %m, %v) {operand_names = ["input", "weight", "bias", "running_mean", "running_var"], training = false, momentum = 0.1 : f64, eps = 1.0e-5 : f64, cudnn_enabled = false, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<2x6x5x4xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<2x6x5x4xf32>
    return %y : tensor<2x6x5x4xf32>
  }
}
