#include "engine/cuda/sampling_kernels.h"

#include <cfloat>

#include "engine/cuda/cuda_status.h"

namespace nibble::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

// Warp-then-block reductions in a fixed order (deterministic); `scratch` holds kWarps values.
template <typename T, typename Op>
__device__ T BlockReduce(T value, Op op, T* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  T total = scratch[0];
  for (int w = 1; w < kWarps; ++w) total = op(total, scratch[w]);
  return total;
}

__device__ float MaxOp(float a, float b) { return fmaxf(a, b); }
__device__ float SumOp(float a, float b) { return a + b; }

// Float -> unsigned key with the same order (negative floats flipped entirely, positive ones by sign bit).
__device__ __forceinline__ uint32_t OrderKey(float value) {
  const uint32_t bits = __float_as_uint(value);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

// splitmix64, as engine/runtime/sampling.cc's CounterUniform.
__device__ uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
__device__ float CounterUniform(uint64_t seed, uint64_t step) {
  return static_cast<float>(SplitMix64(SplitMix64(seed) ^ step) >> 40) * 0x1.0p-24f;
}

// Per-digit (4 bits) counts and probability sums of the keys that match `prefix` on the digits above
// `shift`, summed warp by warp in a fixed order. Used by the radix walks below.
struct DigitHistogram {
  int count[16];
  float sum[16];
};

__device__ void BuildHistogram(const float* work, int vocab, float max, float inv_temperature, uint32_t floor_key,
                               uint32_t prefix, int shift, DigitHistogram* out, DigitHistogram* warp_scratch) {
  int count[16] = {};
  float sum[16] = {};
  const uint32_t high_mask = shift == 28 ? 0u : ~0u << (shift + 4);
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const uint32_t key = OrderKey(work[i]);
    if (key < floor_key || (key & high_mask) != (prefix & high_mask)) continue;
    const int digit = (key >> shift) & 0xF;
    ++count[digit];
    sum[digit] += __expf((work[i] - max) * inv_temperature);
  }
  for (int d = 0; d < 16; ++d) {
    for (int offset = 16; offset > 0; offset /= 2) {
      count[d] += __shfl_xor_sync(0xffffffffu, count[d], offset);
      sum[d] += __shfl_xor_sync(0xffffffffu, sum[d], offset);
    }
  }
  if (threadIdx.x % 32 == 0) {
    for (int d = 0; d < 16; ++d) {
      warp_scratch[threadIdx.x / 32].count[d] = count[d];
      warp_scratch[threadIdx.x / 32].sum[d] = sum[d];
    }
  }
  __syncthreads();
  if (threadIdx.x < 16) {
    int total_count = 0;
    float total_sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      total_count += warp_scratch[w].count[threadIdx.x];
      total_sum += warp_scratch[w].sum[threadIdx.x];
    }
    out->count[threadIdx.x] = total_count;
    out->sum[threadIdx.x] = total_sum;
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits_all, float* work_all, int vocab, const SamplingRow* params_all,
                  const PenaltyEntry* penalties, SampledRow* out_all) {
  __shared__ float float_scratch[kWarps];
  __shared__ int int_scratch[kWarps];
  __shared__ DigitHistogram warp_histograms[kWarps];
  __shared__ DigitHistogram histogram;
  __shared__ float prefix_scratch[kWarps];

  const int row = blockIdx.x;
  const float* logits = logits_all + static_cast<int64_t>(row) * vocab;
  float* work = work_all + static_cast<int64_t>(row) * vocab;
  const SamplingRow p = params_all[row];
  SampledRow* out = out_all + row;

  // 1. Raw log-softmax normaliser: max and log-sum-exp of the untouched logits.
  float local_max = -FLT_MAX;
  for (int i = threadIdx.x; i < vocab; i += kThreads) local_max = fmaxf(local_max, logits[i]);
  const float raw_max = BlockReduce(local_max, MaxOp, float_scratch);
  float local_sum = 0.0f;
  for (int i = threadIdx.x; i < vocab; i += kThreads) local_sum += __expf(logits[i] - raw_max);
  const float log_normaliser = raw_max + __logf(BlockReduce(local_sum, SumOp, float_scratch));

  // 2. Penalties, into the work copy (entries name distinct tokens: no two threads write one element).
  for (int i = threadIdx.x; i < vocab; i += kThreads) work[i] = logits[i];
  __syncthreads();
  for (int e = p.penalty_begin + static_cast<int>(threadIdx.x); e < p.penalty_end; e += kThreads) {
    const PenaltyEntry entry = penalties[e];
    float value = work[entry.token];
    if (p.repetition_penalty != 1.0f && (entry.in_prompt || entry.output_count > 0)) {
      value = value > 0.0f ? value / p.repetition_penalty : value * p.repetition_penalty;
    }
    if (entry.output_count > 0)
      value -= p.presence_penalty + p.frequency_penalty * static_cast<float>(entry.output_count);
    work[entry.token] = value;
  }
  __syncthreads();

  // Argmax with the lowest id on ties, as (key << 32 | ~id) maxima.
  auto argmax = [&]() {
    unsigned long long best = 0;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const unsigned long long candidate =
          (static_cast<unsigned long long>(OrderKey(work[i])) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(i));
      best = candidate > best ? candidate : best;
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      const unsigned long long other = __shfl_xor_sync(0xffffffffu, best, offset);
      best = other > best ? other : best;
    }
    __shared__ unsigned long long warp_best[kWarps];
    __syncthreads();
    if (threadIdx.x % 32 == 0) warp_best[threadIdx.x / 32] = best;
    __syncthreads();
    unsigned long long total = warp_best[0];
    for (int w = 1; w < kWarps; ++w) total = warp_best[w] > total ? warp_best[w] : total;
    return static_cast<int>(0xFFFFFFFFu - static_cast<uint32_t>(total & 0xFFFFFFFFu));
  };

  int token;
  if (p.temperature <= 0.0f) {
    // 3. Greedy.
    token = argmax();
  } else {
    // 4. Cutoff key. Probabilities are exp((w - max) / T), computed where needed.
    float max_local = -FLT_MAX;
    for (int i = threadIdx.x; i < vocab; i += kThreads) max_local = fmaxf(max_local, work[i]);
    const float max_logit = BlockReduce(max_local, MaxOp, float_scratch);
    const float inv_t = 1.0f / p.temperature;
    uint32_t cutoff = 0;  // keys >= cutoff are kept
    if (p.top_k > 0 && p.top_k < vocab) {
      // k-th largest key: radix walk from the top digit, counting down.
      uint32_t prefix = 0;
      int remaining = p.top_k;
      for (int shift = 28; shift >= 0; shift -= 4) {
        BuildHistogram(work, vocab, max_logit, inv_t, 0u, prefix, shift, &histogram, warp_histograms);
        int digit = 15;
        while (digit > 0 && histogram.count[digit] < remaining) remaining -= histogram.count[digit--];
        prefix |= static_cast<uint32_t>(digit) << shift;
      }
      cutoff = prefix;
    }
    if (p.top_p < 1.0f) {
      // Largest key v with (sum of p over keys >= v) >= top_p * (sum over keys >= cutoff).
      BuildHistogram(work, vocab, max_logit, inv_t, cutoff, 0u, 28, &histogram, warp_histograms);
      float total = 0.0f;
      for (int d = 0; d < 16; ++d) total += histogram.sum[d];
      const float target = p.top_p * total;
      uint32_t prefix = 0;
      float above = 0.0f;  // probability of keys above the current prefix's range
      for (int shift = 28; shift >= 0; shift -= 4) {
        if (shift != 28)
          BuildHistogram(work, vocab, max_logit, inv_t, cutoff, prefix, shift, &histogram, warp_histograms);
        int digit = 15;
        while (digit > 0 && above + histogram.sum[digit] < target) above += histogram.sum[digit--];
        prefix |= static_cast<uint32_t>(digit) << shift;
      }
      cutoff = ::max(cutoff, prefix);
    }
    if (p.min_p > 0.0f) cutoff = ::max(cutoff, OrderKey(max_logit + p.temperature * __logf(p.min_p)));

    // 5. Inverse CDF in id order: each thread sums a contiguous chunk, a block scan finds the chunk.
    const int chunk = (vocab + kThreads - 1) / kThreads;
    const int first = threadIdx.x * chunk;
    const int last = min(vocab, first + chunk);
    float mine = 0.0f;
    for (int i = first; i < last; ++i) {
      if (OrderKey(work[i]) >= cutoff) mine += __expf((work[i] - max_logit) * inv_t);
    }
    // Inclusive scan over threads: within the warp by shuffles, then across warps in a fixed order. Thread
    // i owns [begin_i, end_i) with begin_i the previous thread's end_i computed by the same operations, so
    // the ranges tile [0, total) without gaps or overlaps whatever the rounding.
    float inclusive = mine;
    for (int offset = 1; offset < 32; offset *= 2) {
      const float other = __shfl_up_sync(0xffffffffu, inclusive, offset);
      if (threadIdx.x % 32 >= offset) inclusive += other;
    }
    if (threadIdx.x % 32 == 31) prefix_scratch[threadIdx.x / 32] = inclusive;
    __syncthreads();
    float warp_offset = 0.0f;
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      if (w == static_cast<int>(threadIdx.x / 32)) warp_offset = total;
      total += prefix_scratch[w];
    }
    const float previous_inclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
    const float end = warp_offset + inclusive;
    const float begin = threadIdx.x % 32 == 0 ? warp_offset : warp_offset + previous_inclusive;
    const float target = CounterUniform(p.seed, p.step) * total;
    __shared__ int chosen;
    if (threadIdx.x == 0) chosen = -1;
    __syncthreads();
    if (mine > 0.0f && target >= begin && target < end) {
      // This thread's chunk holds the target: walk it (the last kept token if rounding runs past its end).
      float running = begin;
      int pick = -1;
      for (int i = first; i < last; ++i) {
        if (OrderKey(work[i]) < cutoff) continue;
        running += __expf((work[i] - max_logit) * inv_t);
        pick = i;
        if (target < running) break;
      }
      chosen = pick;
    }
    __syncthreads();
    if (chosen < 0) {
      // Rounding put the target at the very end: take the last kept token.
      int last_kept = -1;
      for (int i = threadIdx.x; i < vocab; i += kThreads) {
        if (OrderKey(work[i]) >= cutoff) last_kept = i;
      }
      for (int offset = 16; offset > 0; offset /= 2)
        last_kept = ::max(last_kept, __shfl_xor_sync(0xffffffffu, last_kept, offset));
      if (threadIdx.x % 32 == 0) int_scratch[threadIdx.x / 32] = last_kept;
      __syncthreads();
      if (threadIdx.x == 0) {
        for (int w = 0; w < kWarps; ++w) chosen = ::max(chosen, int_scratch[w]);
      }
      __syncthreads();
    }
    token = chosen;
  }

  // 6. Log-probabilities of the chosen token and of the most likely raw tokens, best first (ties: lower id).
  if (threadIdx.x == 0) {
    out->token = token;
    out->logprob = logits[token] - log_normaliser;
  }
  unsigned long long previous = ~0ull;
  for (int n = 0; n < min(p.num_logprobs, kMaxTopLogprobs); ++n) {
    unsigned long long best = 0;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const unsigned long long candidate =
          (static_cast<unsigned long long>(OrderKey(logits[i])) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(i));
      if (candidate < previous && candidate > best) best = candidate;
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      const unsigned long long other = __shfl_xor_sync(0xffffffffu, best, offset);
      best = other > best ? other : best;
    }
    __shared__ unsigned long long top_scratch[kWarps];
    __syncthreads();
    if (threadIdx.x % 32 == 0) top_scratch[threadIdx.x / 32] = best;
    __syncthreads();
    unsigned long long total = top_scratch[0];
    for (int w = 1; w < kWarps; ++w) total = top_scratch[w] > total ? top_scratch[w] : total;
    previous = total;
    if (threadIdx.x == 0) {
      const int id = static_cast<int>(0xFFFFFFFFu - static_cast<uint32_t>(total & 0xFFFFFFFFu));
      out->top_tokens[n] = id;
      out->top_logprobs[n] = logits[id] - log_normaliser;
    }
  }
}

}  // namespace

absl::Status LaunchSample(const float* logits, float* work, int rows, int vocab, const SamplingRow* params,
                          const PenaltyEntry* penalties, SampledRow* out, cudaStream_t stream) {
  if (rows == 0) return absl::OkStatus();
  sample_kernel<<<rows, kThreads, 0, stream>>>(logits, work, vocab, params, penalties, out);
  return LaunchStatus("sample_kernel");
}

}  // namespace nibble::cuda
