#include "engine/io/model_layout.h"

#include "absl/strings/str_cat.h"

namespace nibble {

std::string LayerPrefix(int64_t layer) { return absl::StrCat("model.layers.", layer, "."); }

std::array<DecoderLinear, 7> DecoderLinears(const ModelConfig& config) {
  const int64_t hidden = config.hidden_size;
  const int64_t ffn = config.intermediate_size;
  return {{
      {"self_attn.q_proj", &HostLayer::q, hidden, config.q_size(), config.qkv_bias},
      {"self_attn.k_proj", &HostLayer::k, hidden, config.kv_size(), config.qkv_bias},
      {"self_attn.v_proj", &HostLayer::v, hidden, config.kv_size(), config.qkv_bias},
      {"self_attn.o_proj", &HostLayer::o, config.q_size(), hidden, config.o_bias},
      {"mlp.gate_proj", &HostLayer::gate, hidden, ffn, config.mlp_bias},
      {"mlp.up_proj", &HostLayer::up, hidden, ffn, config.mlp_bias},
      {"mlp.down_proj", &HostLayer::down, ffn, hidden, config.mlp_bias},
  }};
}

AwqShapes AwqTensorShapes(int64_t in_features, int64_t out_features, int group_size) {
  const int64_t groups = (in_features + group_size - 1) / group_size;
  const int64_t words = (out_features + 7) / 8;
  return {Shape{in_features, words}, Shape{groups, words}, Shape{groups, out_features}};
}

}  // namespace nibble
