#include "engine/cuda/w4a16_kernels.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/w4a16_layout.h"

namespace nibble::cuda {
namespace {

constexpr int kWarps = 8;  // per block: they split the block's K range (interleaved k-tiles)
constexpr int kThreads = 32 * kWarps;

// fp16 1024.0 in both halves. OR-ing a 4-bit code q into bits 0..3 of 0x6400 gives the fp16 number
// 1024 + q (at exponent 10 the mantissa's unit is exactly 1); OR-ing it into bits 4..7 gives 1024 + 16 q.
constexpr uint32_t kMagic1024 = 0x64006400u;

__device__ __forceinline__ uint32_t AndOr(uint32_t a, uint32_t mask, uint32_t bits) {
  uint32_t result;
  // lop3 immediate 0xEA is the truth table of (a & b) | c.
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(result) : "r"(a), "r"(mask), "r"(bits));
  return result;
}

__device__ __forceinline__ half2 AsHalf2(uint32_t bits) { return *reinterpret_cast<half2*>(&bits); }
__device__ __forceinline__ uint32_t AsU32(half2 value) { return *reinterpret_cast<uint32_t*>(&value); }

// Weights are read exactly once: keep them out of L1.
__device__ __forceinline__ uint4 LoadStreaming(const uint4* address) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(address));
  return v;
}

// Zero point and scale of one group for a lane's two rows (g and g + 8 of its tile), prepared for
// DequantStep: zero_lo = 1024 + z(g) (subtracted from 1024 + q), zero_hi = -(64 + z(g + 8)) (added to
// (1024 + 16 q) / 16 = 64 + q). Both subtractions are exact in fp16 (integers below 2048).
struct GroupParams {
  half2 zero_lo;
  half2 zero_hi;
  half2 scale_lo;
  half2 scale_hi;
};

__device__ __forceinline__ GroupParams LoadGroup(const half* scales, const uint32_t* zeros, int64_t n, int64_t group,
                                                 int64_t row0, int g) {
  // Rows row0 .. row0 + 15 have their zeros in two consecutive words (row0 is a multiple of 16).
  const uint2 words = *reinterpret_cast<const uint2*>(zeros + group * (n / 8) + row0 / 8);
  const half zero_lo = __ushort_as_half(static_cast<unsigned short>(0x6400u | ((words.x >> (4 * g)) & 0xFu)));
  const half zero_hi = __ushort_as_half(static_cast<unsigned short>(0x6400u | ((words.y >> (4 * g)) & 0xFu)));
  GroupParams p;
  p.zero_lo = __half2half2(zero_lo);
  p.zero_hi = __half2half2(__hsub(__float2half(960.0f), zero_hi));  // 960 - (1024 + z) = -(64 + z)
  p.scale_lo = __half2half2(scales[group * n + row0 + g]);
  p.scale_hi = __half2half2(scales[group * n + row0 + g + 8]);
  return p;
}

// One word of the tiled layout -> the four A-fragment registers of an m16n8k16 MMA, dequantized:
// a[0] rows g, a[1] rows g + 8, a[2] rows g (k + 8), a[3] rows g + 8 (k + 8). See w4a16_layout.h.
__device__ __forceinline__ void DequantStep(uint32_t q, const GroupParams& p, uint32_t a[4]) {
  const half2 sixteenth = __float2half2_rn(0.0625f);
  a[0] = AsU32(__hmul2(__hsub2(AsHalf2(AndOr(q, 0x000F000Fu, kMagic1024)), p.zero_lo), p.scale_lo));
  a[1] = AsU32(__hmul2(__hfma2(AsHalf2(AndOr(q, 0x00F000F0u, kMagic1024)), sixteenth, p.zero_hi), p.scale_hi));
  q >>= 8;
  a[2] = AsU32(__hmul2(__hsub2(AsHalf2(AndOr(q, 0x000F000Fu, kMagic1024)), p.zero_lo), p.scale_lo));
  a[3] = AsU32(__hmul2(__hfma2(AsHalf2(AndOr(q, 0x00F000F0u, kMagic1024)), sixteenth, p.zero_hi), p.scale_hi));
}

