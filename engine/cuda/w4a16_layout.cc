#include "engine/cuda/w4a16_layout.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nibble::cuda {

bool FitsTiledLayout(int64_t n, int64_t k, int group_size) {
  return n % kTileRows == 0 && k % kTileInputs == 0 && (group_size == 32 || group_size == 64 || group_size == 128) &&
         k % group_size == 0;
}

absl::StatusOr<W4Weights> RepackAwq(const AwqWeight& awq, int64_t in_features, int64_t out_features, ThreadPool& pool) {
  W4Weights w;
  w.n = out_features;
  w.k = in_features;
  w.group_size = awq.group_size;
  w.tiled = FitsTiledLayout(w.n, w.k, w.group_size);
  const int64_t groups = w.groups();
  if (awq.qweight.numel() != in_features * ((out_features + 7) / 8) ||
      awq.qzeros.numel() != groups * ((out_features + 7) / 8) || awq.scales.numel() != groups * out_features ||
      awq.scales.dtype != DType::kF16) {
    return absl::InvalidArgumentError(absl::StrCat("cuda W4 repack: AWQ tensors do not match [", in_features, ", ",
                                                   out_features, "] with group size ", awq.group_size));
  }
  // codes_kn[k * N + n]: AutoAWQ's qweight is [K, N/8].
  const std::vector<uint8_t> codes_kn = UnpackAwqNibbles(awq.qweight, w.k, w.n, &pool);
  auto code = [&](int64_t n, int64_t k) -> uint32_t { return codes_kn[k * w.n + n]; };

  if (w.tiled) {
    const int64_t k_tiles = w.k / kTileInputs;
    w.codes.resize(static_cast<size_t>(w.n / kTileRows * k_tiles * 32 * 4));
    pool.ParallelFor(w.n / kTileRows, 4, [&](int64_t nt_begin, int64_t nt_end) {
      for (int64_t nt = nt_begin; nt < nt_end; ++nt) {
        for (int64_t kt = 0; kt < k_tiles; ++kt) {
          uint32_t* tile = w.codes.data() + (nt * k_tiles + kt) * 128;
          for (int lane = 0; lane < 32; ++lane) {
            const int64_t row = nt * kTileRows + lane / 4;
            for (int s = 0; s < 4; ++s) {
              // i[e]: the input fragment position e stands for; slots 0..7 as documented in the header.
              int64_t i[4];
              for (int e = 0; e < 4; ++e) i[e] = kt * kTileInputs + TileInput(s, lane % 4, e);
              const uint32_t slots[8] = {code(row, i[0]), code(row + 8, i[0]), code(row, i[2]), code(row + 8, i[2]),
                                         code(row, i[1]), code(row + 8, i[1]), code(row, i[3]), code(row + 8, i[3])};
              uint32_t word = 0;
              for (int i = 0; i < 8; ++i) word |= slots[i] << (4 * i);
              tile[lane * 4 + s] = word;
            }
          }
        }
      }
    });
  } else {
    w.codes.assign(static_cast<size_t>((w.n * w.k + 3) / 4), 0u);
    auto* bytes = reinterpret_cast<uint8_t*>(w.codes.data());
    for (int64_t n = 0; n < w.n; ++n) {
      for (int64_t k = 0; k < w.k; ++k) bytes[n * w.k + k] = static_cast<uint8_t>(code(n, k));
    }
  }

  const auto scales = awq.scales.span<uint16_t>();
  const std::vector<uint8_t> zeros = UnpackAwqNibbles(awq.qzeros, groups, w.n, &pool);
  if (w.tiled) {
    const int64_t tiles = w.n / kTileRows;
    w.scales.resize(static_cast<size_t>(tiles * groups * kTileRows));
    w.zeros.assign(static_cast<size_t>(tiles * groups * 2), 0u);
    for (int64_t nt = 0; nt < tiles; ++nt) {
      for (int64_t g = 0; g < groups; ++g) {
        for (int r = 0; r < kTileRows; ++r) {
          const int64_t n = nt * kTileRows + r;
          w.scales[(nt * groups + g) * kTileRows + r] = scales[g * w.n + n];
          w.zeros[(nt * groups + g) * 2 + r / 8] |= static_cast<uint32_t>(zeros[g * w.n + n]) << (4 * (r % 8));
        }
      }
    }
  } else {
    w.scales.assign(scales.begin(), scales.end());
    const int64_t zero_words = (w.n + 7) / 8;
    w.zeros.assign(static_cast<size_t>(groups * zero_words), 0u);
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t n = 0; n < w.n; ++n) {
        w.zeros[g * zero_words + n / 8] |= static_cast<uint32_t>(zeros[g * w.n + n]) << (4 * (n % 8));
      }
    }
  }
  return w;
}

}  // namespace nibble::cuda
