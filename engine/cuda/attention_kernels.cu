#include "engine/cuda/attention_kernels.h"

#include <algorithm>
#include <cfloat>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/ptx.cuh"

namespace nibble::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// The sequence a flat token row belongs to: the largest b with seq_starts[b] <= token.
__device__ __forceinline__ int SequenceOf(const AttentionArgs& a, int token) {
  int lo = 0;
  int hi = a.num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (a.seq_starts[mid] <= token) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// The first key position a query at `position` sees: 0, or the start of its sliding window.
__device__ __forceinline__ int FirstKey(const AttentionArgs& a, int position) {
  return a.sliding_window > 0 ? max(0, position - a.sliding_window + 1) : 0;
}

// Index of (sequence, position) in the cache's [blocks * block_size] token slots.
__device__ __forceinline__ int64_t CacheSlot(const AttentionArgs& a, int seq, int position) {
  const int block = a.block_tables[static_cast<int64_t>(seq) * a.table_width + position / a.block_size];
  return static_cast<int64_t>(block) * a.block_size + position % a.block_size;
}

// One warp per (token, head unit): units 0 .. H + K - 1 are the q and k heads, rotated in place (pairs j and
// j + Dh/2, angle position * inv_freq[j], in fp32), a k head also stored in the token's cache slot; units
// H + K .. H + 2K - 1 copy a v head into the slot. A lane's pairs are all loaded before any is stored (the
// row is written in place, so interleaved loads and stores would serialize on memory latency).
constexpr int kRopeWarpsPerBlock = 4;
constexpr int kRopeMaxPairsPerLane = 4;  // head_dim <= 256: at most 128 pairs over 32 lanes

__global__ void __launch_bounds__(32 * kRopeWarpsPerBlock) rope_store_kernel(AttentionArgs a) {
  const int token = blockIdx.x;
  const int unit = blockIdx.y * kRopeWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (unit >= a.num_heads + 2 * a.num_kv_heads) return;
  const int position = a.positions[token];
  const int half_dim = a.head_dim / 2;
  const int64_t width = static_cast<int64_t>(a.num_heads + 2 * a.num_kv_heads) * a.head_dim;
  half* head = a.qkv + token * width + static_cast<int64_t>(unit) * a.head_dim;
  // The token's cache slot, looked up only by the k and v units (q heads never touch the cache).
  auto cache_slot = [&] { return CacheSlot(a, SequenceOf(a, token), position); };
  if (unit >= a.num_heads + a.num_kv_heads) {  // a v head: copy it into the cache slot
    const int64_t slot = cache_slot();
    half* v = a.v_cache + (slot * a.num_kv_heads + (unit - a.num_heads - a.num_kv_heads)) * a.head_dim;
    for (int i = lane; i < a.head_dim; i += 32) v[i] = head[i];
    return;
  }
  float x0[kRopeMaxPairsPerLane];
  float x1[kRopeMaxPairsPerLane];
#pragma unroll
  for (int p = 0; p < kRopeMaxPairsPerLane; ++p) {
    const int j = lane + 32 * p;
    if (j < half_dim) {
      x0[p] = __half2float(head[j]);
      x1[p] = __half2float(head[j + half_dim]);
    }
  }
  half* k =
      unit >= a.num_heads ? a.k_cache + (cache_slot() * a.num_kv_heads + (unit - a.num_heads)) * a.head_dim : nullptr;
#pragma unroll
  for (int p = 0; p < kRopeMaxPairsPerLane; ++p) {
    const int j = lane + 32 * p;
    if (j >= half_dim) continue;
    float sin;
    float cos;
    sincosf(static_cast<float>(position) * a.inv_freq[j], &sin, &cos);
    const half r0 = __float2half(x0[p] * cos - x1[p] * sin);
    const half r1 = __float2half(x0[p] * sin + x1[p] * cos);
    head[j] = r0;
    head[j + half_dim] = r1;
    if (k != nullptr) {
      k[j] = r0;
      k[j + half_dim] = r1;
    }
  }
}

constexpr int kDecodeThreads = 128;
constexpr int kDecodeHeadsPerPass = 8;  // query heads of a KV group accumulated together in registers

// Partitions of the most keys a query sees: the longest context's, or the window's where that is shorter.
int DecodePartitions(const AttentionArgs& a) {
  const int keys = a.sliding_window > 0 ? std::min(a.max_context, a.sliding_window) : a.max_context;
  return (keys + kDecodePartition - 1) / kDecodePartition;
}

size_t DecodeSharedBytes(const AttentionArgs& a) {
  const int group = a.num_heads / a.num_kv_heads;
  // K and V of the partition [partition][Dh] fp16, then q [group][Dh], scores [group][partition], softmax
  // stats [group][2] and cross-warp sums [4][8][Dh] in fp32.
  return sizeof(half) * 2 * static_cast<size_t>(kDecodePartition) * a.head_dim +
         sizeof(float) * (static_cast<size_t>(group) * a.head_dim + static_cast<size_t>(group) * kDecodePartition +
                          2 * group + 4 * kDecodeHeadsPerPass * static_cast<size_t>(a.head_dim));
}

// Block (token, kv head, partition): the token's query heads of that KV group against the partition's keys
// (partition p: the token's first visible key + 64 p onwards).
// The block first copies the partition's keys and values (16-byte chunks from the paged cache) into shared
// memory, all in flight at once (one memory latency, not one per key), then works from shared memory:
// kMaxHeadDim / 8 lanes share a key, 8 dims each; lanes beyond head_dim idle. Results go to `out` directly when there
// is one partition; otherwise each block writes its unnormalised sums with its softmax max and denominator, and the
// last block of (token, kv head) merges them.
template <int kMaxHeadDim>
__global__ void __launch_bounds__(kDecodeThreads)
    attention_decode_kernel(AttentionArgs a, float* workspace, int* counters, int partitions) {
  constexpr int kLanesPerKey = kMaxHeadDim / 8;
  constexpr int kKeysPerPass = kDecodeThreads / kLanesPerKey;
  const int token = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int partition = blockIdx.z;
  const int group = a.num_heads / a.num_kv_heads;
  const int dh = a.head_dim;
  const int seq = SequenceOf(a, token);
  const int position = a.positions[token];
  const int begin = FirstKey(a, position) + partition * kDecodePartition;
  const int end = min(begin + kDecodePartition, position + 1);
  const int count = end - begin;
  const int64_t width = static_cast<int64_t>(a.num_heads + 2 * a.num_kv_heads) * dh;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int key_lane = threadIdx.x % kLanesPerKey;
  const int key_slot = threadIdx.x / kLanesPerKey;
  const int d0 = key_lane * 8;
  const bool has_dims = d0 < dh;

  extern __shared__ float shared[];
  half* keys = reinterpret_cast<half*>(shared);                         // [kDecodePartition][Dh]
  half* values = keys + kDecodePartition * dh;                          // [kDecodePartition][Dh]
  float* q = reinterpret_cast<float*>(values + kDecodePartition * dh);  // [group][Dh], pre-scaled by 1/sqrt(Dh)
  float* scores = q + group * dh;                                       // [group][kDecodePartition]
  float* stats = scores + group * kDecodePartition;                     // [group][2]: max, sum of exp
  float* sums = stats + 2 * group;                                      // [4 warps][kDecodeHeadsPerPass][Dh]
  // Per (token, head, partition): Dh floats of sums then (max, denominator).
  auto partial = [&](int head, int p) {
    return workspace + ((static_cast<int64_t>(token) * a.num_heads + head) * partitions + p) * (dh + 2);
  };

  if (count > 0) {
    // 1. Every key and value chunk of the partition in flight at once; the group's queries meanwhile.
    const int chunks = dh / 8;
    for (int i = threadIdx.x; i < count * chunks; i += kDecodeThreads) {
      const int key = i / chunks;
      const int chunk = i % chunks;
      const int64_t offset = (CacheSlot(a, seq, begin + key) * a.num_kv_heads + kv_head) * dh + chunk * 8;
      CopyAsync16(keys + key * dh + chunk * 8, a.k_cache + offset);
      CopyAsync16(values + key * dh + chunk * 8, a.v_cache + offset);
    }
    CommitCopies();
    const half* q_row = a.qkv + token * width + static_cast<int64_t>(kv_head) * group * dh;
    const float scale = 1.0f / sqrtf(static_cast<float>(dh));
    for (int i = threadIdx.x; i < group * dh; i += kDecodeThreads) q[i] = __half2float(q_row[i]) * scale;
    WaitCopies<0>();
    __syncthreads();

    // 2. Scores of every key in the partition for every query head of the group. Every lane runs the same
    //    number of passes (the shuffles need the whole warp); a lane past the last key computes zeros.
    for (int pass = 0; pass < count; pass += kKeysPerPass) {
      const int i = pass + key_slot;
      const bool valid = i < count && has_dims;
      float k[8] = {};
      if (valid) {
        const uint4 raw = *reinterpret_cast<const uint4*>(keys + i * dh + d0);
        const half2* halves = reinterpret_cast<const half2*>(&raw);
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(halves[e]);
          k[2 * e] = f.x;
          k[2 * e + 1] = f.y;
        }
      }
      for (int h = 0; h < group; ++h) {
        float dot = 0.0f;
        if (valid) {
          for (int e = 0; e < 8; ++e) dot += q[h * dh + d0 + e] * k[e];
        }
        for (int offset = kLanesPerKey / 2; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        if (key_lane == 0 && i < count) scores[h * kDecodePartition + i] = dot;
      }
    }
    __syncthreads();

    // 3. Softmax statistics, one warp per head: scores become exp(score - max).
    for (int h = warp; h < group; h += kDecodeThreads / 32) {
      float* s = scores + h * kDecodePartition;
      float max = -FLT_MAX;
      for (int i = lane; i < count; i += 32) max = fmaxf(max, s[i]);
      for (int offset = 16; offset > 0; offset /= 2) max = fmaxf(max, __shfl_xor_sync(0xffffffffu, max, offset));
      float sum = 0.0f;
      for (int i = lane; i < count; i += 32) {
        s[i] = __expf(s[i] - max);
        sum += s[i];
      }
      for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      if (lane == 0) {
        stats[2 * h] = max;
        stats[2 * h + 1] = sum;
      }
    }
    __syncthreads();

    // 4. Weighted sums of the values, kDecodeHeadsPerPass heads at a time; lanes sharing a key slot within
    //    a warp are summed with shuffles, the warps through shared memory.
    for (int h0 = 0; h0 < group; h0 += kDecodeHeadsPerPass) {
      const int heads = min(kDecodeHeadsPerPass, group - h0);
      float acc[kDecodeHeadsPerPass][8] = {};
      for (int i = key_slot; i < count; i += kKeysPerPass) {
        if (!has_dims) continue;
        const uint4 raw = *reinterpret_cast<const uint4*>(values + i * dh + d0);
        const half2* halves = reinterpret_cast<const half2*>(&raw);
        float v[8];
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(halves[e]);
          v[2 * e] = f.x;
          v[2 * e + 1] = f.y;
        }
#pragma unroll
        for (int hh = 0; hh < kDecodeHeadsPerPass; ++hh) {
          if (hh >= heads) break;
          const float weight = scores[(h0 + hh) * kDecodePartition + i];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[hh][e] += weight * v[e];
        }
      }
#pragma unroll
      for (int hh = 0; hh < kDecodeHeadsPerPass; ++hh) {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          for (int offset = 16; offset >= kLanesPerKey; offset /= 2) {
            acc[hh][e] += __shfl_xor_sync(0xffffffffu, acc[hh][e], offset);
          }
        }
      }
      if (lane < kLanesPerKey && has_dims) {
        for (int hh = 0; hh < heads; ++hh) {
          for (int e = 0; e < 8; ++e) sums[(warp * kDecodeHeadsPerPass + hh) * dh + d0 + e] = acc[hh][e];
        }
      }
      __syncthreads();
      for (int i = threadIdx.x; i < heads * dh; i += kDecodeThreads) {
        const int hh = i / dh;
        const int d = i % dh;
        float total = 0.0f;
        for (int w = 0; w < kDecodeThreads / 32; ++w) total += sums[(w * kDecodeHeadsPerPass + hh) * dh + d];
        const int head = kv_head * group + h0 + hh;
        if (partitions == 1) {
          a.out[token * static_cast<int64_t>(a.num_heads) * dh + head * dh + d] =
              __float2half(total / stats[2 * (h0 + hh) + 1]);
        } else {
          float* p = partial(head, partition);
          p[d] = total;
          if (d == 0) {
            p[dh] = stats[2 * (h0 + hh)];
            p[dh + 1] = stats[2 * (h0 + hh) + 1];
          }
        }
      }
      __syncthreads();
    }
  } else if (partitions > 1) {
    // No key of this token falls in the partition: mark it empty for the merge.
    for (int h = threadIdx.x; h < group; h += kDecodeThreads) {
      float* p = partial(kv_head * group + h, partition);
      p[dh] = -FLT_MAX;
      p[dh + 1] = 0.0f;
    }
  }
  if (partitions == 1) return;

  // 5. The last block of this (token, kv head) merges the partitions: out = sum_p e^(m_p - M) acc_p / L.
  __shared__ bool is_last;
  __threadfence();
  __syncthreads();
  int* counter = counters + token * a.num_kv_heads + kv_head;
  if (threadIdx.x == 0) is_last = atomicAdd(counter, 1) == partitions - 1;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  for (int i = threadIdx.x; i < group * dh; i += kDecodeThreads) {
    const int head = kv_head * group + i / dh;
    const int d = i % dh;
    float max = -FLT_MAX;
    for (int p = 0; p < partitions; ++p) max = fmaxf(max, __ldcg(partial(head, p) + dh));
    float denominator = 0.0f;
    float total = 0.0f;
    for (int p = 0; p < partitions; ++p) {
      const float* part = partial(head, p);
      const float weight = __expf(__ldcg(part + dh) - max);
      denominator += weight * __ldcg(part + dh + 1);
      total += weight * __ldcg(part + d);
    }
    a.out[token * static_cast<int64_t>(a.num_heads) * dh + head * dh + d] = __float2half(total / denominator);
  }
  if (threadIdx.x == 0) *counter = 0;
}

