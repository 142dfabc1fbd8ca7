#include "engine/cuda/w4a16_kernels.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/ptx.cuh"
#include "engine/cuda/w4a16_layout.h"

namespace nibble::cuda {
namespace {

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

// Zero points of one group for a lane's two rows (g and g + 8 of its tile), prepared for DequantCodes:
// lo = 1024 + z(g) (subtracted from 1024 + q), hi = -(64 + z(g + 8)) (added to (1024 + 16 q) / 16 = 64 + q).
// Both subtractions are exact in fp16 (integers below 2048), so the fragment holds q - z exactly.
struct GroupZeros {
  half2 lo;
  half2 hi;
};

// The zero points of a lane's two rows from a (tile, group) record's 2 zero words.
__device__ __forceinline__ GroupZeros MakeGroupZeros(uint2 zeros, int g) {
  const half zero_lo = __ushort_as_half(static_cast<unsigned short>(0x6400u | ((zeros.x >> (4 * g)) & 0xFu)));
  const half zero_hi = __ushort_as_half(static_cast<unsigned short>(0x6400u | ((zeros.y >> (4 * g)) & 0xFu)));
  return {__half2half2(zero_lo), __half2half2(__hsub(__float2half(960.0f), zero_hi))};  // 960 - (1024 + z)
}

// One word of the tiled layout -> the four A-fragment registers of an m16n8k16 MMA holding q - z (exact small
// integers; the scale is applied to the MMA's fp32 result, once per group): a[0] rows g, a[1] rows g + 8,
// a[2] rows g (positions 2, 3), a[3] rows g + 8 (positions 2, 3). See w4a16_layout.h.
__device__ __forceinline__ void DequantCodes(uint32_t q, const GroupZeros& z, uint32_t a[4]) {
  const half2 sixteenth = __float2half2_rn(0.0625f);
  a[0] = AsU32(__hsub2(AsHalf2(AndOr(q, 0x000F000Fu, kMagic1024)), z.lo));
  a[1] = AsU32(__hfma2(AsHalf2(AndOr(q, 0x00F000F0u, kMagic1024)), sixteenth, z.hi));
  q >>= 8;
  a[2] = AsU32(__hsub2(AsHalf2(AndOr(q, 0x000F000Fu, kMagic1024)), z.lo));
  a[3] = AsU32(__hfma2(AsHalf2(AndOr(q, 0x00F000F0u, kMagic1024)), sixteenth, z.hi));
}

struct MmaArgs {
  const uint4* tiles;
  const half* scales;  // tile-major [N / 16][groups][16]
  const uint2* zeros;  // tile-major [N / 16][groups]
  const half* x;
  const float* bias;
  half* y;
  float* workspace;
  int* counters;
  int m;
  int n;
  int k;
  int splits;             // warps along K per group of tiles
  int k_tiles_per_split;  // contiguous k-tiles of each of them (even: stages are two k-tiles)
};

constexpr int kWarpsPerBlock = 4;
constexpr int kStageTiles = 2;  // k-tiles per pipeline stage: 128 inputs, one group of 128
constexpr int kStages = 4;      // stages per warp: three in flight while one is used (6 measured no faster)

// One stage of a warp's stream in shared memory: each lane's 16-byte word of every k-tile of every tile,
// and the (tile, group) records of the groups the stage covers.
template <int kNTiles, int kGroups>
struct Stage {
  uint4 words[kNTiles][kStageTiles][32];
  half scales[kNTiles][kGroups][kTileRows];
  uint2 zeros[kNTiles][kGroups];
};

// Every warp is an independent unit of work: kNTiles consecutive tiles of 16 output rows over a contiguous
// range of k-tiles (warp index = split * groups_of_tiles + group of tiles, so the warps of a block share a K
// range and its activations in L1). The warp streams its tiles through a kStages-deep ring of stages in
// shared memory filled by cp.async, keeping kStages - 1 stages (1 KB per tile each) in flight. Per stage each lane
// loads its activations with 16-byte loads (4 per block of 8 tokens: the B fragments of all 8 k16 steps, in
// w4a16_layout.h's TileInput order); per k16 step it turns its A fragments into q - z and issues the MMAs;
// per group it multiplies the group's fp32 sums by the rows' scales. With the weights as A, the MMA's 8-wide N
// dimension holds up to 8 tokens, so M = 1..8 reads no more weight bytes than M = 1. With one split the warp writes y;
// otherwise it adds into the fp32 workspace and the last warp of its group of tiles writes y and re-zeroes what the
// group used.
template <int kNTiles, int kTokenBlocks, int kGroupSize>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) w4a16_mma_kernel(MmaArgs args) {
  constexpr int kGroupsPerStage = kGroupSize >= kStageTiles * kTileInputs ? 1 : kStageTiles * kTileInputs / kGroupSize;
  constexpr int kStepsPerGroup = kStageTiles * kTileInputs / 16 / kGroupsPerStage;  // k16 steps per group
  using StageT = Stage<kNTiles, kGroupsPerStage>;
  __shared__ StageT stages[kWarpsPerBlock][kStages];

  const int lane = threadIdx.x % 32;
  const int warp_in_block = threadIdx.x / 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const int groups_of_tiles = args.n / kTileRows / kNTiles;
  const int warp = blockIdx.x * kWarpsPerBlock + warp_in_block;
  const int tile_group = warp % groups_of_tiles;
  const int split = warp / groups_of_tiles;
  if (split >= args.splits) return;
  const int tile0 = tile_group * kNTiles;
  const int k_tiles = args.k / kTileInputs;
  const int groups = args.k / kGroupSize;
  const int kt_begin = split * args.k_tiles_per_split;
  const int kt_end = min(k_tiles, kt_begin + args.k_tiles_per_split);
  const int stage_count = (kt_end - kt_begin + kStageTiles - 1) / kStageTiles;
  StageT* ring = stages[warp_in_block];

  // Issue the copies of stage i (and commit them as one group, empty past the end).
  auto issue = [&](int i) {
    if (i < stage_count) {
      StageT& stage = ring[i % kStages];
      const int kt0 = kt_begin + i * kStageTiles;
      const int group0 = kt0 * kTileInputs / kGroupSize;
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        const int64_t tile = tile0 + nt;
#pragma unroll
        for (int st = 0; st < kStageTiles; ++st) {
          if (kt0 + st < kt_end)
            CopyAsync16(&stage.words[nt][st][lane], args.tiles + (tile * k_tiles + kt0 + st) * 32 + lane);
        }
        // Lanes 2gi and 2gi + 1 copy group gi's 32 bytes of scales; lane 16 + gi its 8 bytes of zeros.
        if (lane < 2 * kGroupsPerStage) {
          const int gi = lane / 2;
          if (group0 + gi < groups) {
            CopyAsync16(&stage.scales[nt][gi][(lane % 2) * 8],
                        args.scales + (tile * groups + group0 + gi) * kTileRows + (lane % 2) * 8);
          }
        } else if (lane >= 16 && lane < 16 + kGroupsPerStage) {
          const int gi = lane - 16;
          if (group0 + gi < groups) CopyAsync8(&stage.zeros[nt][gi], args.zeros + tile * groups + group0 + gi);
        }
      }
    }
    CommitCopies();
  };

