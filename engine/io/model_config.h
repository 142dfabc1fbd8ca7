// The shape and hyper-parameters of a Llama-family model, read from a Hugging Face `config.json`.
//
// Supported architectures: LlamaForCausalLM (also TinyLlama), MistralForCausalLM and Qwen2ForCausalLM.
// Parsing validates everything the engine relies on (head counts divide, sizes positive, known rope
// scaling) and names the file and the field in every error. Plain data: copy and share freely.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace nibble {

enum class Architecture { kLlama, kMistral, kQwen2 };

// transformers' MistralConfig default, which applies when a Mistral config.json has no "sliding_window" key.
inline constexpr int64_t kMistralDefaultSlidingWindow = 4096;

// Llama 3.1-style frequency-dependent RoPE scaling ("rope_type": "llama3").
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// `quantization_config` of an AutoAWQ GEMM checkpoint (or the legacy `quant_config.json`).
struct AwqConfig {
  int bits = 4;
  int group_size = 128;
  bool zero_point = true;
  std::string version = "gemm";
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_name = "LlamaForCausalLM";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  std::optional<Llama3RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama with "attention_bias": true
  bool o_bias = false;    // Llama with "attention_bias": true
  bool mlp_bias = false;  // Llama with "mlp_bias": true
  int32_t bos_token_id = 1;
  std::vector<int32_t> eos_token_ids = {2};
  std::string torch_dtype = "float16";
  std::optional<AwqConfig> awq;
  // "sliding_window" as config.json has it (null: none), written back as read; absent: none, except for
  // Mistral, where transformers' default (kMistralDefaultSlidingWindow) applies. Only Mistral's is applied
  // (attention_window); Qwen2's checkpoints carry one that transformers ignores without
  // "use_sliding_window": true (which is refused: nibble does not window Qwen2's layers).
  std::optional<int64_t> sliding_window;

  int64_t q_size() const { return num_heads * head_dim; }
  int64_t kv_size() const { return num_kv_heads * head_dim; }
  // Rows of the fused q/k/v projection: q, then k, then v.
  int64_t qkv_size() const { return q_size() + 2 * kv_size(); }
  // The keys each query attends to, its own included (0: all of them): Mistral's sliding_window, with
  // transformers' boundary (masking_utils.py, sliding_window_overlay: kv_idx > q_idx - sliding_window, and
  // causal kv_idx <= q_idx), so the query at position i sees the keys j with i - W < j <= i.
  int64_t attention_window() const {
    return architecture == Architecture::kMistral && sliding_window ? *sliding_window : 0;
  }
};

// Parses config.json text. `source` names the file in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json, const std::string& source);
// Reads <dir>/config.json (and <dir>/quant_config.json for legacy AWQ checkpoints).
absl::StatusOr<ModelConfig> ReadModelConfig(const std::filesystem::path& model_dir);
// The config.json Hugging Face transformers reads for this model (quantization_config included when set).
nlohmann::json ModelConfigToJson(const ModelConfig& config);

}  // namespace nibble
