// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// The plan puts a buffer where the threads that write it first were the
// last to touch the lines (`line_sides`, `arena::assign_offsets`). Each
// loop is parallel: the pool's first half of the threads ("side 0") runs
// the first half of its iterations. %q is written bottom-up (side 0 writes
// rows 512-1023) and read so by %a; %p is written and read top-down. Both
// die at %a, %q lower in the arena. %r (written top-down) could take
// either slot: best-fit would take the lower, %q's, where side 0 would
// write lines that side 1 holds, and side 1 lines that side 0 holds
// (each a line moving between the caches when the threads' cores share
// none). It takes %p's, where each side wrote the same rows.
// CHECK: // arena: 3145728 bytes
// CHECK: memref.view %arg2[%c0][] {{.*}} to memref<1024x256xf32>
// CHECK: %[[P:.*]] = memref.view %arg2[%[[PAT:c[0-9]+]]][] {{.*}} to memref<1024x256xf32>
// CHECK: linalg.exp ins({{.*}}) outs(%{{.*}} :
// CHECK: %[[A:.*]] = memref.view %arg2[%c2097152][]
// CHECK: %[[R:.*]] = memref.view %arg2[%[[PAT]]][]

module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<1024x256xf32>, %out: memref<1024x256xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c1020 = arith.constant 1020 : index
    %c1023 = arith.constant 1023 : index
    %c1024 = arith.constant 1024 : index
    %t = bufferization.to_tensor %x restrict : memref<1024x256xf32> to tensor<1024x256xf32>
    %eq = tensor.empty() {aotc.id = 1 : i64} : tensor<1024x256xf32>
    %q = scf.for %i = %c0 to %c1024 step %c1 iter_args(%acc = %eq) -> tensor<1024x256xf32> {
      %j = arith.subi %c1023, %i : index
      %in0 = tensor.extract_slice %t[%i, 0] [1, 256] [1, 1] : tensor<1024x256xf32> to tensor<1x256xf32>
      %o = tensor.extract_slice %acc[%j, 0] [1, 256] [1, 1] : tensor<1024x256xf32> to tensor<1x256xf32>
      %v = linalg.negf ins(%in0 : tensor<1x256xf32>) outs(%o : tensor<1x256xf32>) -> tensor<1x256xf32>
      %n = tensor.insert_slice %v into %acc[%j, 0] [1, 256] [1, 1] : tensor<1x256xf32> into tensor<1024x256xf32>
      scf.yield %n : tensor<1024x256xf32>
    } {aotc.parallel}
    %ep = tensor.empty() {aotc.id = 2 : i64} : tensor<1024x256xf32>
    %p = scf.for %i = %c0 to %c1024 step %c2 iter_args(%acc = %ep) -> tensor<1024x256xf32> {
      %in0 = tensor.extract_slice %t[%i, 0] [2, 256] [1, 1] : tensor<1024x256xf32> to tensor<2x256xf32>
      %o = tensor.extract_slice %acc[%i, 0] [2, 256] [1, 1] : tensor<1024x256xf32> to tensor<2x256xf32>
      %v = linalg.exp ins(%in0 : tensor<2x256xf32>) outs(%o : tensor<2x256xf32>) -> tensor<2x256xf32>
      %n = tensor.insert_slice %v into %acc[%i, 0] [2, 256] [1, 1] : tensor<2x256xf32> into tensor<1024x256xf32>
      scf.yield %n : tensor<1024x256xf32>
    } {aotc.parallel}
    %ea = tensor.empty() {aotc.id = 3 : i64} : tensor<1024x256xf32>
    %a = scf.for %i = %c0 to %c1024 step %c4 iter_args(%acc = %ea) -> tensor<1024x256xf32> {
      %j = arith.subi %c1020, %i : index
      %in0 = tensor.extract_slice %q[%j, 0] [4, 256] [1, 1] : tensor<1024x256xf32> to tensor<4x256xf32>
      %in1 = tensor.extract_slice %p[%i, 0] [4, 256] [1, 1] : tensor<1024x256xf32> to tensor<4x256xf32>
      %o = tensor.extract_slice %acc[%i, 0] [4, 256] [1, 1] : tensor<1024x256xf32> to tensor<4x256xf32>
      %v = linalg.add ins(%in0, %in1 : tensor<4x256xf32>, tensor<4x256xf32>) outs(%o : tensor<4x256xf32>) -> tensor<4x256xf32>
      %n = tensor.insert_slice %v into %acc[%i, 0] [4, 256] [1, 1] : tensor<4x256xf32> into tensor<1024x256xf32>
      scf.yield %n : tensor<1024x256xf32>
    } {aotc.parallel}
    %er = tensor.empty() {aotc.id = 4 : i64} : tensor<1024x256xf32>
    %r = scf.for %i = %c0 to %c1024 step %c1 iter_args(%acc = %er) -> tensor<1024x256xf32> {
      %in0 = tensor.extract_slice %a[%i, 0] [1, 256] [1, 1] : tensor<1024x256xf32> to tensor<1x256xf32>
      %o = tensor.extract_slice %acc[%i, 0] [1, 256] [1, 1] : tensor<1024x256xf32> to tensor<1x256xf32>
      %v = linalg.exp ins(%in0 : tensor<1x256xf32>) outs(%o : tensor<1x256xf32>) -> tensor<1x256xf32>
      %n = tensor.insert_slice %v into %acc[%i, 0] [1, 256] [1, 1] : tensor<1x256xf32> into tensor<1024x256xf32>
      scf.yield %n : tensor<1024x256xf32>
    } {aotc.parallel}
    %ef = tensor.empty() {aotc.id = 5 : i64} : tensor<1024x256xf32>
    %f = scf.for %i = %c0 to %c1024 step %c2 iter_args(%acc = %ef) -> tensor<1024x256xf32> {
      %in0 = tensor.extract_slice %a[%i, 0] [2, 256] [1, 1] : tensor<1024x256xf32> to tensor<2x256xf32>
      %in1 = tensor.extract_slice %r[%i, 0] [2, 256] [1, 1] : tensor<1024x256xf32> to tensor<2x256xf32>
      %o = tensor.extract_slice %acc[%i, 0] [2, 256] [1, 1] : tensor<1024x256xf32> to tensor<2x256xf32>
      %v = linalg.add ins(%in0, %in1 : tensor<2x256xf32>, tensor<2x256xf32>) outs(%o : tensor<2x256xf32>) -> tensor<2x256xf32>
      %n = tensor.insert_slice %v into %acc[%i, 0] [2, 256] [1, 1] : tensor<2x256xf32> into tensor<1024x256xf32>
      scf.yield %n : tensor<1024x256xf32>
    } {aotc.parallel}
    bufferization.materialize_in_destination %f in restrict writable %out : (tensor<1024x256xf32>, memref<1024x256xf32>) -> ()
    return
  }
}