// --- Prefill: FlashAttention-2 style, tensor cores -----------------------------------------------------

__device__ __forceinline__ uint32_t PackHalf2(float lo, float hi) {
  half2 value = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&value);
}

constexpr int kPrefillQueries = 64;  // per block: 4 warps x 16 query rows
constexpr int kPrefillKeys = 64;     // per shared-memory tile of K and V

// Block (query tile, sequence, head). Each warp owns 16 query rows (its MMA's M), keeps its Q fragments in
// registers (pre-scaled by log2(e) / sqrt(Dh) so the softmax uses exp2), and walks key tiles of 64 from
// the tile's first visible key (0 without a sliding window) to its last query position, with an online
// softmax per row. K and V tiles are staged in shared memory with rows padded by 16 bytes so that fragment
// loads hit 32 distinct banks.
template <int kHeadDim>
__global__ void __launch_bounds__(128) attention_prefill_kernel(AttentionArgs a) {
  constexpr int kStride = kHeadDim + 8;  // halves per shared row
  constexpr int kDimChunks = kHeadDim / 16;
  constexpr int kDimTiles = kHeadDim / 8;
  __shared__ alignas(16) half k_tile[kPrefillKeys * kStride];
  __shared__ alignas(16) half v_tile[kPrefillKeys * kStride];

  const int seq = blockIdx.y;
  const int head = blockIdx.z;
  const int kv_head = head / (a.num_heads / a.num_kv_heads);
  const int seq_start = a.seq_starts[seq];
  const int new_tokens = a.seq_starts[seq + 1] - seq_start;
  const int q0 = blockIdx.x * kPrefillQueries;
  if (q0 >= new_tokens) return;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const int64_t width = static_cast<int64_t>(a.num_heads + 2 * a.num_kv_heads) * kHeadDim;

  // This lane's two query rows (g and g + 8 of the warp's 16) and their positions (-1: past the chunk).
  const int row_a = q0 + warp * 16 + g;
  const int row_b = row_a + 8;
  const int pos_a = row_a < new_tokens ? a.positions[seq_start + row_a] : -1;
  const int pos_b = row_b < new_tokens ? a.positions[seq_start + row_b] : -1;
  // The last key before each row's window (-1 without a window: keys are never negative).
  const int before_a = a.sliding_window > 0 ? pos_a - a.sliding_window : -1;
  const int before_b = a.sliding_window > 0 ? pos_b - a.sliding_window : -1;
  const int last_position = a.positions[seq_start + min(q0 + kPrefillQueries, new_tokens) - 1];
  // Keys before the tile's first query's window are seen by none of its rows (positions rise along the chunk).
  const int first_key = FirstKey(a, a.positions[seq_start + q0]);

  uint32_t q[kDimChunks][4];
  const float scale = kLog2e / sqrtf(static_cast<float>(kHeadDim));
  auto load_q = [&](int row, int col) -> uint32_t {
    if (row >= new_tokens) return 0u;
    const half2 v = *reinterpret_cast<const half2*>(a.qkv + (seq_start + row) * width + head * kHeadDim + col);
    const float2 f = __half22float2(v);
    return PackHalf2(f.x * scale, f.y * scale);
  };
#pragma unroll
  for (int c = 0; c < kDimChunks; ++c) {
    q[c][0] = load_q(row_a, c * 16 + 2 * t);
    q[c][1] = load_q(row_b, c * 16 + 2 * t);
    q[c][2] = load_q(row_a, c * 16 + 2 * t + 8);
    q[c][3] = load_q(row_b, c * 16 + 2 * t + 8);
  }

  float o[kDimTiles][4] = {};
  float max_a = -FLT_MAX;
  float max_b = -FLT_MAX;
  float sum_a = 0.0f;  // this lane's share of the row's denominator (summed over the quad at the end)
  float sum_b = 0.0f;

  for (int k0 = first_key; k0 <= last_position; k0 += kPrefillKeys) {
    // 1. Stage 64 keys and values (16-byte chunks; keys past the last query position are zeros).
    __syncthreads();
    for (int i = threadIdx.x; i < kPrefillKeys * kDimTiles; i += blockDim.x) {
      const int key = i / kDimTiles;
      const int chunk = i % kDimTiles;
      uint4 k_value = make_uint4(0, 0, 0, 0);
      uint4 v_value = make_uint4(0, 0, 0, 0);
      if (k0 + key <= last_position) {
        const int64_t offset = (CacheSlot(a, seq, k0 + key) * a.num_kv_heads + kv_head) * kHeadDim + chunk * 8;
        k_value = *reinterpret_cast<const uint4*>(a.k_cache + offset);
        v_value = *reinterpret_cast<const uint4*>(a.v_cache + offset);
      }
      *reinterpret_cast<uint4*>(k_tile + key * kStride + chunk * 8) = k_value;
      *reinterpret_cast<uint4*>(v_tile + key * kStride + chunk * 8) = v_value;
    }
    __syncthreads();

    // 2. Scores S = Q K^T for 16 rows x 64 keys: 8 MMA tiles of 8 keys.
    float s[8][4] = {};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int c = 0; c < kDimChunks; ++c) {
        const half* key_row = k_tile + (j * 8 + g) * kStride + c * 16 + 2 * t;
        const uint32_t b[2] = {*reinterpret_cast<const uint32_t*>(key_row),
                               *reinterpret_cast<const uint32_t*>(key_row + 8)};
        Mma16816(s[j], q[c], b);
      }
    }

    // 3. Causal (and sliding-window) mask and online softmax. Fragment e of tile j: row a (e < 2) or b, key
    //    k0 + 8j + 2t + (e & 1).
    float tile_max_a = -FLT_MAX;
    float tile_max_b = -FLT_MAX;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = k0 + 8 * j + 2 * t + (e & 1);
        const bool row_is_a = e < 2;
        if (key > (row_is_a ? pos_a : pos_b) || key <= (row_is_a ? before_a : before_b)) s[j][e] = -FLT_MAX;
        if (row_is_a) {
          tile_max_a = fmaxf(tile_max_a, s[j][e]);
        } else {
          tile_max_b = fmaxf(tile_max_b, s[j][e]);
        }
      }
    }
    for (int offset = 1; offset <= 2; offset *= 2) {
      tile_max_a = fmaxf(tile_max_a, __shfl_xor_sync(0xffffffffu, tile_max_a, offset));
      tile_max_b = fmaxf(tile_max_b, __shfl_xor_sync(0xffffffffu, tile_max_b, offset));
    }
    const float new_max_a = fmaxf(max_a, tile_max_a);
    const float new_max_b = fmaxf(max_b, tile_max_b);
    // A row with no visible key yet (or past the chunk) keeps max -FLT_MAX: its weights must stay 0.
    const float rescale_a = exp2f(max_a - new_max_a);
    const float rescale_b = exp2f(max_b - new_max_b);
    max_a = new_max_a;
    max_b = new_max_b;
    sum_a *= rescale_a;
    sum_b *= rescale_b;
