#include "engine/io/weight_check.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

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
  NIBBLE_RETURN_IF_ERROR(CheckFinite(model.embedding, "model.embed_tokens.weight"));
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const HostLayer& layer = model.layers[i];
    const std::string prefix = absl::StrCat("model.layers.", i, ".");
    NIBBLE_RETURN_IF_ERROR(CheckFinite(layer.attention_norm, prefix + "input_layernorm.weight"));
    NIBBLE_RETURN_IF_ERROR(CheckFinite(layer.mlp_norm, prefix + "post_attention_layernorm.weight"));
    const std::pair<const HostLinear*, const char*> linears[] = {
        {&layer.q, "self_attn.q_proj"}, {&layer.k, "self_attn.k_proj"}, {&layer.v, "self_attn.v_proj"},
        {&layer.o, "self_attn.o_proj"}, {&layer.gate, "mlp.gate_proj"}, {&layer.up, "mlp.up_proj"},
        {&layer.down, "mlp.down_proj"}};
    for (const auto& [linear, name] : linears) NIBBLE_RETURN_IF_ERROR(CheckLinear(*linear, prefix + name));
  }
  NIBBLE_RETURN_IF_ERROR(CheckFinite(model.final_norm, "model.norm.weight"));
  if (!model.config.tie_word_embeddings) NIBBLE_RETURN_IF_ERROR(CheckFinite(model.lm_head, "lm_head.weight"));
  return absl::OkStatus();
}

}  // namespace nibble
