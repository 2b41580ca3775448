// RUN: aotc-opt %s --pass optimize | FileCheck %s

// Two generics of two results (Winograd's transforms) read a slice of their
// input through a collapse_shape: elementwise fusion expands each to the
// slice's rank and writes it into new empties of that shape, which carry no
// id of the lowering's. Each such empty gets an id of its own, so CSE keeps
// the two transforms' results apart (merged, bufferization would give the
// two a shared buffer, copied into each stack).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[A0:.*]] = tensor.empty() {aotc.id = {{[0-9]+}} : i64} : tensor<1x4x16xf32>
// CHECK: %[[A1:.*]] = tensor.empty() {aotc.id = {{[0-9]+}} : i64} : tensor<1x4x16xf32>
// CHECK: tensor.collapse_shape %[[A0]]
// CHECK: tensor.collapse_shape %[[A1]]
// CHECK: scf.for
// CHECK: tensor.empty() {aotc.id = 4 : i64} : tensor<2x4x16xf32>
// CHECK: %[[B0:.*]] = tensor.empty() {aotc.id = {{[0-9]+}} : i64} : tensor<1x4x16xf32>
// CHECK: %[[B1:.*]] = tensor.empty() {aotc.id = {{[0-9]+}} : i64} : tensor<1x4x16xf32>
// CHECK: tensor.collapse_shape %[[B0]]
// CHECK: tensor.collapse_shape %[[B1]]
// CHECK: scf.for
// CHECK: tensor.empty() {aotc.id = 5 : i64} : tensor<2x4x16xf32>
// CHECK: return
#id = affine_map<(d0, d1) -> (d0, d1)>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: tensor<2x4x16xf32>, %y: tensor<2x4x16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>) {
    %x0 = tensor.extract_slice %x[0, 0, 0] [1, 4, 16] [1, 1, 1] : tensor<2x4x16xf32> to tensor<1x4x16xf32>
    %x1 = tensor.collapse_shape %x0 [[0, 1], [2]] : tensor<1x4x16xf32> into tensor<4x16xf32>
    %e0 = tensor.empty() {aotc.id = 0 : i64} : tensor<4x16xf32>
    %e1 = tensor.empty() {aotc.id = 1 : i64} : tensor<4x16xf32>
    %r:2 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%x1 : tensor<4x16xf32>) outs(%e0, %e1 : tensor<4x16xf32>, tensor<4x16xf32>) {
    ^bb0(%v: f32, %o0: f32, %o1: f32):
      %p = arith.addf %v, %v : f32
      %q = arith.mulf %v, %v : f32
      linalg.yield %p, %q : f32, f32
    } -> (tensor<4x16xf32>, tensor<4x16xf32>)
    %a0 = tensor.expand_shape %r#0 [[0, 1], [2]] output_shape [1, 4, 16] : tensor<4x16xf32> into tensor<1x4x16xf32>
    %a1 = tensor.expand_shape %r#1 [[0, 1], [2]] output_shape [1, 4, 16] : tensor<4x16xf32> into tensor<1x4x16xf32>
    %sa = tensor.empty() {aotc.id = 4 : i64} : tensor<2x4x16xf32>
    %sa0 = tensor.insert_slice %a0 into %sa[0, 0, 0] [1, 4, 16] [1, 1, 1] : tensor<1x4x16xf32> into tensor<2x4x16xf32>
    %sa1 = tensor.insert_slice %a1 into %sa0[1, 0, 0] [1, 4, 16] [1, 1, 1] : tensor<1x4x16xf32> into tensor<2x4x16xf32>
    %y0 = tensor.extract_slice %y[0, 0, 0] [1, 4, 16] [1, 1, 1] : tensor<2x4x16xf32> to tensor<1x4x16xf32>
    %y1 = tensor.collapse_shape %y0 [[0, 1], [2]] : tensor<1x4x16xf32> into tensor<4x16xf32>
    %e2 = tensor.empty() {aotc.id = 2 : i64} : tensor<4x16xf32>
    %e3 = tensor.empty() {aotc.id = 3 : i64} : tensor<4x16xf32>
    %s:2 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%y1 : tensor<4x16xf32>) outs(%e2, %e3 : tensor<4x16xf32>, tensor<4x16xf32>) {
    ^bb0(%v: f32, %o0: f32, %o1: f32):
      %p = arith.addf %v, %v : f32
      %q = arith.mulf %v, %v : f32
      linalg.yield %p, %q : f32, f32
    } -> (tensor<4x16xf32>, tensor<4x16xf32>)
    %b0 = tensor.expand_shape %s#0 [[0, 1], [2]] output_shape [1, 4, 16] : tensor<4x16xf32> into tensor<1x4x16xf32>
    %b1 = tensor.expand_shape %s#1 [[0, 1], [2]] output_shape [1, 4, 16] : tensor<4x16xf32> into tensor<1x4x16xf32>
    %sb = tensor.empty() {aotc.id = 5 : i64} : tensor<2x4x16xf32>
    %sb0 = tensor.insert_slice %b0 into %sb[0, 0, 0] [1, 4, 16] [1, 1, 1] : tensor<1x4x16xf32> into tensor<2x4x16xf32>
    %sb1 = tensor.insert_slice %b1 into %sb0[1, 0, 0] [1, 4, 16] [1, 1, 1] : tensor<1x4x16xf32> into tensor<2x4x16xf32>
    return %sa1, %sb1 : tensor<2x4x16xf32>, tensor<2x4x16xf32>
  }
}