#pragma unroll
    for (int d = 0; d < kDimTiles; ++d) {
      o[d][0] *= rescale_a;
      o[d][1] *= rescale_a;
      o[d][2] *= rescale_b;
      o[d][3] *= rescale_b;
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool row_is_a = e < 2;
        const float row_max = row_is_a ? max_a : max_b;
        const float p = s[j][e] == -FLT_MAX ? 0.0f : exp2f(s[j][e] - row_max);
        s[j][e] = p;
        if (row_is_a) {
          sum_a += p;
        } else {
          sum_b += p;
        }
      }
    }

    // 4. O += P V: P's accumulator fragments of tiles 2c and 2c + 1 form the A fragment of key chunk c.
#pragma unroll
    for (int c = 0; c < kPrefillKeys / 16; ++c) {
      const uint32_t p[4] = {PackHalf2(s[2 * c][0], s[2 * c][1]), PackHalf2(s[2 * c][2], s[2 * c][3]),
                             PackHalf2(s[2 * c + 1][0], s[2 * c + 1][1]), PackHalf2(s[2 * c + 1][2], s[2 * c + 1][3])};
#pragma unroll
      for (int d = 0; d < kDimTiles; ++d) {
        uint32_t b[2];
        LoadMatrixX2Trans(v_tile + (c * 16 + lane % 16) * kStride + d * 8, b);
        Mma16816(o[d], p, b);
      }
    }
  }

  // 5. Normalise by the row's denominator (summed over the quad) and write the rows of this chunk.
  for (int offset = 1; offset <= 2; offset *= 2) {
    sum_a += __shfl_xor_sync(0xffffffffu, sum_a, offset);
    sum_b += __shfl_xor_sync(0xffffffffu, sum_b, offset);
  }
  const int64_t out_width = static_cast<int64_t>(a.num_heads) * kHeadDim;
