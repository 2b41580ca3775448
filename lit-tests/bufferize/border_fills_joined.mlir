// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// A padded buffer: a loop over the 64 channels writes the interior, four
// loops over the channels fill the border strips. The fills join the
// interior's loop (each thread fills the border of the channels it
// writes), as their strips lie apart from the interior. (With fewer
// channels, see pad_in_place.mlir and parallel/collapse.mlir.)
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[P:.*]] = memref.view %arg2[{{.*}}]{{.*}} : memref<?xi8> to memref<64x10x10xf32>
// CHECK: %[[INSIDE:.*]] = memref.subview %[[P]][0, 1, 1] [64, 8, 8]
// CHECK: scf.for %[[C:.*]] = %c0 to %c64 step %c1 {
// CHECK: memref.subview %[[INSIDE]][%[[C]], 0, 0]
// CHECK: arith.maximumf
// CHECK-COUNT-4: linalg.fill
// CHECK: } {aotc.parallel}

// The same, but the first loop also reads channel 0, borders included, in
// every iteration: the fills stay out of it (they join each other, as
// loops that write strips apart).
// CHECK: scf.for
// CHECK: linalg.add ins({{.*}} : memref<1x10x10xf32, {{.*}}) outs
// CHECK-NEXT: } {aotc.parallel}
// CHECK: scf.for
// CHECK-COUNT-4: linalg.fill
// CHECK-NEXT: } {aotc.parallel}
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<64x8x8xf32>, %out: memref<64x10x10xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %zero = arith.constant 0.0 : f32
    %p = memref.alloc() : memref<64x10x10xf32>
    %inside = memref.subview %p[0, 1, 1] [64, 8, 8] [1, 1, 1] : memref<64x10x10xf32> to memref<64x8x8xf32, strided<[100, 10, 1], offset: 11>>
    scf.for %c = %c0 to %c64 step %c1 {
      %from = memref.subview %x[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      %to = memref.subview %inside[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32, strided<[100, 10, 1], offset: 11>> to memref<1x8x8xf32, strided<[100, 10, 1], offset: ?>>
      linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%from : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) outs(%to : memref<1x8x8xf32, strided<[100, 10, 1], offset: ?>>) {
      ^bb0(%v: f32, %o: f32):
        %r = arith.maximumf %v, %zero : f32
        linalg.yield %r : f32
      }
    } {aotc.parallel}
    %top = memref.subview %p[0, 0, 0] [64, 1, 10] [1, 1, 1] : memref<64x10x10xf32> to memref<64x1x10xf32, strided<[100, 10, 1]>>
    linalg.fill ins(%zero : f32) outs(%top : memref<64x1x10xf32, strided<[100, 10, 1]>>)
    %bottom = memref.subview %p[0, 9, 0] [64, 1, 10] [1, 1, 1] : memref<64x10x10xf32> to memref<64x1x10xf32, strided<[100, 10, 1], offset: 90>>
    linalg.fill ins(%zero : f32) outs(%bottom : memref<64x1x10xf32, strided<[100, 10, 1], offset: 90>>)
    %left = memref.subview %p[0, 1, 0] [64, 8, 1] [1, 1, 1] : memref<64x10x10xf32> to memref<64x8x1xf32, strided<[100, 10, 1], offset: 10>>
    linalg.fill ins(%zero : f32) outs(%left : memref<64x8x1xf32, strided<[100, 10, 1], offset: 10>>)
    %right = memref.subview %p[0, 1, 9] [64, 8, 1] [1, 1, 1] : memref<64x10x10xf32> to memref<64x8x1xf32, strided<[100, 10, 1], offset: 19>>
    linalg.fill ins(%zero : f32) outs(%right : memref<64x8x1xf32, strided<[100, 10, 1], offset: 19>>)
    linalg.exp ins(%p : memref<64x10x10xf32>) outs(%out : memref<64x10x10xf32>)

    %q = memref.alloc() : memref<64x10x10xf32>
    %first = memref.subview %q[0, 0, 0] [1, 10, 10] [1, 1, 1] : memref<64x10x10xf32> to memref<1x10x10xf32, strided<[100, 10, 1]>>
    scf.for %c = %c0 to %c64 step %c1 {
      %all = memref.subview %q[%c, 0, 0] [1, 10, 10] [1, 1, 1] : memref<64x10x10xf32> to memref<1x10x10xf32, strided<[100, 10, 1], offset: ?>>
      %sum = memref.subview %out[%c, 0, 0] [1, 10, 10] [1, 1, 1] : memref<64x10x10xf32> to memref<1x10x10xf32, strided<[100, 10, 1], offset: ?>>
      linalg.add ins(%all, %first : memref<1x10x10xf32, strided<[100, 10, 1], offset: ?>>, memref<1x10x10xf32, strided<[100, 10, 1]>>) outs(%sum : memref<1x10x10xf32, strided<[100, 10, 1], offset: ?>>)
    } {aotc.parallel}
    %qtop = memref.subview %q[0, 0, 0] [64, 1, 10] [1, 1, 1] : memref<64x10x10xf32> to memref<64x1x10xf32, strided<[100, 10, 1]>>
    linalg.fill ins(%zero : f32) outs(%qtop : memref<64x1x10xf32, strided<[100, 10, 1]>>)
    %qbottom = memref.subview %q[0, 9, 0] [64, 1, 10] [1, 1, 1] : memref<64x10x10xf32> to memref<64x1x10xf32, strided<[100, 10, 1], offset: 90>>
    linalg.fill ins(%zero : f32) outs(%qbottom : memref<64x1x10xf32, strided<[100, 10, 1], offset: 90>>)
    %qleft = memref.subview %q[0, 1, 0] [64, 8, 1] [1, 1, 1] : memref<64x10x10xf32> to memref<64x8x1xf32, strided<[100, 10, 1], offset: 10>>
    linalg.fill ins(%zero : f32) outs(%qleft : memref<64x8x1xf32, strided<[100, 10, 1], offset: 10>>)
    %qright = memref.subview %q[0, 1, 9] [64, 8, 1] [1, 1, 1] : memref<64x10x10xf32> to memref<64x8x1xf32, strided<[100, 10, 1], offset: 19>>
    linalg.fill ins(%zero : f32) outs(%qright : memref<64x8x1xf32, strided<[100, 10, 1], offset: 19>>)
    linalg.exp ins(%q : memref<64x10x10xf32>) outs(%out : memref<64x10x10xf32>)
    return
  }
}
