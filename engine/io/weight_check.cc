#include "engine/io/weight_check.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_layout.h"

namespace nibble {
namespace {

constexpr int64_t kChunk = 1 << 16;  // elements converted to fp32 at a time

absl::Status CheckFinite(const HostTensor& tensor, const std::string& name) {
  if (!IsFloat(tensor.dtype)) return absl::OkStatus();
  std::vector<float> chunk(static_cast<size_t>(std::min<int64_t>(kChunk, tensor.numel())));
  const size_t element_bytes = DTypeSize(tensor.dtype);
  for (int64_t begin = 0; begin < tensor.numel(); begin += kChunk) {
    const int64_t count = std::min(kChunk, tensor.numel() - begin);
    ConvertToFloat(tensor.dtype, tensor.data + begin * element_bytes, std::span<float>(chunk.data(), count));
    for (int64_t i = 0; i < count; ++i) {
      if (!std::isfinite(chunk[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " holds a non-finite value (", chunk[i], " at element ", begin + i, ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLinear(const HostLinear& linear, const std::string& name) {
  if (const auto* awq = std::get_if<AwqWeight>(&linear.weight)) {
    NIBBLE_RETURN_IF_ERROR(CheckFinite(awq->scales, absl::StrCat(name, ".scales")));
  } else {
    NIBBLE_RETURN_IF_ERROR(CheckFinite(std::get<HostTensor>(linear.weight), absl::StrCat(name, ".weight")));
  }
  if (linear.bias) NIBBLE_RETURN_IF_ERROR(CheckFinite(*linear.bias, absl::StrCat(name, ".bias")));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckFiniteWeights(const HostModel& model) {
  NIBBLE_RETURN_IF_ERROR(CheckFinite(model.embedding, std::string(kEmbeddingName)));
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const HostLayer& layer = model.layers[i];
    const std::string prefix = LayerPrefix(static_cast<int64_t>(i));
    for (const DecoderNorm& norm : kDecoderNorms) {
      NIBBLE_RETURN_IF_ERROR(CheckFinite(layer.*norm.member, absl::StrCat(prefix, norm.module, ".weight")));
    }
    for (const DecoderLinear& linear : DecoderLinears(model.config)) {
      NIBBLE_RETURN_IF_ERROR(CheckLinear(layer.*linear.member, absl::StrCat(prefix, linear.module)));
    }
  }
  NIBBLE_RETURN_IF_ERROR(CheckFinite(model.final_norm, std::string(kFinalNormName)));
  if (!model.config.tie_word_embeddings) {
    NIBBLE_RETURN_IF_ERROR(CheckFinite(model.lm_head, std::string(kLmHeadName)));
  }
  return absl::OkStatus();
}

}  // namespace nibble
