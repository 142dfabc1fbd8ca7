// Loads a Hugging Face model directory (config.json + safetensors, single or sharded) into a HostModel.
//
// Every tensor the config implies (model_layout.h) is checked before the model is returned: present, of an
// accepted dtype (float tensors F32/F16/BF16; AWQ qweight/qzeros I32 and scales F16) and of the shape the
// config implies. Errors name the file, the tensor, what it has and what config.json implies; a missing
// tensor is NotFound, a wrong dtype or shape InvalidArgument. Tensors the model does not use are ignored (as
// transformers does). The returned HostModel holds zero-copy views into the memory-mapped files and keeps
// them mapped; it is immutable and may be read from any thread.
#pragma once

#include <filesystem>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/io/host_model.h"
#include "engine/io/model_config.h"
#include "engine/io/tensor_source.h"

namespace nibble {

absl::StatusOr<HostModel> LoadHostModel(const std::filesystem::path& dir);

// Builds a HostModel of `config` from `tensors` with the checks above; `config_source` names the config in
// messages. LoadHostModel is ReadModelConfig + TensorSource::Open + this; writers run it on what they are
// about to write.
absl::StatusOr<HostModel> AssembleHostModel(const ModelConfig& config, const TensorSource& tensors,
                                            absl::string_view config_source);
// One decoder block `layer` of `config` from `tensors` (its model.layers.<layer>.* tensors), with the same checks.
absl::StatusOr<HostLayer> AssembleHostLayer(const ModelConfig& config, const TensorSource& tensors, int64_t layer,
                                            absl::string_view config_source);

}  // namespace nibble