  float acc[kNTiles][kTokenBlocks][4];
#pragma unroll
  for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
    for (int tb = 0; tb < kTokenBlocks; ++tb)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[nt][tb][c] = 0.0f;

#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) issue(i);
  for (int i = 0; i < stage_count; ++i) {
    issue(i + kStages - 1);
    WaitCopies<kStages - 1>();  // this lane's copies of stage i have landed
    __syncwarp();               // ... and every lane's (the group records are shared)
    const StageT& stage = ring[i % kStages];
    const int kt0 = kt_begin + i * kStageTiles;
    // The activations of the stage: x16[st][p][tb] holds inputs 64 (kt0 + st) + 32 p + 8 t .. + 7 of token
    // tb * 8 + g (w4a16_layout.h's TileInput: the B fragments of steps 2p and 2p + 1), zero past M.
    uint4 x16[kStageTiles][2][kTokenBlocks];
#pragma unroll
    for (int st = 0; st < kStageTiles; ++st)
#pragma unroll
      for (int p = 0; p < 2; ++p)
#pragma unroll
        for (int tb = 0; tb < kTokenBlocks; ++tb) {
          const int token = tb * 8 + g;
          x16[st][p][tb] = make_uint4(0u, 0u, 0u, 0u);
          if (token < args.m && kt0 + st < kt_end) {
            const half* inputs =
                args.x + static_cast<int64_t>(token) * args.k + (kt0 + st) * kTileInputs + 32 * p + 8 * t;
            x16[st][p][tb] = __ldg(reinterpret_cast<const uint4*>(inputs));
          }
        }
        // Group by group: the MMAs sum (q - z) x over the group's steps in fp32, then the group's per-row scale
        // multiplies that partial sum into the accumulator (one FMA per element per group, not a multiply per
        // weight). Steps are whole k-tiles' worth of groups, so a group is either inside [kt_begin, kt_end) or not.
#pragma unroll
    for (int gi = 0; gi < kGroupsPerStage; ++gi) {
      if (kt0 + (gi * kStepsPerGroup) / 4 >= kt_end) break;
      float partial[kNTiles][kTokenBlocks][4];
      GroupZeros zeros[kNTiles];
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        zeros[nt] = MakeGroupZeros(stage.zeros[nt][gi], g);
#pragma unroll
        for (int tb = 0; tb < kTokenBlocks; ++tb)
#pragma unroll
          for (int c = 0; c < 4; ++c) partial[nt][tb][c] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kStepsPerGroup; ++j) {
        const int step = gi * kStepsPerGroup + j;  // k16 step within the stage
        const int st = step / 4;
        const int s = step % 4;
        // B fragment of token tb * 8 + g: positions 0, 1 in b[0], 2, 3 in b[1] (inputs TileInput(s, t, 0..3)).
        uint32_t b[kTokenBlocks][2];
#pragma unroll
        for (int tb = 0; tb < kTokenBlocks; ++tb) {
          const uint4& v = x16[st][s / 2][tb];
          b[tb][0] = s % 2 == 0 ? v.x : v.z;
          b[tb][1] = s % 2 == 0 ? v.y : v.w;
        }
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          const uint4 w = stage.words[nt][st][lane];
          const uint32_t word = s == 0 ? w.x : s == 1 ? w.y : s == 2 ? w.z : w.w;
          uint32_t a[4];
          DequantCodes(word, zeros[nt], a);
#pragma unroll
          for (int tb = 0; tb < kTokenBlocks; ++tb) Mma16816(partial[nt][tb], a, b[tb]);
        }
      }
      // Accumulator element c is row g (c < 2) or g + 8 (c >= 2) of its tile.
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        const float scale_lo = __half2float(stage.scales[nt][gi][g]);
        const float scale_hi = __half2float(stage.scales[nt][gi][g + 8]);
#pragma unroll
        for (int tb = 0; tb < kTokenBlocks; ++tb)
#pragma unroll
          for (int c = 0; c < 4; ++c)
            acc[nt][tb][c] = fmaf(c < 2 ? scale_lo : scale_hi, partial[nt][tb][c], acc[nt][tb][c]);
      }
    }
    __syncwarp();  // every lane is done with this slot before a later issue() refills it
  }

  // Fragment c of tile (nt, tb): row (lane / 4) + 8 (c >= 2) of the tile, token tb * 8 + 2 (lane % 4) + (c & 1).
  auto for_each_result = [&](auto&& visit) {
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int tb = 0; tb < kTokenBlocks; ++tb)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int row = (tile0 + nt) * kTileRows + g + (c >= 2 ? 8 : 0);
          const int token = tb * 8 + 2 * t + (c & 1);
          if (token < args.m) visit(static_cast<int64_t>(token) * args.n + row, row, acc[nt][tb][c]);
        }
  };
  if (args.splits == 1) {
    for_each_result([&](int64_t out, int row, float sum) {
      args.y[out] = __float2half(sum + (args.bias != nullptr ? args.bias[row] : 0.0f));
    });
    return;
  }
  for_each_result([&](int64_t out, int, float sum) { atomicAdd(args.workspace + out, sum); });
  __threadfence();
  __syncwarp();
  int arrived = 0;
  if (lane == 0) arrived = atomicAdd(args.counters + tile_group, 1);
  if (__shfl_sync(0xffffffffu, arrived, 0) != args.splits - 1) return;
  // The last warp of this group of tiles: every split's sums are in the workspace.
  __threadfence();
  const int rows = kNTiles * kTileRows;
  for (int idx = lane; idx < rows * args.m; idx += 32) {
    const int row = tile0 * kTileRows + idx % rows;
    const int64_t out = static_cast<int64_t>(idx / rows) * args.n + row;
    const float sum = __ldcg(args.workspace + out);
    args.y[out] = __float2half(sum + (args.bias != nullptr ? args.bias[row] : 0.0f));
    args.workspace[out] = 0.0f;
  }
  if (lane == 0) args.counters[tile_group] = 0;
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

