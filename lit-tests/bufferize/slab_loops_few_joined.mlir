// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// An im2col's tap copies (squeezenet's stem: 9 taps of 3 channels of 111
// rows) are loops over the channels (3) around loops over the rows. An
// outer loop of so few iterations shares its range with its inner loop
// among the threads, which a body of two loops would prevent: two such
// nests join only when the inner loops have the same bounds and join too,
// and within one channel the two touch memory apart (here each tap's rows
// of the channel's band of %out). One kernel instead of one per tap.
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: scf.for %{{.*}} = %c0 to %c3 step %c1 {
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c8 step %c1 {
// CHECK: vector.transfer_write
// CHECK-NOT: } {aotc.parallel}
// CHECK: arith.negf
// CHECK: vector.transfer_write
// CHECK-NEXT: } {aotc.parallel}
// CHECK-NEXT: } {aotc.parallel}

// The third nest reads, in each channel, rows of the first tap that the
// joined nest writes in that channel: its row loop would interleave with
// theirs, so it stays apart.
// CHECK: scf.for %{{.*}} = %c0 to %c3 step %c1 {
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c8 step %c1 {
// CHECK: math.absf
// CHECK: } {aotc.parallel}
// CHECK-NEXT: } {aotc.parallel}
// CHECK: return
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<3x8x8xf32>, %out: memref<3x2x8x8xf32>, %out2: memref<3x8x8xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %c8 = arith.constant 8 : index
    %pad = ub.poison : f32
    %first = memref.subview %out[0, 0, 0, 0] [3, 1, 8, 8] [1, 1, 1, 1] : memref<3x2x8x8xf32> to memref<3x8x8xf32, strided<[128, 8, 1]>>
    scf.for %c = %c0 to %c3 step %c1 {
      scf.for %y = %c0 to %c8 step %c1 {
        %from = memref.subview %x[%c, %y, 0] [1, 1, 8] [1, 1, 1] : memref<3x8x8xf32> to memref<1x1x8xf32, strided<[64, 8, 1], offset: ?>>
        %to = memref.subview %first[%c, %y, 0] [1, 1, 8] [1, 1, 1] : memref<3x8x8xf32, strided<[128, 8, 1]>> to memref<1x1x8xf32, strided<[128, 8, 1], offset: ?>>
        %v = vector.transfer_read %from[%c0, %c0, %c0], %pad {in_bounds = [true, true, true]} : memref<1x1x8xf32, strided<[64, 8, 1], offset: ?>>, vector<1x1x8xf32>
        vector.transfer_write %v, %to[%c0, %c0, %c0] {in_bounds = [true, true, true]} : vector<1x1x8xf32>, memref<1x1x8xf32, strided<[128, 8, 1], offset: ?>>
      } {aotc.parallel}
    } {aotc.parallel}
    %second = memref.subview %out[0, 1, 0, 0] [3, 1, 8, 8] [1, 1, 1, 1] : memref<3x2x8x8xf32> to memref<3x8x8xf32, strided<[128, 8, 1], offset: 64>>
    scf.for %c = %c0 to %c3 step %c1 {
      scf.for %y = %c0 to %c8 step %c1 {
        %from = memref.subview %x[%c, %y, 0] [1, 1, 8] [1, 1, 1] : memref<3x8x8xf32> to memref<1x1x8xf32, strided<[64, 8, 1], offset: ?>>
        %to = memref.subview %second[%c, %y, 0] [1, 1, 8] [1, 1, 1] : memref<3x8x8xf32, strided<[128, 8, 1], offset: 64>> to memref<1x1x8xf32, strided<[128, 8, 1], offset: ?>>
        %v = vector.transfer_read %from[%c0, %c0, %c0], %pad {in_bounds = [true, true, true]} : memref<1x1x8xf32, strided<[64, 8, 1], offset: ?>>, vector<1x1x8xf32>
        %n = arith.negf %v : vector<1x1x8xf32>
        vector.transfer_write %n, %to[%c0, %c0, %c0] {in_bounds = [true, true, true]} : vector<1x1x8xf32>, memref<1x1x8xf32, strided<[128, 8, 1], offset: ?>>
      } {aotc.parallel}
    } {aotc.parallel}
    scf.for %c = %c0 to %c3 step %c1 {
      scf.for %y = %c0 to %c8 step %c1 {
        %from = memref.subview %first[%c, %y, 0] [1, 1, 8] [1, 1, 1] : memref<3x8x8xf32, strided<[128, 8, 1]>> to memref<1x1x8xf32, strided<[128, 8, 1], offset: ?>>
        %to = memref.subview %out2[%c, %y, 0] [1, 1, 8] [1, 1, 1] : memref<3x8x8xf32> to memref<1x1x8xf32, strided<[64, 8, 1], offset: ?>>
        %v = vector.transfer_read %from[%c0, %c0, %c0], %pad {in_bounds = [true, true, true]} : memref<1x1x8xf32, strided<[128, 8, 1], offset: ?>>, vector<1x1x8xf32>
        %a = math.absf %v : vector<1x1x8xf32>
        vector.transfer_write %a, %to[%c0, %c0, %c0] {in_bounds = [true, true, true]} : vector<1x1x8xf32>, memref<1x1x8xf32, strided<[64, 8, 1], offset: ?>>
      } {aotc.parallel}
    } {aotc.parallel}
    return
  }
}
