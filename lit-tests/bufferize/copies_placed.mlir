// RUN: aotc-opt %s --pass bufferize | FileCheck %s

// One kernel writes two buffers that are then copied whole into the two
// slices of a stack (Winograd's transformed inputs): each is placed at its
// slice, the copies disappear, and the stack and its slices are views of
// one byte view of their slot (not of the arena: no kernel may take them
// for private scratch).
// CHECK-LABEL: func.func @aotc_t_forward
// CHECK: %[[SLOT:.*]] = memref.view %arg3[%c{{[0-9]+}}][] : memref<?xi8> to memref<8192xi8>
// CHECK: %[[A0:.*]] = memref.view %[[SLOT]][%c0][] {aotc.buffer = {{[0-9]+}} : index} : memref<8192xi8> to memref<16x64xf32>
// CHECK: %[[A1:.*]] = memref.view %[[SLOT]][%c4096][] {aotc.buffer = {{[0-9]+}} : index} : memref<8192xi8> to memref<16x64xf32>
// CHECK: linalg.generic {{.*}} outs(%[[A0]], %[[A1]] : memref<16x64xf32>, memref<16x64xf32>)
// CHECK-NOT: linalg.copy ins(%[[A0]]
// CHECK-NOT: linalg.copy ins(%[[A1]]
// CHECK: %[[STACK:.*]] = memref.view %[[SLOT]][%c0][] {aotc.buffer = {{[0-9]+}} : index} : memref<8192xi8> to memref<2x16x64xf32>
// CHECK: linalg.exp ins(%[[STACK]] : memref<2x16x64xf32>) outs(%arg1 : memref<2x16x64xf32>)

// A buffer whose slice of the stack is read before the copy keeps a slot
// of its own, and is copied (by a loop of vector reads and writes).
// CHECK: %[[B:.*]] = memref.view %arg3[{{.*}}]{{.*}} : memref<?xi8> to memref<16x64xf32>
// CHECK: linalg.exp ins(%arg0 : memref<16x64xf32>) outs(%[[B]] : memref<16x64xf32>)
// CHECK: linalg.exp ins({{.*}} : memref<16x64xf32, strided<[64, 1]>>) outs(%arg2 : memref<16x64xf32>)
// CHECK: scf.for
// CHECK: memref.subview %[[B]]
// CHECK: vector.transfer_write

// A buffer copied into two stacks keeps its slot, and both copies stay
// (placed in the second stack, it would keep that stack live from the
// first copy's producer on).
// CHECK: %[[C:.*]] = memref.view %arg3[{{.*}}]{{.*}} : memref<?xi8> to memref<8x64xf32>
// CHECK: linalg.exp ins({{.*}}) outs(%[[C]] : memref<8x64xf32>)
// CHECK: memref.subview %[[C]]
// CHECK: vector.transfer_write
// CHECK: memref.subview %[[C]]
// CHECK: vector.transfer_write
// CHECK: return
#id = affine_map<(d0, d1) -> (d0, d1)>
module attributes {aotc.model = "t"} {
  func.func @aotc_t_forward(%x: memref<16x64xf32>, %out: memref<2x16x64xf32>, %out2: memref<16x64xf32>, %arena: memref<?xi8>) attributes {llvm.emit_c_interface} {
    %a0 = memref.alloc() : memref<16x64xf32>
    %a1 = memref.alloc() : memref<16x64xf32>
    linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : memref<16x64xf32>) outs(%a0, %a1 : memref<16x64xf32>, memref<16x64xf32>) {
    ^bb0(%v: f32, %o0: f32, %o1: f32):
      %p = arith.addf %v, %v : f32
      %q = arith.mulf %v, %v : f32
      linalg.yield %p, %q : f32, f32
    }
    %s = memref.alloc() : memref<2x16x64xf32>
    %s0 = memref.subview %s[0, 0, 0] [1, 16, 64] [1, 1, 1] : memref<2x16x64xf32> to memref<16x64xf32, strided<[64, 1]>>
    memref.copy %a0, %s0 : memref<16x64xf32> to memref<16x64xf32, strided<[64, 1]>>
    %s1 = memref.subview %s[1, 0, 0] [1, 16, 64] [1, 1, 1] : memref<2x16x64xf32> to memref<16x64xf32, strided<[64, 1], offset: 1024>>
    memref.copy %a1, %s1 : memref<16x64xf32> to memref<16x64xf32, strided<[64, 1], offset: 1024>>
    linalg.exp ins(%s : memref<2x16x64xf32>) outs(%out : memref<2x16x64xf32>)

    %b = memref.alloc() : memref<16x64xf32>
    linalg.exp ins(%x : memref<16x64xf32>) outs(%b : memref<16x64xf32>)
    %t = memref.alloc() : memref<2x16x64xf32>
    %one = arith.constant 1.0 : f32
    linalg.fill ins(%one : f32) outs(%t : memref<2x16x64xf32>)
    %t0 = memref.subview %t[0, 0, 0] [1, 16, 64] [1, 1, 1] : memref<2x16x64xf32> to memref<16x64xf32, strided<[64, 1]>>
    linalg.exp ins(%t0 : memref<16x64xf32, strided<[64, 1]>>) outs(%out2 : memref<16x64xf32>)
    memref.copy %b, %t0 : memref<16x64xf32> to memref<16x64xf32, strided<[64, 1]>>
    linalg.exp ins(%t : memref<2x16x64xf32>) outs(%out : memref<2x16x64xf32>)

    %x8 = memref.subview %x[0, 0] [8, 64] [1, 1] : memref<16x64xf32> to memref<8x64xf32, strided<[64, 1]>>
    %c = memref.alloc() : memref<8x64xf32>
    linalg.exp ins(%x8 : memref<8x64xf32, strided<[64, 1]>>) outs(%c : memref<8x64xf32>)
    %u = memref.alloc() : memref<2x8x64xf32>
    %u0 = memref.subview %u[0, 0, 0] [1, 8, 64] [1, 1, 1] : memref<2x8x64xf32> to memref<8x64xf32, strided<[64, 1]>>
    memref.copy %c, %u0 : memref<8x64xf32> to memref<8x64xf32, strided<[64, 1]>>
    %y = memref.subview %out[0, 0, 0] [2, 8, 64] [1, 1, 1] : memref<2x16x64xf32> to memref<2x8x64xf32, strided<[1024, 64, 1]>>
    linalg.exp ins(%u : memref<2x8x64xf32>) outs(%y : memref<2x8x64xf32, strided<[1024, 64, 1]>>)
    %w = memref.alloc() : memref<2x8x64xf32>
    %w1 = memref.subview %w[1, 0, 0] [1, 8, 64] [1, 1, 1] : memref<2x8x64xf32> to memref<8x64xf32, strided<[64, 1], offset: 512>>
    memref.copy %c, %w1 : memref<8x64xf32> to memref<8x64xf32, strided<[64, 1], offset: 512>>
    linalg.exp ins(%w : memref<2x8x64xf32>) outs(%y : memref<2x8x64xf32, strided<[1024, 64, 1]>>)
    return
  }
}
