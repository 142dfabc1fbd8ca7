// How a model made elsewhere enters the store: a Hugging Face model directory (fp16/bf16/fp32, or an AutoAWQ
// GEMM checkpoint as hubs publish them) is checked as nibble-server would load it, then published as the next
// version with a manifest (quantizer/publisher.h). Nothing is published when a check fails.
//
// The checks, cheap ones first: the model name, config.json (the architecture and every size), the tokenizer
// files, then every tensor's name, dtype and shape (the safetensors are mapped, not read whole) and every
// float value finite (weights, norms, biases, AWQ scales). Thread-safe (publishing is, see publisher.h).
#pragma once

#include <cstdint>
#include <filesystem>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/io/model_store.h"

namespace nibble {

// Publishes `source_dir` as the next version of `model` in `store`; returns the version. The manifest records
// the source path and, for an AWQ checkpoint, its quantization (bits, group size, zero point, GEMM layout).
absl::StatusOr<uint64_t> ImportModelDirectory(const ModelStore& store, absl::string_view model,
                                              const std::filesystem::path& source_dir);

}  // namespace nibble
