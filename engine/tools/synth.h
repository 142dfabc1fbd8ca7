// Synthetic models for tests and benchmarks (`nibble synth`): the shapes of real models with random weights,
// so nothing has to be downloaded.
//
// Presets: "tiny" (dim 64, 2 layers, 4 heads, 2 KV heads, intermediate 172, vocab 512, context 512),
// "llama2-7b", "tinyllama-1.1b", "mistral-7b" (8 KV heads, intermediate 14336) and "qwen2-0.5b" (q/k/v
// biases, tied embeddings), with their real shapes, norm epsilons and RoPE bases. Every preset uses the
// synthetic tokenizer's special ids (bos 1, eos 2) so a written directory is self-consistent.
//
// Weights are deterministic in the seed (whatever the number of threads): dense weights and biases are
// approximately normal(0, 0.02) (a sum of four uniforms), norms are 1, everything fp16. Quantized models
// have random AWQ GEMM Linears (random 4-bit codes and zero points 0..15, fp16 scales uniform in
// [0.002, 0.02]) built directly in packed form, so a 7B model takes seconds and no disk. Generation uses all
// cores; the functions are otherwise pure and may be called from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/io/host_model.h"
#include "engine/io/model_config.h"

namespace nibble {

std::vector<std::string> SynthPresetNames();
// The preset's config; NotFound listing the presets for an unknown name.
absl::StatusOr<ModelConfig> SynthPreset(absl::string_view name);

// A dense fp16 model of `config` (which must be valid, see model_config.h) with random weights.
absl::StatusOr<HostModel> SynthesizeModel(const ModelConfig& config, uint64_t seed);
absl::StatusOr<HostModel> SynthesizeModel(absl::string_view preset, uint64_t seed);

// The same with the seven decoder Linears as random AWQ GEMM weights of `group_size`; config.awq is set.
absl::StatusOr<HostModel> SynthesizeQuantizedModel(const ModelConfig& config, uint64_t seed, int group_size);
absl::StatusOr<HostModel> SynthesizeQuantizedModel(absl::string_view preset, uint64_t seed, int group_size = 128);

// Writes a dense synthetic model as a Hugging Face directory (created when missing): config.json,
// fp16 safetensors, tokenizer.model (synth_tokenizer.h) and tokenizer_config.json.
absl::Status WriteSynthModelDir(const std::filesystem::path& out_dir, absl::string_view preset, uint64_t seed);

}  // namespace nibble
