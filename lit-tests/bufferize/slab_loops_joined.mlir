// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// Three loops over 64 channels. The first writes channel c of %y, the
// second reads channel c of %y and writes channel c of %z: each iteration
// touches only its channel's slab of the buffers they share, so they join
// (a thread runs both for its channels, with no wait between them).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for %[[C:.*]] = %c0 to %c64 step %c1 {
// CHECK: arith.maximumf
// CHECK-NOT: } {aotc.parallel}
// CHECK: linalg.exp
// CHECK-NEXT: } {aotc.parallel}

// The third reads channel 0 of %z in every iteration, which the joined
// loop writes in its first: it stays apart.
// CHECK: scf.for
// CHECK: linalg.add
// CHECK-NEXT: } {aotc.parallel}

// A loop that writes a temporary whole in every iteration (each thread
// needs a copy of it, which only a kernel of its own gets) stays apart
// from the loop before it and the one after it.
// CHECK: scf.for
// CHECK: linalg.exp
// CHECK-NEXT: } {aotc.parallel}
// CHECK: scf.for
// CHECK: linalg.mul
// CHECK-NEXT: } {aotc.parallel}
// CHECK: scf.for
// CHECK: linalg.exp
// CHECK-NEXT: } {aotc.parallel}
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<64x8x8xf32>, %out: memref<64x8x8xf32>, %out2: memref<64x8x8xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %zero = arith.constant 0.0 : f32
    %y = memref.alloc() : memref<64x8x8xf32>
    scf.for %c = %c0 to %c64 step %c1 {
      %from = memref.subview %x[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      %to = memref.subview %y[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%from : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) outs(%to : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) {
      ^bb0(%v: f32, %o: f32):
        %r = arith.maximumf %v, %zero : f32
        linalg.yield %r : f32
      }
    } {aotc.parallel}
    %z = memref.alloc() : memref<64x8x8xf32>
    scf.for %c = %c0 to %c64 step %c1 {
      %from = memref.subview %y[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      %to = memref.subview %z[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      linalg.exp ins(%from : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) outs(%to : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>)
    } {aotc.parallel}
    %first = memref.subview %z[0, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1]>>
    scf.for %c = %c0 to %c64 step %c1 {
      %from = memref.subview %z[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      %to = memref.subview %out[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      linalg.add ins(%from, %first : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>, memref<1x8x8xf32, strided<[64, 8, 1]>>) outs(%to : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>)
    } {aotc.parallel}

    %u = memref.alloc() : memref<64x8x8xf32>
    scf.for %c = %c0 to %c64 step %c1 {
      %from = memref.subview %x[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      %to = memref.subview %u[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      linalg.exp ins(%from : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) outs(%to : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>)
    } {aotc.parallel}
    %t = memref.alloc() : memref<1x8x8xf32>
    %v = memref.alloc() : memref<64x8x8xf32>
    scf.for %c = %c0 to %c64 step %c1 {
      %from = memref.subview %u[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      %to = memref.subview %v[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      linalg.exp ins(%from : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) outs(%t : memref<1x8x8xf32>)
      linalg.mul ins(%t, %from : memref<1x8x8xf32>, memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) outs(%to : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>)
    } {aotc.parallel}
    scf.for %c = %c0 to %c64 step %c1 {
      %from = memref.subview %v[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      %to = memref.subview %out2[%c, 0, 0] [1, 8, 8] [1, 1, 1] : memref<64x8x8xf32> to memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>
      linalg.exp ins(%from : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>) outs(%to : memref<1x8x8xf32, strided<[64, 8, 1], offset: ?>>)
    } {aotc.parallel}
    return
  }
}