// Tiled layout -> fp16 [N, K], one warp per tile: the same DequantCodes as the MMA kernel, then the scale
// (the MMA kernel applies it to fp32 sums instead; both read the same codes, zeros and scales). By TileInput,
// lane t's steps 0, 1 hold inputs 8t .. 8t + 7 of the tile and steps 2, 3 inputs 32 + 8t .. + 7, so each of
// its two rows is written as two 16-byte runs (4 lanes: 64 contiguous bytes per row and store).
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
  const int64_t groups = w.k / w.group_size;
  const auto* zeros = reinterpret_cast<const uint2*>(w.zeros);
  for (int p = 0; p < 2; ++p) {
    const int64_t k0 = kt * kTileInputs + TileInput(2 * p, t, 0);  // steps 2p, 2p + 1: inputs k0 .. k0 + 7
    const int64_t record = nt * groups + k0 / w.group_size;        // one group: TileInput keeps 32 inputs together
    const half2 scale_lo = __half2half2(w.scales[record * kTileRows + g]);
    const half2 scale_hi = __half2half2(w.scales[record * kTileRows + g + 8]);
    const GroupZeros z = MakeGroupZeros(zeros[record], g);
    uint32_t first[4], second[4];
    DequantCodes(words[2 * p], z, first);
    DequantCodes(words[2 * p + 1], z, second);
    auto scaled = [](uint32_t codes, half2 scale) { return AsU32(__hmul2(AsHalf2(codes), scale)); };
    // Row g: positions 0, 1 (a[0]) and 2, 3 (a[2]) of each step; row g + 8: a[1] and a[3].
    *reinterpret_cast<uint4*>(out + row * w.k + k0) =
        make_uint4(scaled(first[0], scale_lo), scaled(first[2], scale_lo), scaled(second[0], scale_lo),
                   scaled(second[2], scale_lo));
    *reinterpret_cast<uint4*>(out + (row + 8) * w.k + k0) =
        make_uint4(scaled(first[1], scale_hi), scaled(first[3], scale_hi), scaled(second[1], scale_hi),
                   scaled(second[3], scale_hi));
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

#define NIBBLE_W4_INSTANCES(NT, G)                                                                      \
  MmaInstance{NT, 1, G, w4a16_mma_kernel<NT, 1, G>}, MmaInstance{NT, 2, G, w4a16_mma_kernel<NT, 2, G>}, \
      MmaInstance{NT, 3, G, w4a16_mma_kernel<NT, 3, G>}, MmaInstance {                                  \
    NT, 4, G, w4a16_mma_kernel<NT, 4, G>                                                                \
  }

constexpr MmaInstance kMmaInstances[] = {
    NIBBLE_W4_INSTANCES(1, 32), NIBBLE_W4_INSTANCES(1, 64), NIBBLE_W4_INSTANCES(1, 128),
    NIBBLE_W4_INSTANCES(2, 32), NIBBLE_W4_INSTANCES(2, 64), NIBBLE_W4_INSTANCES(2, 128),
};
#undef NIBBLE_W4_INSTANCES

}  // namespace