// D = A B + D with A 16x16 fp16 (row), B 16x8 fp16 (col), D 16x8 fp32.
__device__ __forceinline__ void Mma(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

struct MmaArgs {
  const uint4* tiles;
  const half* scales;
  const uint32_t* zeros;
  const half* x;
  const float* bias;
  half* y;
  float* workspace;
  int* counters;
  int m;
  int n;
  int k;
  int k_tiles_per_split;
};

// Block: kNTiles tiles of 16 output rows x a K range (blockIdx.y); its 8 warps take the range's k-tiles in
// turn. Per k-tile a warp loads one 16-byte word per tile and lane (prefetching kUnroll k-tiles), and per
// k16 step: the activations' B fragments for kTokenBlocks blocks of 8 rows of x, dequantizes its A
// fragments and issues kNTiles x kTokenBlocks MMAs. With the weights as A, the MMA's 8-wide N dimension
// holds up to 8 tokens, so M = 1..8 wastes nothing of the weight stream.
template <int kNTiles, int kTokenBlocks, int kGroupSize>
__global__ void __launch_bounds__(kThreads) w4a16_mma_kernel(MmaArgs args) {
  constexpr int kUnroll = kNTiles == 1 ? 4 : 2;                             // k-tiles of loads in flight per warp
  constexpr int kStepsPerGroup = kGroupSize >= 64 ? 4 : kGroupSize / 16;   // k16 steps sharing group params
  constexpr int kGroupsPerTile = 4 / kStepsPerGroup;
  constexpr int kFrags = kNTiles * kTokenBlocks * 4;  // accumulator floats per lane

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const int tile0 = blockIdx.x * kNTiles;
  const int k_tiles = args.k / kTileInputs;
  const int kt_begin = blockIdx.y * args.k_tiles_per_split;
  const int kt_end = min(k_tiles, kt_begin + args.k_tiles_per_split);

  float acc[kNTiles][kTokenBlocks][4];
#pragma unroll
  for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
    for (int tb = 0; tb < kTokenBlocks; ++tb)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[nt][tb][c] = 0.0f;

  for (int kt0 = kt_begin + warp; kt0 < kt_end; kt0 += kWarps * kUnroll) {
    // 1. Issue every load of kUnroll k-tiles before using any.
    uint4 words[kUnroll][kNTiles];
    GroupParams params[kUnroll][kNTiles][kGroupsPerTile];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kt = kt0 + u * kWarps;
      if (kt >= kt_end) break;
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        words[u][nt] = LoadStreaming(args.tiles + (static_cast<int64_t>(tile0 + nt) * k_tiles + kt) * 32 + lane);
#pragma unroll
        for (int gi = 0; gi < kGroupsPerTile; ++gi) {
          const int64_t group = (static_cast<int64_t>(kt) * kTileInputs + gi * kStepsPerGroup * 16) / kGroupSize;
          params[u][nt][gi] = LoadGroup(args.scales, args.zeros, args.n, group, (tile0 + nt) * kTileRows, g);
        }
      }
    }
    // 2. Four k16 steps per k-tile.
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kt = kt0 + u * kWarps;
      if (kt >= kt_end) break;
#pragma unroll
      for (int s = 0; s < 4; ++s) {
        const int k0 = kt * kTileInputs + 16 * s;
        // B fragment of tokens tb * 8 + g: b[0] = x[token][k0 + 2t, +1], b[1] = x[token][k0 + 2t + 8, +9].
        uint32_t b[kTokenBlocks][2];
#pragma unroll
        for (int tb = 0; tb < kTokenBlocks; ++tb) {
          const int token = tb * 8 + g;
          if (token < args.m) {
            const half* row = args.x + static_cast<int64_t>(token) * args.k + k0 + 2 * t;
            b[tb][0] = __ldg(reinterpret_cast<const unsigned int*>(row));
            b[tb][1] = __ldg(reinterpret_cast<const unsigned int*>(row + 8));
          } else {
            b[tb][0] = 0u;
            b[tb][1] = 0u;
          }
        }
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          const uint32_t word = s == 0 ? words[u][nt].x : s == 1 ? words[u][nt].y : s == 2 ? words[u][nt].z : words[u][nt].w;
          uint32_t a[4];
          DequantStep(word, params[u][nt][s / kStepsPerGroup], a);
#pragma unroll
          for (int tb = 0; tb < kTokenBlocks; ++tb) Mma(acc[nt][tb], a, b[tb]);
        }
      }
    }
  }

  // 3. Sum the warps' partial results through shared memory: partial[warp][fragment][lane].
  extern __shared__ float partial[];
