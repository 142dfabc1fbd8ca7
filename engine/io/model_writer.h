// Writes a HostModel as a Hugging Face model directory that transformers, vLLM and LoadHostModel read:
// config.json, then `model.safetensors` or 5 GB shards with `model.safetensors.index.json` (safetensors.h).
//
// Dense tensors (embedding, norms, dense Linear weights, biases, lm_head) are converted to one float dtype;
// AWQ Linears are written as qweight/qzeros/scales exactly as they are; lm_head is omitted when the config
// ties it to the embedding. The model is checked against its config with the loader's own checks before
// anything is written, so LoadHostModel(dir) gives back the same tensors. The directory is created when
// missing; files already there with the same names are replaced. Reads the model only; any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/dtype.h"
#include "engine/io/host_model.h"
#include "engine/io/safetensors.h"

namespace nibble {

struct ModelWriteOptions {
  DType float_dtype = DType::kF16;                   // dense tensors: F32, F16 or BF16 (also config's torch_dtype)
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;  // transformers' default of 5 GB
  bool sync = false;                                 // fsync every file written
};

// Returns the files written: config.json, then the safetensors files (and index).
absl::StatusOr<std::vector<std::filesystem::path>> WriteHostModel(const std::filesystem::path& dir,
                                                                  const HostModel& model,
                                                                  const ModelWriteOptions& options = {});

// Block `index`'s tensors under their Hugging Face names (model.layers.<index>.*), in their own dtypes: what
// AssembleHostLayer (model_loader.h) reads back. The quantizer's checkpoints hold finished blocks this way.
std::vector<NamedTensor> LayerTensors(const ModelConfig& config, const HostLayer& layer, int64_t index);

// Writes <dir>/tokenizer_config.json for a SentencePiece `tokenizer.model` with Llama's special pieces
// (<unk> 0, <s> 1, </s> 2), so transformers loads it as a LlamaTokenizer. Returns the file written.
absl::StatusOr<std::filesystem::path> WriteLlamaTokenizerConfig(const std::filesystem::path& dir,
                                                                int64_t model_max_length);

}  // namespace nibble
