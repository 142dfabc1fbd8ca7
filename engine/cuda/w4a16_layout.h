// Repacking AutoAWQ GEMM weights (host_model.h's AwqWeight) into the layouts the CUDA W4A16 kernels read.
// Done once, on the host, when a quantized Linear is uploaded; the checkpoint on disk keeps AutoAWQ's layout.
//
// W is [N, K] (N outputs, K inputs), y = x W^T. Two layouts:
//
// Tiled (the fast path; N % 16 == 0, K % 64 == 0, group size 32, 64 or 128 dividing K):
//   W is cut into tiles of 16 output rows x 64 inputs, stored tile row after tile row:
//     tile (nt, kt) at words [(nt * (K / 64) + kt) * 128, +128): 32 lanes x 4 consecutive uint32.
//   A warp loads a tile with one coalesced 16-byte load per lane (512 contiguous bytes). Word s (0..3) of
//   lane l holds k16-step s of the tile for the lane's fragment of the m16n8k16 MMA's A operand (PTX ISA,
//   "Matrix Fragments for mma.m16n8k16", .f16), with g = l / 4, t = l % 4 and i(e) = 64 kt + TileInput(s, t, e)
//   the input the fragment's e-th k position (MMA k = 2t, 2t + 1, 2t + 8, 2t + 9) stands for:
//     nibble slot 0: W[16 nt + g,     i(0)]   slot 4: W[16 nt + g,     i(1)]   (a0, a1)
//     nibble slot 1: W[16 nt + g + 8, i(0)]   slot 5: W[16 nt + g + 8, i(1)]   (a2, a3)
//     nibble slot 2: W[16 nt + g,     i(2)]   slot 6: W[16 nt + g,     i(3)]   (a4, a5)
//     nibble slot 3: W[16 nt + g + 8, i(2)]   slot 7: W[16 nt + g + 8, i(3)]   (a6, a7)
//   (slot i = bits 4i..4i+3). With this order, masking the word with 0x000F000F / 0x00F000F0 (before and
//   after a shift by 8) and OR-ing 0x6400 (fp16 1024.0) into each half yields the four half2 registers of
//   the fragment directly: see w4a16_kernels.cu.
//   Scales and zeros are tile-major, so that one (tile, group) is 40 contiguous bytes a warp copies in two
//   pieces: scales fp16 [N / 16][groups][16] (row r of the tile at index r), zeros [N / 16][groups][2]
//   uint32 (rows 0..7 in word 0, rows 8..15 in word 1, row r in bits 4 (r % 8)..+3).
// Generic (any shape, e.g. the tiny models' in_features 172 or a shorter last group): codes one byte each,
//   [N, K] row-major; scales fp16 [groups, N]; zeros [groups, ceil(N / 8)] uint32 with column 8j + i in
//   bits 4i..4i+3 (plain order, unlike AutoAWQ's).
//
// Pure host code: thread-safe, no device memory.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/parallel_for.h"
#include "engine/io/host_model.h"

namespace nibble::cuda {

inline constexpr int kTileRows = 16;    // outputs per tile (the MMA's M)
inline constexpr int kTileInputs = 64;  // inputs per tile: 4 k16 steps, one 16-byte load per lane

// The input (0..63 within its k-tile) that k16 step s's fragment position e (0..3: MMA k = 2t, 2t + 1, 2t + 8,
// 2t + 9) of lane t (lane % 4) stands for. The MMA sums over k, so one permutation applied alike to the
// weights (at repack) and the activations (the kernel's loads) leaves the product unchanged. This one gives
// lane t of steps 2p and 2p + 1 the 8 consecutive inputs 32p + 8t .. 32p + 8t + 7 (one 16-byte activation
// load per two steps) and keeps each step inside one group of 32 (steps 2p, 2p + 1 cover inputs 32p .. +31).
// constexpr, so CUDA device code calls it too (--expt-relaxed-constexpr).
constexpr int TileInput(int s, int t, int e) { return 32 * (s / 2) + 8 * t + 4 * (s % 2) + e; }

struct W4Weights {
  int64_t n = 0;  // out_features
  int64_t k = 0;  // in_features
  int group_size = 0;
  bool tiled = false;
  std::vector<uint32_t> codes;   // tiled: the tile words; generic: bytes [N, K] packed 4 per word
  std::vector<uint16_t> scales;  // fp16 bits: tiled [N / 16][groups][16], generic [groups, N]
  std::vector<uint32_t> zeros;   // tiled [N / 16][groups][2], generic [groups, ceil(N / 8)]
  int64_t groups() const { return (k + group_size - 1) / group_size; }
};

// Whether an [N, K] weight with this group size can use the tiled fast path.
bool FitsTiledLayout(int64_t n, int64_t k, int group_size);

// Repacks an AutoAWQ GEMM weight of `in_features` x `out_features` (tiled when it fits, else generic), in
// parallel on `pool`.
absl::StatusOr<W4Weights> RepackAwq(const AwqWeight& awq, int64_t in_features, int64_t out_features, ThreadPool& pool);

}  // namespace nibble::cuda
