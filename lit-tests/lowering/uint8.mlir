// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// uint8 is `ui8` in the aten dialect and i8 in lowered code, with unsigned
// compares, extensions and maxima: 200 > 100 holds, as in torch.
// CHECK-LABEL: func.func @aotc_t_forward(%arg0: memref<4xi8>, %arg1: memref<4xi8>, %arg2: memref<4xi8>, %arg3: memref<4xf32>
// CHECK: arith.cmpi ugt, {{.*}} : i8
// CHECK: arith.uitofp {{.*}} : i8 to f32
// CHECK: arith.maxui {{.*}} : i8
module attributes {aotc.model = "t"} {
  func.func @forward(%a: tensor<4xui8>, %b: tensor<4xui8>) -> (tensor<4xi1>, tensor<4xf32>, tensor<4xui8>) {
    %g = "aten.gt_tensor"(%a, %b) {operand_names = ["self", "other"]} : (tensor<4xui8>, tensor<4xui8>) -> tensor<4xi1>
    %f = "aten.to_copy"(%a) {operand_names = ["self"]} : (tensor<4xui8>) -> tensor<4xf32>
    %m = "aten.maximum"(%a, %b) {operand_names = ["self", "other"]} : (tensor<4xui8>, tensor<4xui8>) -> tensor<4xui8>
    return %g, %f, %m : tensor<4xi1>, tensor<4xf32>, tensor<4xui8>
  }
}
