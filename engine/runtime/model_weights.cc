#include "engine/runtime/model_weights.h"

#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

absl::StatusOr<std::unique_ptr<LinearWeights>> UploadFused(Backend& backend,
                                                           std::initializer_list<const HostLinear*> parts,
                                                           absl::string_view name) {
  NIBBLE_ASSIGN_OR_RETURN(HostLinear fused, ConcatOutputs(std::vector<const HostLinear*>(parts), name));
  return backend.UploadLinear(fused);
}

absl::StatusOr<std::unique_ptr<LinearWeights>> UploadDenseLinear(Backend& backend, const HostTensor& weight) {
  HostLinear linear;
  linear.out_features = weight.shape[0];
  linear.in_features = weight.shape[1];
  linear.weight = weight;
  return backend.UploadLinear(linear);
}

size_t LinearBytes(const std::unique_ptr<LinearWeights>& linear) { return linear ? linear->bytes() : 0; }

}  // namespace

size_t ModelWeights::bytes() const {
  size_t total = embedding.buffer.bytes() + final_norm.buffer.bytes() + LinearBytes(lm_head);
  for (const LayerWeights& layer : layers) {
    total += layer.attention_norm.buffer.bytes() + layer.mlp_norm.buffer.bytes() + LinearBytes(layer.qkv) +
             LinearBytes(layer.o) + LinearBytes(layer.gate_up) + LinearBytes(layer.down);
  }
  return total;
}

std::vector<float> RopeInverseFrequencies(const ModelConfig& config) {
  const int64_t half = config.head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = 1.0f / std::pow(static_cast<float>(config.rope_theta),
                                  static_cast<float>(2 * i) / static_cast<float>(config.head_dim));
  }
  if (!config.rope_scaling) return inv_freq;

  // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
  const Llama3RopeScaling& s = *config.rope_scaling;
  const double context = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = context / s.low_freq_factor;
  const double high_freq_wavelen = context / s.high_freq_factor;
  for (float& freq : inv_freq) {
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen < high_freq_wavelen) continue;
    if (wavelen > low_freq_wavelen) {
      freq = static_cast<float>(freq / s.factor);
      continue;
    }
    const double smooth = (context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    freq = static_cast<float>((1.0 - smooth) * freq / s.factor + smooth * freq);
  }
  return inv_freq;
}

absl::StatusOr<LayerWeights> UploadLayer(Backend& backend, const HostLayer& layer, absl::string_view name) {
  const DType dtype = backend.activation_dtype();
  LayerWeights weights;
  NIBBLE_ASSIGN_OR_RETURN(weights.attention_norm, backend.UploadTensor(layer.attention_norm, dtype));
  NIBBLE_ASSIGN_OR_RETURN(weights.qkv,
                          UploadFused(backend, {&layer.q, &layer.k, &layer.v}, absl::StrCat(name, ".self_attn.qkv")));
  NIBBLE_ASSIGN_OR_RETURN(weights.o, backend.UploadLinear(layer.o));
  NIBBLE_ASSIGN_OR_RETURN(weights.mlp_norm, backend.UploadTensor(layer.mlp_norm, dtype));
  NIBBLE_ASSIGN_OR_RETURN(weights.gate_up,
                          UploadFused(backend, {&layer.gate, &layer.up}, absl::StrCat(name, ".mlp.gate_up")));
  NIBBLE_ASSIGN_OR_RETURN(weights.down, backend.UploadLinear(layer.down));
  return weights;
}

absl::StatusOr<ModelWeights> UploadModel(Backend& backend, const HostModel& host) {
  ModelWeights weights;
  NIBBLE_ASSIGN_OR_RETURN(weights.embedding, backend.UploadTensor(host.embedding, backend.activation_dtype()));
  for (size_t l = 0; l < host.layers.size(); ++l) {
    NIBBLE_ASSIGN_OR_RETURN(LayerWeights layer, UploadLayer(backend, host.layers[l], absl::StrCat("model.layers.", l)));
    weights.layers.push_back(std::move(layer));
  }
  NIBBLE_ASSIGN_OR_RETURN(weights.final_norm, backend.UploadTensor(host.final_norm, backend.activation_dtype()));
  NIBBLE_ASSIGN_OR_RETURN(weights.lm_head, UploadDenseLinear(backend, host.lm_head));
  const std::vector<float> inv_freq = RopeInverseFrequencies(host.config);
  NIBBLE_ASSIGN_OR_RETURN(
      weights.rope_inv_freq,
      backend.UploadTensor(HostTensor::FromFloats(inv_freq, Shape{static_cast<int64_t>(inv_freq.size())}),
                           DType::kF32));
  return weights;
}

}  // namespace nibble