#pragma unroll
  for (int d = 0; d < kDimTiles; ++d) {
    const int col = head * kHeadDim + d * 8 + 2 * t;
    if (row_a < new_tokens) {
      *reinterpret_cast<half2*>(a.out + (seq_start + row_a) * out_width + col) =
          __floats2half2_rn(o[d][0] / sum_a, o[d][1] / sum_a);
    }
    if (row_b < new_tokens) {
      *reinterpret_cast<half2*>(a.out + (seq_start + row_b) * out_width + col) =
          __floats2half2_rn(o[d][2] / sum_b, o[d][3] / sum_b);
    }
  }
}

using DecodeKernel = void (*)(AttentionArgs, float*, int*, int);
struct DecodeInstance {
  int max_head_dim;
  DecodeKernel kernel;
};
// Head sizes are rounded up to the next instance; 64 and 128 run without idle lanes.
constexpr DecodeInstance kDecodeInstances[] = {
    {8, attention_decode_kernel<8>},   {16, attention_decode_kernel<16>},   {32, attention_decode_kernel<32>},
    {64, attention_decode_kernel<64>}, {128, attention_decode_kernel<128>}, {256, attention_decode_kernel<256>},
};

absl::Status CheckArgs(const AttentionArgs& a, absl::string_view kernel) {
  if (a.head_dim % 8 != 0 || a.head_dim < 8 || a.head_dim > 256 || a.num_kv_heads <= 0 ||
      a.num_heads % a.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(kernel, ": head_dim ", a.head_dim, " with ", a.num_heads,
                                                   " heads and ", a.num_kv_heads,
                                                   " KV heads is not supported (head_dim must be a "
                                                   "multiple of 8 in 8..256, heads a multiple of KV heads)"));
  }
  return absl::OkStatus();
}

}  // namespace

