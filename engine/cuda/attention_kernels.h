// Attention on the GPU over the paged KV cache (fp16 activations and cache, fp32 softmax and sums).
//
// Three kernels, used in this order by the CUDA backend's Attention op:
// - LaunchRopeStore: rotate-half RoPE in place on the q and k heads of qkv, and store each token's k and v
//   at its position in the cache.
// - LaunchAttentionDecode: any number of query tokens per sequence, any head_dim that is a multiple of 8
//   up to 256; each query token's keys (from its first visible one: 0, or position - W + 1 with a sliding
//   window) are split into partitions of kDecodePartition positions processed by separate blocks
//   (flash-decoding), each staging its partition's keys and values in shared memory with one round of
//   asynchronous copies, merged by the last block to finish. A window caps the partitions at W's. Used for
//   decode steps and for head sizes without a prefill kernel.
// - LaunchAttentionPrefill: causal attention for chunks of many query tokens with tensor cores
//   (FlashAttention-2 style tiles of 64 queries x 64 keys), head_dim 64 or 128; with a sliding window the key
//   tiles start at the chunk's first visible key and keys before a row's window are masked.
// Launchers take device pointers, sizes and a stream, return the launch status, never allocate or block.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace nibble::cuda {

inline constexpr int kDecodePartition = 64;  // key positions per decode block

struct AttentionArgs {
  half* qkv = nullptr;                // [T, (H + 2K) * Dh]
  half* k_cache = nullptr;            // [blocks, block_size, K, Dh]
  half* v_cache = nullptr;            // [blocks, block_size, K, Dh]
  const float* inv_freq = nullptr;    // [Dh / 2]
  const int* positions = nullptr;     // [T]
  const int* seq_starts = nullptr;    // [B + 1]
  const int* context_lens = nullptr;  // [B]
  const int* block_tables = nullptr;  // [B, table_width]
  half* out = nullptr;                // [T, H * Dh]
  int num_tokens = 0;
  int num_seqs = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 0;
  int table_width = 0;
  int max_context = 0;     // largest context_len (sizes the decode grid)
  int max_new_tokens = 0;  // most query tokens of one sequence (sizes the prefill grid)
  int sliding_window = 0;  // W > 0: the query at position i sees keys i - W + 1 .. i only (0: all of 0 .. i)
};

// Decode workspace: fp32 floats and int counters LaunchAttentionDecode needs for `args` (zero counters,
// left zeroed).
size_t AttentionDecodeWorkspaceFloats(const AttentionArgs& args);
size_t AttentionDecodeCounters(const AttentionArgs& args);

absl::Status LaunchRopeStore(const AttentionArgs& args, cudaStream_t stream);
absl::Status LaunchAttentionDecode(const AttentionArgs& args, float* workspace, int* counters, cudaStream_t stream);
// Whether LaunchAttentionPrefill has an instance for this head size.
bool PrefillAttentionSupports(int head_dim);
absl::Status LaunchAttentionPrefill(const AttentionArgs& args, cudaStream_t stream);

}  // namespace nibble::cuda
