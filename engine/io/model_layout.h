// The Hugging Face tensor names and shapes of a Llama-family model (Llama, Mistral, Qwen2), derived from its
// config: one place for the naming that the loader, the writer and the synthesizer share. Pure data and
// functions, safe from any thread.
//
//   model.embed_tokens.weight                        [vocab, hidden]
//   model.layers.N.input_layernorm.weight            [hidden]
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight   [out, in] (+ .bias [out] where the config says so)
//   model.layers.N.post_attention_layernorm.weight   [hidden]
//   model.layers.N.mlp.{gate,up,down}_proj.weight    [out, in] (+ .bias [out] with mlp_bias)
//   model.norm.weight                                [hidden]
//   lm_head.weight                                   [vocab, hidden] (absent with tie_word_embeddings)
// AWQ checkpoints replace a decoder Linear's `.weight` with `.qweight`, `.qzeros` and `.scales`
// (host_model.h's AwqWeight).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "engine/base/tensor.h"
#include "engine/io/host_model.h"
#include "engine/io/model_config.h"

namespace nibble {

inline constexpr absl::string_view kEmbeddingName = "model.embed_tokens.weight";
inline constexpr absl::string_view kFinalNormName = "model.norm.weight";
inline constexpr absl::string_view kLmHeadName = "lm_head.weight";

// "model.layers.<layer>."
std::string LayerPrefix(int64_t layer);

// The two RMSNorms of a decoder block.
struct DecoderNorm {
  absl::string_view module;  // "input_layernorm"
  HostTensor HostLayer::*member;
};
inline constexpr std::array<DecoderNorm, 2> kDecoderNorms = {{
    {"input_layernorm", &HostLayer::attention_norm},
    {"post_attention_layernorm", &HostLayer::mlp_norm},
}};

// The seven Linears of a decoder block, in checkpoint order.
struct DecoderLinear {
  absl::string_view module;  // "self_attn.q_proj"
  HostLinear HostLayer::*member;
  int64_t in_features;
  int64_t out_features;
  bool bias;
};
std::array<DecoderLinear, 7> DecoderLinears(const ModelConfig& config);

// Shapes of an AWQ GEMM Linear's tensors: qweight I32 [in, ceil(out/8)], qzeros I32 [groups, ceil(out/8)],
// scales F16 [groups, out] with groups = ceil(in / group_size).
struct AwqShapes {
  Shape qweight;
  Shape qzeros;
  Shape scales;
};
AwqShapes AwqTensorShapes(int64_t in_features, int64_t out_features, int group_size);

}  // namespace nibble