size_t AttentionDecodeWorkspaceFloats(const AttentionArgs& args) {
  const int partitions = DecodePartitions(args);
  return partitions > 1 ? static_cast<size_t>(args.num_tokens) * args.num_heads * partitions * (args.head_dim + 2) : 0;
}

size_t AttentionDecodeCounters(const AttentionArgs& args) {
  return static_cast<size_t>(args.num_tokens) * args.num_kv_heads;
}

absl::Status LaunchRopeStore(const AttentionArgs& args, cudaStream_t stream) {
  NIBBLE_RETURN_IF_ERROR(CheckArgs(args, "rope_store_kernel"));
  if (args.num_tokens == 0) return absl::OkStatus();
  const int units = args.num_heads + 2 * args.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(args.num_tokens),
                  static_cast<unsigned>((units + kRopeWarpsPerBlock - 1) / kRopeWarpsPerBlock));
  rope_store_kernel<<<grid, 32 * kRopeWarpsPerBlock, 0, stream>>>(args);
  return LaunchStatus("rope_store_kernel");
}

absl::Status LaunchAttentionDecode(const AttentionArgs& args, float* workspace, int* counters, cudaStream_t stream) {
  NIBBLE_RETURN_IF_ERROR(CheckArgs(args, "attention_decode_kernel"));
  const int partitions = DecodePartitions(args);
  if (args.num_tokens == 0 || partitions == 0) return absl::OkStatus();
  if (partitions > 1 && (workspace == nullptr || counters == nullptr)) {
    return absl::InvalidArgumentError("attention_decode_kernel: several partitions need a workspace");
  }
  const DecodeInstance* instance = nullptr;
  for (const DecodeInstance& candidate : kDecodeInstances) {
    if (instance == nullptr && candidate.max_head_dim >= args.head_dim) instance = &candidate;
  }
  const size_t shared = DecodeSharedBytes(args);
  NIBBLE_RETURN_IF_ERROR(CudaStatus(
      cudaFuncSetAttribute(instance->kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
      "attention_decode_kernel shared memory"));
  const dim3 grid(static_cast<unsigned>(args.num_tokens), static_cast<unsigned>(args.num_kv_heads),
                  static_cast<unsigned>(partitions));
  instance->kernel<<<grid, kDecodeThreads, shared, stream>>>(args, workspace, counters, partitions);
  return LaunchStatus("attention_decode_kernel");
}

bool PrefillAttentionSupports(int head_dim) { return head_dim == 64 || head_dim == 128; }

absl::Status LaunchAttentionPrefill(const AttentionArgs& args, cudaStream_t stream) {
  NIBBLE_RETURN_IF_ERROR(CheckArgs(args, "attention_prefill_kernel"));
  if (args.num_tokens == 0) return absl::OkStatus();
  const dim3 grid(static_cast<unsigned>((args.max_new_tokens + kPrefillQueries - 1) / kPrefillQueries),
                  static_cast<unsigned>(args.num_seqs), static_cast<unsigned>(args.num_heads));
  if (args.head_dim == 64) {
    attention_prefill_kernel<64><<<grid, 128, 0, stream>>>(args);
  } else if (args.head_dim == 128) {
    attention_prefill_kernel<128><<<grid, 128, 0, stream>>>(args);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("attention_prefill_kernel: no instance for head_dim ", args.head_dim, " (compiled: 64, 128)"));
  }
  return LaunchStatus("attention_prefill_kernel");
}

}  // namespace nibble::cuda
