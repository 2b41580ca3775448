// RUN: aotc-opt %s --pass lower-aten | FileCheck %s

// sigmoid(x) from t = e^-|x|: 1 / (1 + t) at x >= 0, t / (1 + t) below,
// so the denominator lies in [1, 2] and, in f32, the division may become a
// reciprocal estimate and a Newton step (arcp, ninf, contract); f64 keeps
// an exact division. The tanh form of GELU is x * sigmoid(2u), the same
// generic code.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: linalg.generic
// CHECK: %[[ABS:.*]] = math.absf %in : f32
// CHECK: %[[NEG:.*]] = arith.negf %[[ABS]] : f32
// CHECK: math.fma
// CHECK: %[[DEN:.*]] = arith.addf %{{.*}}, %{{.*}} : f32
// CHECK: %[[R:.*]] = arith.divf %{{.*}}, %[[DEN]] fastmath<ninf,arcp,contract> : f32
// CHECK: %[[BELOW:.*]] = arith.mulf %{{.*}}, %[[R]] : f32
// CHECK: %[[LT:.*]] = arith.cmpf olt, %in, %{{.*}} : f32
// CHECK: arith.select %[[LT]], %[[BELOW]], %[[R]] : f32
// CHECK: linalg.generic
// CHECK: math.absf %in : f64
// CHECK: arith.divf %{{[^ ]*}}, %{{[^ ]*}} : f64
// CHECK: linalg.generic
// CHECK: math.absf
// CHECK: arith.divf {{.*}} fastmath<ninf,arcp,contract> : f32
// CHECK: arith.select
// CHECK: arith.mulf %in, %{{.*}} : f32
// CHECK-NOT: arith.divf
module attributes {aotc.model = "t"} {
  func.func @forward(%x: tensor<4x16xf32>, %d: tensor<4x16xf64>) -> (tensor<4x16xf32>, tensor<4x16xf64>, tensor<4x16xf32>) {
    %s = "aten.sigmoid"(%x) {operand_names = ["self"]} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    %s64 = "aten.sigmoid"(%d) {operand_names = ["self"]} : (tensor<4x16xf64>) -> tensor<4x16xf64>
    %g = "aten.gelu"(%x) {operand_names = ["self"], approximate = "tanh"} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    return %s, %s64, %g : tensor<4x16xf32>, tensor<4x16xf64>, tensor<4x16xf32>
  }
}
