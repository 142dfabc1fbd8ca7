#include "engine/io/model_writer.h"

#include <optional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_layout.h"
#include "engine/io/model_loader.h"
#include "engine/io/tensor_source.h"
#include "nlohmann/json.hpp"

namespace nibble {
namespace {

absl::StatusOr<std::string> TorchDtypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return std::string("float32");
    case DType::kF16:
      return std::string("float16");
    case DType::kBF16:
      return std::string("bfloat16");
    default:
      return absl::InvalidArgumentError(absl::StrCat("models are written in F32, F16 or BF16, not ", DTypeName(dtype)));
  }
}

// `tensor` in `dtype` (itself when it already is; float dtypes only).
HostTensor ConvertFloatTensor(const HostTensor& tensor, DType dtype) {
  if (tensor.dtype == dtype || !IsFloat(tensor.dtype)) return tensor;
  const std::vector<float> values = tensor.ToFloats();
  std::vector<std::byte> bytes(values.size() * DTypeSize(dtype));
  ConvertFromFloat(values, dtype, bytes.data());
  return HostTensor::FromBytes(std::move(bytes), dtype, tensor.shape);
}

// Appends block `layer`'s tensors under their Hugging Face names, dense ones converted to `dtype` (kept as
// they are when nullopt).
void AppendLayerTensors(const ModelConfig& config, const HostLayer& host_layer, int64_t layer,
                        std::optional<DType> dtype, std::vector<NamedTensor>& named) {
  auto add = [&](std::string name, const HostTensor& tensor) {
    named.push_back({std::move(name), dtype ? ConvertFloatTensor(tensor, *dtype) : tensor});
  };
  const std::string prefix = LayerPrefix(layer);
  for (const DecoderNorm& slot : kDecoderNorms)
    add(absl::StrCat(prefix, slot.module, ".weight"), host_layer.*slot.member);
  for (const DecoderLinear& slot : DecoderLinears(config)) {
    const HostLinear& linear = host_layer.*slot.member;
    const std::string name = absl::StrCat(prefix, slot.module);
    if (const auto* awq = std::get_if<AwqWeight>(&linear.weight)) {
      named.push_back({name + ".qweight", awq->qweight});
      named.push_back({name + ".qzeros", awq->qzeros});
      named.push_back({name + ".scales", awq->scales});
    } else {
      add(name + ".weight", std::get<HostTensor>(linear.weight));
    }
    if (linear.bias) add(name + ".bias", *linear.bias);
  }
}

// The model's tensors under their Hugging Face names, dense ones converted to `dtype`.
std::vector<NamedTensor> NameTensors(const HostModel& model, DType dtype) {
  std::vector<NamedTensor> named;
  auto add = [&](std::string name, const HostTensor& tensor) {
    named.push_back({std::move(name), ConvertFloatTensor(tensor, dtype)});
  };
  add(std::string(kEmbeddingName), model.embedding);
  for (size_t layer = 0; layer < model.layers.size(); ++layer) {
    AppendLayerTensors(model.config, model.layers[layer], static_cast<int64_t>(layer), dtype, named);
  }
  add(std::string(kFinalNormName), model.final_norm);
  if (!model.config.tie_word_embeddings) add(std::string(kLmHeadName), model.lm_head);
  return named;
}

// Checks what is about to be written with the loader's checks, so a bad model never reaches the disk.
absl::Status CheckLoadable(const ModelConfig& config, std::span<const NamedTensor> tensors,
                           const std::filesystem::path& dir) {
  const std::string origin = absl::StrCat("model being written to ", dir.string());
  NIBBLE_RETURN_IF_ERROR(ParseModelConfig(ModelConfigToJson(config), origin + " (config)").status());
  NIBBLE_ASSIGN_OR_RETURN(TensorSource source, TensorSource::FromTensors(tensors, origin));
  return AssembleHostModel(config, source, "its config").status();
}

// The layer count and AWQ group sizes, which the tensor shapes alone do not pin down.
absl::Status CheckStructure(const HostModel& model, const std::filesystem::path& dir) {
  const ModelConfig& config = model.config;
  if (model.layers.size() != static_cast<size_t>(config.num_layers)) {
    return absl::InvalidArgumentError(absl::StrCat("model being written to ", dir.string(), " has ",
                                                   model.layers.size(), " layers but its config says ",
                                                   config.num_layers));
  }
  for (size_t layer = 0; layer < model.layers.size(); ++layer) {
    for (const DecoderLinear& slot : DecoderLinears(config)) {
      const auto* awq = std::get_if<AwqWeight>(&(model.layers[layer].*slot.member).weight);
      if (awq != nullptr && config.awq && awq->group_size != config.awq->group_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model being written to ", dir.string(), ": ", LayerPrefix(static_cast<int64_t>(layer)), slot.module,
            " has AWQ group size ", awq->group_size, " but its config says ", config.awq->group_size));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::filesystem::path>> WriteHostModel(const std::filesystem::path& dir,
                                                                  const HostModel& model,
                                                                  const ModelWriteOptions& options) {
  ModelConfig config = model.config;
  NIBBLE_ASSIGN_OR_RETURN(config.torch_dtype, TorchDtypeName(options.float_dtype));
  NIBBLE_RETURN_IF_ERROR(CheckStructure(model, dir));
  const std::vector<NamedTensor> tensors = NameTensors(model, options.float_dtype);
  NIBBLE_RETURN_IF_ERROR(CheckLoadable(config, tensors, dir));

  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat(dir.string(), ": cannot create the directory: ", error.message()));
  std::vector<std::filesystem::path> written = {dir / "config.json"};
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(written[0], ModelConfigToJson(config).dump(2) + "\n", options.sync));
  NIBBLE_ASSIGN_OR_RETURN(
      std::vector<std::filesystem::path> weights,
      WriteSafetensorsShards(dir, tensors, options.max_shard_bytes, {{"format", "pt"}}, options.sync));
  written.insert(written.end(), weights.begin(), weights.end());
  return written;
}

absl::StatusOr<std::filesystem::path> WriteLlamaTokenizerConfig(const std::filesystem::path& dir,
                                                                int64_t model_max_length) {
  const nlohmann::json config = {
      {"tokenizer_class", "LlamaTokenizer"},
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"unk_token", "<unk>"},
      {"pad_token", nullptr},
      {"model_max_length", model_max_length},
      {"clean_up_tokenization_spaces", false},
      {"legacy", true},
      {"sp_model_kwargs", nlohmann::json::object()},
  };
  const std::filesystem::path path = dir / "tokenizer_config.json";
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(path, config.dump(2) + "\n"));
  return path;
}

std::vector<NamedTensor> LayerTensors(const ModelConfig& config, const HostLayer& layer, int64_t index) {
  std::vector<NamedTensor> named;
  AppendLayerTensors(config, layer, index, std::nullopt, named);
  return named;
}

}  // namespace nibble
