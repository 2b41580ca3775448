// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// Three loops over 64 rows, as an im2col's copies of two taps: the first
// copies row r of %x into column block 0 of row r of %out, the second
// copies row r + 1 of %x into column block 1. The rows they read overlap
// (the second's row r is the first's row r + 1), but neither writes %x:
// memory that both only read may be read in any order, so they join.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for %[[R:.*]] = %c0 to %c64 step %c1 {
// CHECK: vector.transfer_write
// CHECK-NOT: } {aotc.parallel}
// CHECK: vector.transfer_write
// CHECK-NEXT: } {aotc.parallel}

// The third writes row r of %x, which iteration r - 1 of the joined loop
// reads (its second copy): it stays apart.
// CHECK: scf.for
// CHECK: vector.transfer_write
// CHECK-NEXT: } {aotc.parallel}
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<65x16xf32>, %out: memref<64x2x16xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %pad = arith.constant 0.0 : f32
    %x0 = memref.subview %x[0, 0] [64, 16] [1, 1] : memref<65x16xf32> to memref<64x16xf32, strided<[16, 1]>>
    %x1 = memref.subview %x[1, 0] [64, 16] [1, 1] : memref<65x16xf32> to memref<64x16xf32, strided<[16, 1], offset: 16>>
    %out0 = memref.subview %out[0, 0, 0] [64, 1, 16] [1, 1, 1] : memref<64x2x16xf32> to memref<64x16xf32, strided<[32, 1]>>
    %out1 = memref.subview %out[0, 1, 0] [64, 1, 16] [1, 1, 1] : memref<64x2x16xf32> to memref<64x16xf32, strided<[32, 1], offset: 16>>
    scf.for %r = %c0 to %c64 step %c1 {
      %from = memref.subview %x0[%r, 0] [1, 16] [1, 1] : memref<64x16xf32, strided<[16, 1]>> to memref<1x16xf32, strided<[16, 1], offset: ?>>
      %to = memref.subview %out0[%r, 0] [1, 16] [1, 1] : memref<64x16xf32, strided<[32, 1]>> to memref<1x16xf32, strided<[32, 1], offset: ?>>
      %v = vector.transfer_read %from[%c0, %c0], %pad {in_bounds = [true, true]} : memref<1x16xf32, strided<[16, 1], offset: ?>>, vector<1x16xf32>
      vector.transfer_write %v, %to[%c0, %c0] {in_bounds = [true, true]} : vector<1x16xf32>, memref<1x16xf32, strided<[32, 1], offset: ?>>
    } {aotc.parallel}
    scf.for %r = %c0 to %c64 step %c1 {
      %from = memref.subview %x1[%r, 0] [1, 16] [1, 1] : memref<64x16xf32, strided<[16, 1], offset: 16>> to memref<1x16xf32, strided<[16, 1], offset: ?>>
      %to = memref.subview %out1[%r, 0] [1, 16] [1, 1] : memref<64x16xf32, strided<[32, 1], offset: 16>> to memref<1x16xf32, strided<[32, 1], offset: ?>>
      %v = vector.transfer_read %from[%c0, %c0], %pad {in_bounds = [true, true]} : memref<1x16xf32, strided<[16, 1], offset: ?>>, vector<1x16xf32>
      vector.transfer_write %v, %to[%c0, %c0] {in_bounds = [true, true]} : vector<1x16xf32>, memref<1x16xf32, strided<[32, 1], offset: ?>>
    } {aotc.parallel}
    scf.for %r = %c0 to %c64 step %c1 {
      %from = memref.subview %out0[%r, 0] [1, 16] [1, 1] : memref<64x16xf32, strided<[32, 1]>> to memref<1x16xf32, strided<[32, 1], offset: ?>>
      %to = memref.subview %x0[%r, 0] [1, 16] [1, 1] : memref<64x16xf32, strided<[16, 1]>> to memref<1x16xf32, strided<[16, 1], offset: ?>>
      %v = vector.transfer_read %from[%c0, %c0], %pad {in_bounds = [true, true]} : memref<1x16xf32, strided<[32, 1], offset: ?>>, vector<1x16xf32>
      vector.transfer_write %v, %to[%c0, %c0] {in_bounds = [true, true]} : vector<1x16xf32>, memref<1x16xf32, strided<[16, 1], offset: ?>>
    } {aotc.parallel}
    return
  }
}
