// RUN: aotc-opt %s --pass parallelize-kernels | FileCheck %s

// A kernel that is one loop nest with a parallel outer loop (marked by the
// strategy that tiled it) and enough to do takes the range of iterations it
// runs, [begin, end), as its last two parameters; its temporary (an arena
// slot that nothing but this kernel's calls uses: CSE gave both layers the
// same slot) becomes a view of a scratch parameter, which the runtime
// points at each thread's own scratch. Every call passes the whole range
// and a view of the arena the scratch's size. Kernels whose outer loop is
// not marked, or that do little, stay serial and say why.
// CHECK: // parallel: aotc_t_forward_k0_parallel (512 iterations, work {{[0-9]+}}, scratch 1024 bytes)
// CHECK: // serial: aotc_t_forward_k1 (its outer loop is not parallel)
// CHECK: // serial: aotc_t_forward_k2 (work {{[0-9]+}} < 20000, {{[0-9]+}} bytes < 65536)
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[SCRATCH:.*]] = memref.view %arg2[%[[ZERO:.*]]][%[[BYTES:.*]]] : memref<?xi8> to memref<?xi8>
// CHECK: call @aotc_t_forward_k0_parallel(%arg0, %arg1, %[[SCRATCH]], %[[ZERO]], %[[TRIPS:.*]]) : (memref<512x256xf32>, memref<512x256xf32>, memref<?xi8>, index, index) -> ()
// CHECK: call @aotc_t_forward_k0_parallel(%arg1, %arg0, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK: call @aotc_t_forward_k1(
// CHECK: call @aotc_t_forward_k2(
// CHECK: func.func private @aotc_t_forward_k0_parallel(%[[IN:.*]]: memref<512x256xf32>, %[[OUT:.*]]: memref<512x256xf32>, %[[S:.*]]: memref<?xi8>, %[[BEGIN:.*]]: index, %[[END:.*]]: index)
// CHECK: %[[TMP:.*]] = memref.view %[[S]][%{{.*}}][] : memref<?xi8> to memref<256xf32>
// CHECK: %[[FIRST:.*]] = arith.muli %[[BEGIN]], %[[STEP:.*]] : index
// CHECK: %[[LB:.*]] = arith.addi %{{.*}}, %[[FIRST]] : index
// CHECK: %[[LAST:.*]] = arith.muli %[[END]], %[[STEP]] : index
// CHECK: %[[PAST:.*]] = arith.addi %{{.*}}, %[[LAST]] : index
// CHECK: %[[UB:.*]] = arith.minsi %[[PAST]], %{{.*}} : index
// CHECK: scf.for %{{.*}} = %[[LB]] to %[[UB]] step %[[STEP]]
// CHECK: vector.transfer_write {{.*}}, %[[TMP]]
// CHECK: func.func private @aotc_t_forward_k1(
// CHECK: func.func private @aotc_t_forward_k2(
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%a: memref<512x256xf32>, %b: memref<512x256xf32>, %arena: memref<?xi8>) {
    %c0 = arith.constant 0 : index
    %tmp = memref.view %arena[%c0][] : memref<?xi8> to memref<256xf32>
    call @aotc_t_forward_k0(%a, %tmp, %b) : (memref<512x256xf32>, memref<256xf32>, memref<512x256xf32>) -> ()
    call @aotc_t_forward_k0(%b, %tmp, %a) : (memref<512x256xf32>, memref<256xf32>, memref<512x256xf32>) -> ()
    call @aotc_t_forward_k1(%a, %b) : (memref<512x256xf32>, memref<512x256xf32>) -> ()
    %small = memref.subview %a[0, 0] [4, 16] [1, 1] : memref<512x256xf32> to memref<4x16xf32, strided<[256, 1]>>
    call @aotc_t_forward_k2(%small) : (memref<4x16xf32, strided<[256, 1]>>) -> ()
    return
  }
  // each row: through the temporary, doubled
  func.func private @aotc_t_forward_k0(%in: memref<512x256xf32>, %tmp: memref<256xf32>, %out: memref<512x256xf32>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c512 = arith.constant 512 : index
    %c256 = arith.constant 256 : index
    %zero = arith.constant 0.0 : f32
    %two = arith.constant dense<2.0> : vector<16xf32>
    scf.for %i = %c0 to %c512 step %c1 {
      scf.for %j = %c0 to %c256 step %c16 {
        %v = vector.transfer_read %in[%i, %j], %zero : memref<512x256xf32>, vector<16xf32>
        vector.transfer_write %v, %tmp[%j] : vector<16xf32>, memref<256xf32>
      }
      scf.for %j = %c0 to %c256 step %c16 {
        %v = vector.transfer_read %tmp[%j], %zero : memref<256xf32>, vector<16xf32>
        %w = arith.mulf %v, %two : vector<16xf32>
        vector.transfer_write %w, %out[%i, %j] : vector<16xf32>, memref<512x256xf32>
      }
    } {aotc.parallel}
    return
  }
  // a running sum down the rows: not parallel, not marked
  func.func private @aotc_t_forward_k1(%in: memref<512x256xf32>, %out: memref<512x256xf32>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c512 = arith.constant 512 : index
    %zero = arith.constant 0.0 : f32
    scf.for %i = %c1 to %c512 step %c1 {
      %p = arith.subi %i, %c1 : index
      %v = vector.transfer_read %out[%p, %c0], %zero : memref<512x256xf32>, vector<256xf32>
      %w = vector.transfer_read %in[%i, %c0], %zero : memref<512x256xf32>, vector<256xf32>
      %s = arith.addf %v, %w : vector<256xf32>
      vector.transfer_write %s, %out[%i, %c0] : vector<256xf32>, memref<512x256xf32>
    }
    return
  }
  // marked, but too little to share
  func.func private @aotc_t_forward_k2(%x: memref<4x16xf32, strided<[256, 1]>>) attributes {passthrough = ["noinline"]} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %zero = arith.constant 0.0 : f32
    scf.for %i = %c0 to %c4 step %c1 {
      %v = vector.transfer_read %x[%i, %c0], %zero : memref<4x16xf32, strided<[256, 1]>>, vector<16xf32>
      %w = arith.addf %v, %v : vector<16xf32>
      vector.transfer_write %w, %x[%i, %c0] : vector<16xf32>, memref<4x16xf32, strided<[256, 1]>>
    } {aotc.parallel}
    return
  }
}
