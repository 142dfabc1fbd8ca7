// A model's weights in host memory, as read from disk (or made by `nibble synth`, or produced by the
// quantizer), before any backend has seen them.
//
// HostTensor is a view plus a shared owner: it may point into a memory-mapped safetensors file (the owner
// keeps the mapping alive) or into memory it owns. Tensors keep their on-disk dtype; backends convert
// when they upload. A HostModel is immutable once built and safe to read from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/base/dtype.h"
#include "engine/base/parallel_for.h"
#include "engine/base/tensor.h"
#include "engine/io/model_config.h"

namespace nibble {

struct HostTensor {
  DType dtype = DType::kF32;
  Shape shape;
  const std::byte* data = nullptr;
  std::shared_ptr<const void> owner;  // keeps `data` alive

  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  template <typename T>
  std::span<const T> span() const {
    return {reinterpret_cast<const T*>(data), static_cast<size_t>(numel())};
  }

  // A tensor that owns a copy of `values`.
  static HostTensor FromFloats(std::vector<float> values, Shape shape);
  static HostTensor FromBytes(std::vector<std::byte> bytes, DType dtype, Shape shape);
  // The elements converted to fp32 (float dtypes only).
  std::vector<float> ToFloats() const;
};

// 4-bit weights in AutoAWQ's GEMM layout, exactly as stored in the checkpoint (../shared/docs/awq.md §7):
//   qweight int32 [in, ceil(out/8)]: word (k, j) holds output columns 8j..8j+7 of input row k; nibble i
//                                    (bits 4i..4i+3) holds column 8j + kAwqNibbleColumn[i].
//   qzeros  int32 [groups, ceil(out/8)], packed the same way, raw zero points 0..15.
//   scales  fp16  [groups, out].
// groups = ceil(in / group_size); the last group is shorter when group_size does not divide `in`. When
// `out` is not a multiple of 8 (only tiny test models), the unused nibbles of the last word are zero.
struct AwqWeight {
  HostTensor qweight;
  HostTensor qzeros;
  HostTensor scales;
  int group_size = 128;
};
// Which output column (within a group of 8) each nibble of a packed int32 word holds.
inline constexpr int kAwqNibbleColumn[8] = {0, 2, 4, 6, 1, 3, 5, 7};
// The 4-bit codes of an AutoAWQ-packed int32 [rows, ceil(cols/8)] tensor (qweight or qzeros), one byte each,
// as [rows, cols] in row-major order. Rows are unpacked in parallel on `pool` when one is given.
std::vector<uint8_t> UnpackAwqNibbles(const HostTensor& packed, int64_t rows, int64_t cols, ThreadPool* pool = nullptr);

// One nn.Linear: y = x W^T + b with W [out, in].
struct HostLinear {
  int64_t in_features = 0;
  int64_t out_features = 0;
  std::variant<HostTensor, AwqWeight> weight;  // dense [out, in] in a float dtype, or AWQ-packed
  std::optional<HostTensor> bias;              // [out]

  bool quantized() const { return std::holds_alternative<AwqWeight>(weight); }
};

struct HostLayer {
  HostTensor attention_norm;  // [hidden]
  HostLinear q, k, v, o;
  HostTensor mlp_norm;  // [hidden]
  HostLinear gate, up, down;
};

struct HostModel {
  ModelConfig config;
  HostTensor embedding;  // [vocab, hidden]
  std::vector<HostLayer> layers;
  HostTensor final_norm;  // [hidden]
  HostTensor lm_head;     // [vocab, hidden]; the embedding itself when config.tie_word_embeddings
};

// The AWQ weight dequantized to fp32 [out, in] ((q - zero) * scale), for reference paths and tests.
std::vector<float> DequantizeAwq(const AwqWeight& awq, int64_t in_features, int64_t out_features);
// A dense weight ([out, in] any float dtype) or a dequantized AWQ weight as fp32 [out, in].
std::vector<float> LinearWeightToFloats(const HostLinear& linear);

// Concatenates Linears that share their input along the output dimension (q/k/v, gate/up), keeping the
// representation: all dense (in their dtype when they share one, else fp32) or all AWQ with one group
// size. Missing biases of some parts become zeros when another part has one.
absl::StatusOr<HostLinear> ConcatOutputs(std::span<const HostLinear* const> parts, absl::string_view name);

}  // namespace nibble
