// RUN: aotc-opt %s --pass parallelize-kernels | FileCheck %s

// An outer parallel loop of few iterations (here 6 channel blocks) whose
// whole body is another parallel loop (112 rows) shares one range of
// 6 x 112 iterations with it: iteration i is row i % 112 of block i / 112.
// The loops stay; the outer one runs blocks begin / 112 to (end - 1) / 112,
// and in block a the inner one runs rows max(begin - 112a, 0) to
// min(end - 112a, 112), each scaled by its loop's step. The outer body
// may make views and index values for the inner loop (they run once per
// piece). A loop whose body does more (here a write before the inner
// loop, which would run once per piece), or with 64 iterations or more,
// keeps its own range. Border fills after the inner loop (a padded
// buffer's strips, joined and tagged by border_fills) run once per outer
// iteration: in the piece whose inner range starts at 0. An untagged fill
// there keeps the outer loop's range.
// CHECK: // parallel: aotc_t_forward_k0_parallel (672 iterations,
// CHECK: // parallel: aotc_t_forward_k1_parallel (6 iterations,
// CHECK: // parallel: aotc_t_forward_k2_parallel (64 iterations,
// CHECK: // parallel: aotc_t_forward_k3_parallel (672 iterations,
// CHECK: // parallel: aotc_t_forward_k4_parallel (6 iterations,
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[ALL:.*]] = arith.constant 672 : index
// CHECK: call @aotc_t_forward_k0_parallel(%arg0, %arg1, %{{.*}}, %{{.*}}, %[[ALL]])
// CHECK: func.func private @aotc_t_forward_k0_parallel(%{{.*}}: memref<6x112x256xf32>, %{{.*}}: memref<6x112x256xf32>, %{{.*}}: memref<?xi8>, %[[BEGIN:.*]]: index, %[[END:.*]]: index)
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2 : index
// CHECK-DAG: %[[N:.*]] = arith.constant 112 : index
// CHECK: %[[LAST:.*]] = arith.subi %[[END]], %{{.*}} : index
// CHECK: %[[FIRST_BLOCK:.*]] = arith.divsi %[[BEGIN]], %[[N]] : index
// CHECK: %[[LAST_BLOCK:.*]] = arith.divsi %[[LAST]], %[[N]] : index
// CHECK: %[[PAST_BLOCK:.*]] = arith.addi %[[LAST_BLOCK]], %{{.*}} : index
// CHECK: %[[B0:.*]] = arith.muli %[[FIRST_BLOCK]], %[[TWO]] : index
// CHECK: %[[OUTER_LB:.*]] = arith.addi %{{.*}}, %[[B0]] : index
// CHECK: %[[B1:.*]] = arith.muli %[[PAST_BLOCK]], %[[TWO]] : index
// CHECK: %[[OUTER_PAST:.*]] = arith.addi %{{.*}}, %[[B1]] : index
// CHECK: %[[OUTER_UB:.*]] = arith.minsi %[[OUTER_PAST]], %{{.*}} : index
// CHECK: scf.for %[[I:.*]] = %[[OUTER_LB]] to %[[OUTER_UB]] step %[[TWO]] {
// CHECK:   memref.subview
// CHECK:   %[[SINCE:.*]] = arith.subi %[[I]], %[[OUTER_LB]] : index
// CHECK:   %[[K:.*]] = arith.divsi %[[SINCE]], %[[TWO]] : index
// CHECK:   %[[A:.*]] = arith.addi %[[K]], %[[FIRST_BLOCK]] : index
// CHECK:   %[[ROW0:.*]] = arith.muli %[[A]], %{{.*}} : index
// CHECK:   %[[FROM_RAW:.*]] = arith.subi %[[BEGIN]], %[[ROW0]] : index
// CHECK:   %[[FROM:.*]] = arith.maxsi %[[FROM_RAW]], %{{.*}} : index
// CHECK:   %[[TO_RAW:.*]] = arith.subi %[[END]], %[[ROW0]] : index
// CHECK:   %[[TO:.*]] = arith.minsi %[[TO_RAW]], %{{.*}} : index
// CHECK:   %[[R0:.*]] = arith.muli %[[FROM]], %[[TWO]] : index
// CHECK:   %[[INNER_LB:.*]] = arith.addi %{{.*}}, %[[R0]] : index
// CHECK:   %[[R1:.*]] = arith.muli %[[TO]], %[[TWO]] : index
// CHECK:   %[[INNER_PAST:.*]] = arith.addi %{{.*}}, %[[R1]] : index
// CHECK:   %[[INNER_UB:.*]] = arith.minsi %[[INNER_PAST]], %{{.*}} : index
// CHECK:   scf.for %{{.*}} = %[[INNER_LB]] to %[[INNER_UB]] step %[[TWO]] {
// CHECK: func.func private @aotc_t_forward_k1_parallel(
// CHECK: scf.for
// CHECK: vector.transfer_write
// CHECK: scf.for %{{.*}} = %c1 to %c112 step %c1 {
// CHECK: func.func private @aotc_t_forward_k2_parallel(
// CHECK: scf.for
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c112 step %c1 {
// CHECK: func.func private @aotc_t_forward_k3_parallel(
// CHECK: scf.for
// CHECK: %[[FROM3:.*]] = arith.maxsi
// CHECK: scf.for
// CHECK: vector.transfer_write
// CHECK: } {aotc.parallel}
// CHECK: %[[STARTS:.*]] = arith.cmpi eq, %[[FROM3]], %{{.*}} : index
// CHECK-NEXT: scf.if %[[STARTS]] {
// CHECK-NEXT: linalg.fill {{.*}} memref<1x114xf32, strided<[114, 1], offset: ?>>
// CHECK-NEXT: linalg.fill {{.*}} memref<1x114xf32, strided<[114, 1], offset: ?>>
// CHECK-NEXT: }
// CHECK-NEXT: } {aotc.parallel}
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%a: memref<6x112x256xf32>, %b: memref<6x112x256xf32>, %c: memref<64x112x256xf32>, %d: memref<6x114x114xf32>, %arena: memref<?xi8>) {
    call @aotc_t_forward_k0(%a, %b) : (memref<6x112x256xf32>, memref<6x112x256xf32>) -> ()
    call @aotc_t_forward_k1(%a, %b) : (memref<6x112x256xf32>, memref<6x112x256xf32>) -> ()
    call @aotc_t_forward_k2(%c, %c) : (memref<64x112x256xf32>, memref<64x112x256xf32>) -> ()
    call @aotc_t_forward_k3(%a, %d) : (memref<6x112x256xf32>, memref<6x114x114xf32>) -> ()
    call @aotc_t_forward_k4(%a, %d) : (memref<6x112x256xf32>, memref<6x114x114xf32>) -> ()
    return
  }
  // 6 channel blocks (0, 2, .., 10) of 112 rows (0, 2, .., 222): one range of 672
  func.func private @aotc_t_forward_k0(%in: memref<6x112x256xf32>, %out: memref<6x112x256xf32>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c2 = arith.constant 2 : index
    %c12 = arith.constant 12 : index
    %c224 = arith.constant 224 : index
    %zero = arith.constant 0.0 : f32
    scf.for %i = %c0 to %c12 step %c2 {
      // views and index values for the inner loop may come first
      %bi = arith.divui %i, %c2 : index
      %block = memref.subview %in[%bi, 0, 0] [1, 112, 256] [1, 1, 1] : memref<6x112x256xf32> to memref<112x256xf32, strided<[256, 1], offset: ?>>
      scf.for %j = %c0 to %c224 step %c2 {
        %bj = arith.divui %j, %c2 : index
        %v = vector.transfer_read %block[%bj, %c0], %zero : memref<112x256xf32, strided<[256, 1], offset: ?>>, vector<256xf32>
        %w = arith.addf %v, %v : vector<256xf32>
        vector.transfer_write %w, %out[%bi, %bj, %c0] : vector<256xf32>, memref<6x112x256xf32>
      } {aotc.parallel}
    } {aotc.parallel}
    return
  }
  // the inner loop is not all of the body: the outer loop's 6 iterations alone
  func.func private @aotc_t_forward_k1(%in: memref<6x112x256xf32>, %out: memref<6x112x256xf32>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c6 = arith.constant 6 : index
    %c112 = arith.constant 112 : index
    %zero = arith.constant 0.0 : f32
    scf.for %i = %c0 to %c6 step %c1 {
      %v0 = vector.transfer_read %in[%i, %c0, %c0], %zero : memref<6x112x256xf32>, vector<256xf32>
      vector.transfer_write %v0, %out[%i, %c0, %c0] : vector<256xf32>, memref<6x112x256xf32>
      scf.for %j = %c1 to %c112 step %c1 {
        %v = vector.transfer_read %in[%i, %j, %c0], %zero : memref<6x112x256xf32>, vector<256xf32>
        %w = arith.addf %v, %v : vector<256xf32>
        vector.transfer_write %w, %out[%i, %j, %c0] : vector<256xf32>, memref<6x112x256xf32>
      } {aotc.parallel}
    } {aotc.parallel}
    return
  }
  // 64 iterations are enough to share: not collapsed
  func.func private @aotc_t_forward_k2(%in: memref<64x112x256xf32>, %out: memref<64x112x256xf32>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %c112 = arith.constant 112 : index
    %zero = arith.constant 0.0 : f32
    scf.for %i = %c0 to %c64 step %c1 {
      scf.for %j = %c0 to %c112 step %c1 {
        %v = vector.transfer_read %in[%i, %j, %c0], %zero : memref<64x112x256xf32>, vector<256xf32>
        %w = arith.addf %v, %v : vector<256xf32>
        vector.transfer_write %w, %out[%i, %j, %c0] : vector<256xf32>, memref<64x112x256xf32>
      } {aotc.parallel}
    } {aotc.parallel}
    return
  }
  // 6 channels of 112 rows, each row copied into the interior of a padded
  // plane, the top and bottom rows filled after the rows: one range of 672
  func.func private @aotc_t_forward_k3(%in: memref<6x112x256xf32>, %out: memref<6x114x114xf32>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c6 = arith.constant 6 : index
    %c112 = arith.constant 112 : index
    %zero = arith.constant 0.0 : f32
    %inside = memref.subview %out[0, 1, 1] [6, 112, 112] [1, 1, 1] : memref<6x114x114xf32> to memref<6x112x112xf32, strided<[12996, 114, 1], offset: 115>>
    %top = memref.subview %out[0, 0, 0] [6, 1, 114] [1, 1, 1] : memref<6x114x114xf32> to memref<6x1x114xf32, strided<[12996, 114, 1]>>
    %bottom = memref.subview %out[0, 113, 0] [6, 1, 114] [1, 1, 1] : memref<6x114x114xf32> to memref<6x1x114xf32, strided<[12996, 114, 1], offset: 12882>>
    scf.for %i = %c0 to %c6 step %c1 {
      scf.for %j = %c0 to %c112 step %c1 {
        %v = vector.transfer_read %in[%i, %j, %c0], %zero : memref<6x112x256xf32>, vector<112xf32>
        vector.transfer_write %v, %inside[%i, %j, %c0] : vector<112xf32>, memref<6x112x112xf32, strided<[12996, 114, 1], offset: 115>>
      } {aotc.parallel}
      %t = memref.subview %top[%i, 0, 0] [1, 1, 114] [1, 1, 1] : memref<6x1x114xf32, strided<[12996, 114, 1]>> to memref<1x114xf32, strided<[114, 1], offset: ?>>
      linalg.fill {aotc.border_fill} ins(%zero : f32) outs(%t : memref<1x114xf32, strided<[114, 1], offset: ?>>)
      %b = memref.subview %bottom[%i, 0, 0] [1, 1, 114] [1, 1, 1] : memref<6x1x114xf32, strided<[12996, 114, 1], offset: 12882>> to memref<1x114xf32, strided<[114, 1], offset: ?>>
      linalg.fill {aotc.border_fill} ins(%zero : f32) outs(%b : memref<1x114xf32, strided<[114, 1], offset: ?>>)
    } {aotc.parallel}
    return
  }
  // the same fills untagged: the outer loop's 6 iterations alone
  func.func private @aotc_t_forward_k4(%in: memref<6x112x256xf32>, %out: memref<6x114x114xf32>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c6 = arith.constant 6 : index
    %c112 = arith.constant 112 : index
    %zero = arith.constant 0.0 : f32
    %inside = memref.subview %out[0, 1, 1] [6, 112, 112] [1, 1, 1] : memref<6x114x114xf32> to memref<6x112x112xf32, strided<[12996, 114, 1], offset: 115>>
    %top = memref.subview %out[0, 0, 0] [6, 1, 114] [1, 1, 1] : memref<6x114x114xf32> to memref<6x1x114xf32, strided<[12996, 114, 1]>>
    %bottom = memref.subview %out[0, 113, 0] [6, 1, 114] [1, 1, 1] : memref<6x114x114xf32> to memref<6x1x114xf32, strided<[12996, 114, 1], offset: 12882>>
    scf.for %i = %c0 to %c6 step %c1 {
      scf.for %j = %c0 to %c112 step %c1 {
        %v = vector.transfer_read %in[%i, %j, %c0], %zero : memref<6x112x256xf32>, vector<112xf32>
        vector.transfer_write %v, %inside[%i, %j, %c0] : vector<112xf32>, memref<6x112x112xf32, strided<[12996, 114, 1], offset: 115>>
      } {aotc.parallel}
      %t = memref.subview %top[%i, 0, 0] [1, 1, 114] [1, 1, 1] : memref<6x1x114xf32, strided<[12996, 114, 1]>> to memref<1x114xf32, strided<[114, 1], offset: ?>>
      linalg.fill ins(%zero : f32) outs(%t : memref<1x114xf32, strided<[114, 1], offset: ?>>)
      %b = memref.subview %bottom[%i, 0, 0] [1, 1, 114] [1, 1, 1] : memref<6x1x114xf32, strided<[12996, 114, 1], offset: 12882>> to memref<1x114xf32, strided<[114, 1], offset: ?>>
      linalg.fill ins(%zero : f32) outs(%b : memref<1x114xf32, strided<[114, 1], offset: ?>>)
    } {aotc.parallel}
    return
  }
}