#pragma unroll
  for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
    for (int tb = 0; tb < kTokenBlocks; ++tb)
#pragma unroll
      for (int c = 0; c < 4; ++c) partial[(warp * kFrags + (nt * kTokenBlocks + tb) * 4 + c) * 32 + lane] = acc[nt][tb][c];
  __syncthreads();

  // 4. Each result goes to y (one block along K) or is added into the fp32 workspace. Fragment c of lane l
  //    in MMA tile (nt, tb) is row (l / 4) + 8 (c >= 2) of the tile, token tb * 8 + 2 (l % 4) + (c & 1).
  const bool split = gridDim.y > 1;
  for (int idx = threadIdx.x; idx < kFrags * 32; idx += kThreads) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += partial[w * kFrags * 32 + idx];
    const int fragment = idx / 32;
    const int l = idx % 32;
    const int c = fragment % 4;
    const int tb = (fragment / 4) % kTokenBlocks;
    const int nt = fragment / 4 / kTokenBlocks;
    const int row = (tile0 + nt) * kTileRows + l / 4 + (c >= 2 ? 8 : 0);
    const int token = tb * 8 + 2 * (l % 4) + (c & 1);
    if (token >= args.m) continue;
    const int64_t out = static_cast<int64_t>(token) * args.n + row;
    if (split) {
      atomicAdd(args.workspace + out, sum);
    } else {
      args.y[out] = __float2half(sum + (args.bias != nullptr ? args.bias[row] : 0.0f));
    }
  }
  if (!split) return;

  // 5. Split-K: the last block of this column of blocks converts the sums and re-zeroes what it used.
  __shared__ bool is_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(args.counters + blockIdx.x, 1) == static_cast<int>(gridDim.y) - 1;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const int rows = kNTiles * kTileRows;
  for (int idx = threadIdx.x; idx < rows * args.m; idx += kThreads) {
    const int row = tile0 * kTileRows + idx % rows;
    const int64_t out = static_cast<int64_t>(idx / rows) * args.n + row;
    const float sum = __ldcg(args.workspace + out);
    args.y[out] = __float2half(sum + (args.bias != nullptr ? args.bias[row] : 0.0f));
    args.workspace[out] = 0.0f;
  }
  if (threadIdx.x == 0) args.counters[blockIdx.x] = 0;
}

// One warp per (token, output): lanes stride over K. The generic layout has one byte per code.
__global__ void w4a16_generic_kernel(W4DeviceWeights w, const half* x, int m, const float* bias, half* y) {
  const int64_t item = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (item >= m * w.n) return;
  const int64_t token = item / w.n;
  const int64_t col = item % w.n;
  const auto* codes = reinterpret_cast<const uint8_t*>(w.codes) + col * w.k;
  const int64_t zero_words = (w.n + 7) / 8;
  float sum = 0.0f;
  for (int64_t k = lane; k < w.k; k += 32) {
    const int64_t group = k / w.group_size;
    const float zero = static_cast<float>((w.zeros[group * zero_words + col / 8] >> (4 * (col % 8))) & 0xFu);
    const float scale = __half2float(w.scales[group * w.n + col]);
    sum += __half2float(x[token * w.k + k]) * ((static_cast<float>(codes[k]) - zero) * scale);
  }
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) y[token * w.n + col] = __float2half(sum + (bias != nullptr ? bias[col] : 0.0f));
}

