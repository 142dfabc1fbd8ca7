// The repacked W4 layouts against AutoAWQ's own dequantization (host_model.h's DequantizeAwq), by emulating
// on the CPU what each lane of the kernel reads: the m16n8k16 A-fragment positions from the PTX ISA
// (groupID = lane / 4, threadID_in_group = lane % 4; registers a0..a7 at rows groupID (+8) and columns
// 2 threadID_in_group (+1) (+8)). Runs without a GPU.
#include "engine/cuda/w4a16_layout.h"

#include <gtest/gtest.h>

#include "tests/support/random_weights.h"

namespace nibble::cuda {
namespace {

// The dequantized value of `code` at (row, col), reading the scale and zero from the layout's own arrays.
float Dequantized(const W4Weights& w, int64_t row, int64_t col, uint32_t code) {
  const int64_t group = col / w.group_size;
  uint32_t zero;
  float scale;
  if (w.tiled) {
    const int64_t record = (row / kTileRows) * w.groups() + group;  // tile-major (tile, group)
    const int r = static_cast<int>(row % kTileRows);
    zero = (w.zeros[record * 2 + r / 8] >> (4 * (r % 8))) & 0xFu;
    scale = HalfToFloat(w.scales[record * kTileRows + r]);
  } else {
    zero = (w.zeros[group * ((w.n + 7) / 8) + row / 8] >> (4 * (row % 8))) & 0xFu;
    scale = HalfToFloat(w.scales[group * w.n + row]);
  }
  return (static_cast<float>(code) - static_cast<float>(zero)) * scale;
}

struct Shape3 {
  int64_t in, out;
  int group;
};

class W4LayoutTest : public ::testing::TestWithParam<Shape3> {};

TEST_P(W4LayoutTest, LanesSeeExactlyTheAwqWeights) {
  const Shape3 shape = GetParam();
  const AwqWeight awq =
      testing::RandomAwq(shape.in, shape.out, shape.group, static_cast<uint32_t>(shape.in * 31 + shape.out));
  ThreadPool pool;
  const auto w = RepackAwq(awq, shape.in, shape.out, pool);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->tiled, FitsTiledLayout(shape.out, shape.in, shape.group));
  const std::vector<float> want = DequantizeAwq(awq, shape.in, shape.out);  // [out, in]

  std::vector<float> got(want.size(), NAN);
  if (w->tiled) {
    // Each lane's word s holds, for k0 = 64 kt + 16 s, the fragment registers a0..a7 in nibble slots
    // 0, 4, 1, 5, 2, 6, 3, 7 (the order the kernel's magic-number extraction produces them in).
    const int slot_of_register[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    const int64_t k_tiles = shape.in / kTileInputs;
    for (int64_t nt = 0; nt < shape.out / kTileRows; ++nt) {
      for (int64_t kt = 0; kt < k_tiles; ++kt) {
        for (int lane = 0; lane < 32; ++lane) {
          const int group_id = lane / 4;
          const int thread_in_group = lane % 4;
          for (int s = 0; s < 4; ++s) {
            const uint32_t word = w->codes[((nt * k_tiles + kt) * 32 + lane) * 4 + s];
            for (int reg = 0; reg < 8; ++reg) {
              // PTX: a0,a1: (groupID, k = 2t + i); a2,a3: (groupID + 8, ..); a4,a5: (groupID, 2t + 8 + i);
              // a6,a7: (+8, +8). MMA k position e = 0..3 (2t, 2t + 1, 2t + 8, 2t + 9) holds input TileInput(s, t, e).
              const int64_t row = nt * kTileRows + group_id + ((reg / 2) % 2 == 1 ? 8 : 0);
              const int e = (reg % 2) + (reg >= 4 ? 2 : 0);
              const int64_t col = kt * kTileInputs + TileInput(s, thread_in_group, e);
              const uint32_t code = (word >> (4 * slot_of_register[reg])) & 0xFu;
              got[row * shape.in + col] = Dequantized(*w, row, col, code);
            }
          }
        }
      }
    }
  } else {
    const auto* bytes = reinterpret_cast<const uint8_t*>(w->codes.data());
    for (int64_t row = 0; row < shape.out; ++row) {
      for (int64_t col = 0; col < shape.in; ++col) {
        got[row * shape.in + col] = Dequantized(*w, row, col, bytes[row * shape.in + col]);
      }
    }
  }
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, W4LayoutTest,
                         ::testing::Values(Shape3{128, 32, 32}, Shape3{256, 48, 64}, Shape3{512, 64, 128},
                                           Shape3{64, 344, 32},    // stories260K gate/up, fused: generic (344 % 16)
                                           Shape3{172, 64, 32},    // stories260K down: shorter last group
                                           Shape3{64, 128, 64}));  // stories260K q/k/v fused with g 64

// TileInput permutes each k-tile's 64 inputs; every step's 16 stay inside one aligned group of 32 (so the
// kernel may apply each group's scale after the step's MMA), and lane t's inputs of steps 2p, 2p + 1 are the
// 8 consecutive ones from 32p + 8t (one 16-byte activation load).
TEST(W4LayoutTest, TileInputPermutesATileKeepingStepsInGroupsOf32) {
  std::vector<int> seen(kTileInputs, 0);
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t < 4; ++t) {
      for (int e = 0; e < 4; ++e) {
        const int input = TileInput(s, t, e);
        ASSERT_GE(input, 0);
        ASSERT_LT(input, kTileInputs);
        ++seen[input];
        EXPECT_EQ(input / 32, s / 2) << "step " << s << " leaves its group of 32";
      }
    }
  }
  for (int input = 0; input < kTileInputs; ++input) EXPECT_EQ(seen[input], 1) << "input " << input;
  // The 16-byte load: steps 2p then 2p + 1, positions 0..3 each, are 8 consecutive inputs from 32p + 8t.
  for (int p = 0; p < 2; ++p) {
    for (int t = 0; t < 4; ++t) {
      for (int j = 0; j < 8; ++j) EXPECT_EQ(TileInput(2 * p + j / 4, t, j % 4), 32 * p + 8 * t + j);
    }
  }
}

TEST(W4LayoutErrorTest, MismatchedTensorsAreRefused) {
  const AwqWeight awq = testing::RandomAwq(128, 32, 32, 1);
  ThreadPool pool;
  const auto w = RepackAwq(awq, 128, 48, pool);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nibble::cuda
