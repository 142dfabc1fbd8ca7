// Device primitives shared by the CUDA kernels, written once: asynchronous global -> shared copies
// (cp.async, sm_80+), the fp16 m16n8k16 tensor-core MMA and transposed ldmatrix loads.
//
// Which asm is volatile, and why:
// - cp.async and its commit/wait are volatile: they have effects the compiler cannot see (shared memory
//   written behind its back, ordering against the wait), so they must stay where they are written.
// - The MMA is a pure function of its registers, so it is NOT volatile: the compiler may move independent
//   loads and arithmetic across it (the W4A16 kernels rely on this to overlap dequantization with MMAs).
// - ldmatrix reads shared memory written by other threads before a barrier; volatile keeps it after the
//   barrier that orders those writes.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace nibble::cuda {

// 16 bytes from global to shared memory, asynchronously. .cg caches in L2 only (streamed data read once).
__device__ __forceinline__ void CopyAsync16(void* shared, const void* global) {
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(address), "l"(global));
}
// 8 bytes, asynchronously (.ca: sizes below 16 bytes must go through L1).
__device__ __forceinline__ void CopyAsync8(void* shared, const void* global) {
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(address), "l"(global));
}
// Closes the group of copies issued since the last commit.
__device__ __forceinline__ void CommitCopies() { asm volatile("cp.async.commit_group;"); }
// Waits until at most kPending committed groups are still in flight (0: all of this thread's copies landed).
template <int kPending>
__device__ __forceinline__ void WaitCopies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending));
}

// D = A B + D with A 16x16 fp16 (row-major fragment), B 16x8 fp16 (column-major fragment), D 16x8 fp32.
__device__ __forceinline__ void Mma16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two transposed 8x8 fp16 matrices from shared memory: lanes 0..7 give the row addresses of the first,
// lanes 8..15 of the second. Lane i receives elements (2 (i % 4), i / 4) and (2 (i % 4) + 1, i / 4) of each
// stored matrix: exactly an m16n8k16 B fragment when the stored rows are the 16 values of k.
__device__ __forceinline__ void LoadMatrixX2Trans(const half* row_address, uint32_t b[2]) {
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(row_address));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
               : "=r"(b[0]), "=r"(b[1])
               : "r"(address));
}

}  // namespace nibble::cuda