// Tiled layout -> fp16 [N, K], one warp per tile, through the same DequantStep as the MMA kernel (so the
// prefill and decode paths see identical weights).
__global__ void w4a16_dequantize_tiled_kernel(W4DeviceWeights w, half* out) {
  const int64_t tile = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  const int64_t k_tiles = w.k / kTileInputs;
  if (tile >= w.n / kTileRows * k_tiles) return;
  const int64_t nt = tile / k_tiles;
  const int64_t kt = tile % k_tiles;
  const int g = lane / 4;
  const int t = lane % 4;
  const uint4 word = reinterpret_cast<const uint4*>(w.codes)[tile * 32 + lane];
  const uint32_t words[4] = {word.x, word.y, word.z, word.w};
  const int64_t row = nt * kTileRows + g;
  for (int s = 0; s < 4; ++s) {
    const int64_t k0 = kt * kTileInputs + 16 * s + 2 * t;
    const GroupParams p = LoadGroup(w.scales, w.zeros, w.n, k0 / w.group_size, nt * kTileRows, g);
    uint32_t a[4];
    DequantStep(words[s], p, a);
    *reinterpret_cast<uint32_t*>(out + row * w.k + k0) = a[0];
    *reinterpret_cast<uint32_t*>(out + (row + 8) * w.k + k0) = a[1];
    *reinterpret_cast<uint32_t*>(out + row * w.k + k0 + 8) = a[2];
    *reinterpret_cast<uint32_t*>(out + (row + 8) * w.k + k0 + 8) = a[3];
  }
}

__global__ void w4a16_dequantize_generic_kernel(W4DeviceWeights w, half* out) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= w.n * w.k) return;
  const int64_t col = index / w.k;
  const int64_t k = index % w.k;
  const int64_t group = k / w.group_size;
  const int64_t zero_words = (w.n + 7) / 8;
  const float zero = static_cast<float>((w.zeros[group * zero_words + col / 8] >> (4 * (col % 8))) & 0xFu);
  const float code = reinterpret_cast<const uint8_t*>(w.codes)[index];
  out[index] = __float2half((code - zero) * __half2float(w.scales[group * w.n + col]));
}

// The compiled instances of w4a16_mma_kernel: tiles per block x token blocks x group size.
using MmaKernel = void (*)(MmaArgs);
struct MmaInstance {
  int n_tiles;
  int token_blocks;
  int group_size;
  MmaKernel kernel;
};


#define NIBBLE_W4_INSTANCES(NT, G)                                                                    \
  MmaInstance{NT, 1, G, w4a16_mma_kernel<NT, 1, G>}, MmaInstance{NT, 2, G, w4a16_mma_kernel<NT, 2, G>}, \
      MmaInstance{NT, 3, G, w4a16_mma_kernel<NT, 3, G>}, MmaInstance{NT, 4, G, w4a16_mma_kernel<NT, 4, G>}

constexpr MmaInstance kMmaInstances[] = {
    NIBBLE_W4_INSTANCES(1, 32), NIBBLE_W4_INSTANCES(1, 64), NIBBLE_W4_INSTANCES(1, 128),
    NIBBLE_W4_INSTANCES(2, 32), NIBBLE_W4_INSTANCES(2, 64), NIBBLE_W4_INSTANCES(2, 128),
};
#undef NIBBLE_W4_INSTANCES

}  // namespace

W4MmaPlan PlanW4Mma(int64_t m, int64_t n, int64_t k, int sm_count) {
  W4MmaPlan plan;
  // Past 8 tokens each block covers two tiles so that the activations it re-reads serve twice the weights.
  plan.n_tiles_per_block = m > 8 && (n / kTileRows) % 2 == 0 ? 2 : 1;
  const int64_t blocks_n = n / kTileRows / plan.n_tiles_per_block;
  const int64_t k_tiles = k / kTileInputs;
  // Split K until there are two blocks per multiprocessor, keeping a k-tile per warp in each split.
  while (blocks_n * plan.split_k < 2 * sm_count && k_tiles / (2 * plan.split_k) >= kWarps) plan.split_k *= 2;
  return plan;
}

