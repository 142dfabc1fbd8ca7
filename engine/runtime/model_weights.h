// A model's weights in backend memory: uploaded once from a HostModel, q/k/v and gate/up fused, in the
// layout the backend's kernels want. Owned by whoever loads the model (Model, or the quantizer for one
// block); read-only afterwards, so several steps may read them, one thread at a time per backend.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/io/host_model.h"
#include "engine/io/model_config.h"
#include "engine/runtime/backend.h"

namespace nibble {

// One decoder block's weights in backend memory, q/k/v and gate/up fused along their outputs.
struct LayerWeights {
  DeviceTensor attention_norm;             // [D]
  std::unique_ptr<LinearWeights> qkv;      // D -> (H + 2K) * Dh: q rows, then k, then v
  std::unique_ptr<LinearWeights> o;        // H * Dh -> D
  DeviceTensor mlp_norm;                   // [D]
  std::unique_ptr<LinearWeights> gate_up;  // D -> 2F: gate rows, then up
  std::unique_ptr<LinearWeights> down;     // F -> D
};

struct ModelWeights {
  DeviceTensor embedding;  // [V, D]
  std::vector<LayerWeights> layers;
  DeviceTensor final_norm;                 // [D]
  std::unique_ptr<LinearWeights> lm_head;  // D -> V
  DeviceTensor rope_inv_freq;              // fp32 [Dh / 2], llama3 scaling applied
  size_t bytes() const;
};

// Uploads one decoder block (fusing q/k/v and gate/up), or the whole model.
absl::StatusOr<LayerWeights> UploadLayer(Backend& backend, const HostLayer& layer, absl::string_view name);
absl::StatusOr<ModelWeights> UploadModel(Backend& backend, const HostModel& host);
// RoPE inverse frequencies 1 / theta^(2i / Dh), with llama3 scaling when configured.
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

}  // namespace nibble
