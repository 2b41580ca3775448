// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// Inputs and outputs become memrefs; bool is a byte at the boundary and i1 inside.
// CHECK-LABEL: func.func @aotc_t_forward(%arg0: memref<1x6x14x14xf32>, %arg1: memref<6x14x14xi8>, %arg2: memref<1x6x14x14xf32>, %arg3: memref<1x6x14x14xf32>, %arg4: memref<?xi8>)
// CHECK: bufferization.to_tensor %arg0 restrict
// CHECK: arith.cmpi ne, {{.*}} : i8
// relu is a compare and a select (one max instruction on x86): NaN and
// -0.0 pass through, as in torch
// CHECK: linalg.generic
// CHECK: %[[NEG:.*]] = arith.cmpf olt, %in, %[[ZERO:.*]] : f32
// CHECK-NEXT: arith.select %[[NEG]], %[[ZERO]], %in : f32
// mul with a bool tensor broadcast over the batch dim: uitofp then mulf
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[BCAST:.*]], #{{.*}}]
// CHECK: arith.uitofp {{.*}} : i1 to f32
// CHECK: arith.mulf
// CHECK: bufferization.materialize_in_destination {{.*}} in restrict writable %arg2
// CHECK: bufferization.materialize_in_destination {{.*}} in restrict writable %arg3
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<1x6x14x14xf32>, %mask: tensor<6x14x14xi1>) -> (tensor<1x6x14x14xf32>, tensor<1x6x14x14xf32>) {
    %r = "aten.relu"(%x) {operand_names = ["self"]} : (tensor<1x6x14x14xf32>) -> tensor<1x6x14x14xf32>
    %m = "aten.mul_tensor"(%r, %mask) {operand_names = ["self", "other"]} : (tensor<1x6x14x14xf32>, tensor<6x14x14xi1>) -> tensor<1x6x14x14xf32>
    return %m, %r : tensor<1x6x14x14xf32>, tensor<1x6x14x14xf32>
  }
}