absl::Status LaunchW4Mma(const W4DeviceWeights& w, const half* x, int64_t m, const float* bias, half* y,
                         const W4MmaPlan& plan, float* workspace, int* counters, cudaStream_t stream) {
  if (!w.tiled || m < 1 || m > 32) {
    return absl::InvalidArgumentError(absl::StrCat("w4a16_mma_kernel: needs the tiled layout and 1..32 tokens, got ", m));
  }
  const int token_blocks = static_cast<int>((m + 7) / 8);
  const MmaInstance* instance = nullptr;
  for (const MmaInstance& candidate : kMmaInstances) {
    if (candidate.n_tiles == plan.n_tiles_per_block && candidate.token_blocks == token_blocks &&
        candidate.group_size == w.group_size) {
      instance = &candidate;
    }
  }
  if (instance == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("w4a16_mma_kernel: no instance for ", plan.n_tiles_per_block,
                                                   " tiles per block, ", token_blocks, " token blocks, group size ",
                                                   w.group_size, " (compiled: 1-2 tiles, 1-4 blocks, groups 32/64/128)"));
  }
  if ((w.n / kTileRows) % plan.n_tiles_per_block != 0 || (plan.split_k > 1 && (workspace == nullptr || counters == nullptr))) {
    return absl::InvalidArgumentError("w4a16_mma_kernel: plan does not fit the shape or lacks its workspace");
  }
  const int64_t k_tiles = w.k / kTileInputs;
  MmaArgs args{reinterpret_cast<const uint4*>(w.codes), w.scales, w.zeros, x, bias, y, workspace, counters,
               static_cast<int>(m), static_cast<int>(w.n), static_cast<int>(w.k),
               static_cast<int>((k_tiles + plan.split_k - 1) / plan.split_k)};
  const dim3 grid(static_cast<unsigned>(w.n / kTileRows / plan.n_tiles_per_block), static_cast<unsigned>(plan.split_k));
  const size_t shared = sizeof(float) * kWarps * plan.n_tiles_per_block * token_blocks * 4 * 32;
  instance->kernel<<<grid, kThreads, shared, stream>>>(args);
  return LaunchStatus("w4a16_mma_kernel");
}

absl::Status LaunchW4Dequantize(const W4DeviceWeights& w, half* out, cudaStream_t stream) {
  constexpr int kBlock = 256;
  if (w.tiled) {
    const int64_t warps = w.n / kTileRows * (w.k / kTileInputs);
    w4a16_dequantize_tiled_kernel<<<static_cast<unsigned>((warps * 32 + kBlock - 1) / kBlock), kBlock, 0, stream>>>(w, out);
    return LaunchStatus("w4a16_dequantize_tiled_kernel");
  }
  w4a16_dequantize_generic_kernel<<<static_cast<unsigned>((w.n * w.k + kBlock - 1) / kBlock), kBlock, 0, stream>>>(w, out);
  return LaunchStatus("w4a16_dequantize_generic_kernel");
}

absl::Status LaunchW4Generic(const W4DeviceWeights& w, const half* x, int64_t m, const float* bias, half* y,
                             cudaStream_t stream) {
  if (w.tiled) return absl::InvalidArgumentError("w4a16_generic_kernel: needs the generic layout");
  constexpr int kBlock = 256;
  const int64_t threads = m * w.n * 32;
  w4a16_generic_kernel<<<static_cast<unsigned>((threads + kBlock - 1) / kBlock), kBlock, 0, stream>>>(
      w, x, static_cast<int>(m), bias, y);
  return LaunchStatus("w4a16_generic_kernel");
}

}  // namespace nibble::cuda