W4MmaPlan PlanW4Mma(int64_t m, int64_t n, int64_t k, int sm_count) {
  W4MmaPlan plan;
  // Past 8 tokens a warp covers two tiles, so the activations it loads serve twice the weights.
  plan.n_tiles_per_block = m > 8 && (n / kTileRows) % 2 == 0 ? 2 : 1;
  const int64_t groups_of_tiles = n / kTileRows / plan.n_tiles_per_block;
  const int64_t k_tiles = k / kTileInputs;
  // Split K until there are about 32 warps per multiprocessor (each keeping several 1 KB stages in flight),
  // giving every warp at least 8 k-tiles (4 stages) and an even number of them (stages are 2 k-tiles).
  const int64_t target_warps = int64_t{32} * sm_count;
  int64_t splits = std::max<int64_t>(1, (target_warps + groups_of_tiles - 1) / groups_of_tiles);
  splits = std::min<int64_t>(splits, std::max<int64_t>(1, k_tiles / 8));
  const int64_t per_split = ((k_tiles + splits - 1) / splits + 1) / 2 * 2;
  plan.split_k = static_cast<int>((k_tiles + per_split - 1) / per_split);
  return plan;
}

absl::Status LaunchW4Mma(const W4DeviceWeights& w, const half* x, int64_t m, const float* bias, half* y,
                         const W4MmaPlan& plan, float* workspace, int* counters, cudaStream_t stream) {
  if (!w.tiled || m < 1 || m > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("w4a16_mma_kernel: needs the tiled layout and 1..32 tokens, got ", m));
  }
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0) {
    return absl::InvalidArgumentError(
        "w4a16_mma_kernel: activations must be 16-byte aligned (read 8 halves at a time)");
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
    return absl::InvalidArgumentError(absl::StrCat(
        "w4a16_mma_kernel: no instance for ", plan.n_tiles_per_block, " tiles per warp, ", token_blocks,
        " token blocks, group size ", w.group_size, " (compiled: 1-2 tiles, 1-4 blocks, groups 32/64/128)"));
  }
  if ((w.n / kTileRows) % plan.n_tiles_per_block != 0 || plan.split_k < 1 ||
      (plan.split_k > 1 && (workspace == nullptr || counters == nullptr))) {
    return absl::InvalidArgumentError("w4a16_mma_kernel: plan does not fit the shape or lacks its workspace");
  }
  const int64_t k_tiles = w.k / kTileInputs;
  const int64_t groups_of_tiles = w.n / kTileRows / plan.n_tiles_per_block;
  const int64_t per_split = ((k_tiles + plan.split_k - 1) / plan.split_k + 1) / 2 * 2;
  MmaArgs args{reinterpret_cast<const uint4*>(w.codes),
               w.scales,
               reinterpret_cast<const uint2*>(w.zeros),
               x,
               bias,
               y,
               workspace,
               counters,
               static_cast<int>(m),
               static_cast<int>(w.n),
               static_cast<int>(w.k),
               plan.split_k,
               static_cast<int>(per_split)};
  const int64_t warps = groups_of_tiles * plan.split_k;
  const unsigned blocks = static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
  instance->kernel<<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(args);
  return LaunchStatus("w4a16_mma_kernel");
}

absl::Status LaunchW4Dequantize(const W4DeviceWeights& w, half* out, cudaStream_t stream) {
  constexpr int kBlock = 256;
  if (w.tiled) {
    const int64_t warps = w.n / kTileRows * (w.k / kTileInputs);
    w4a16_dequantize_tiled_kernel<<<static_cast<unsigned>((warps * 32 + kBlock - 1) / kBlock), kBlock, 0, stream>>>(
        w, out);
    return LaunchStatus("w4a16_dequantize_tiled_kernel");
  }
  w4a16_dequantize_generic_kernel<<<static_cast<unsigned>((w.n * w.k + kBlock - 1) / kBlock), kBlock, 0, stream>>>(w,
                                                                                                                   out);
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
