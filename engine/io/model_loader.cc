#include "engine/io/model_loader.h"

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_layout.h"

namespace nibble {
namespace {

// Takes the model's tensors out of a TensorSource, checking each against the config.
class Assembler {
 public:
  Assembler(const ModelConfig& config, const TensorSource& tensors, absl::string_view config_source)
      : config_(config), tensors_(tensors), config_source_(config_source) {}

  absl::StatusOr<HostModel> Assemble() const {
    HostModel model;
    model.config = config_;
    const Shape table{config_.vocab_size, config_.hidden_size};
    const Shape norm{config_.hidden_size};
    NIBBLE_ASSIGN_OR_RETURN(model.embedding, Take(std::string(kEmbeddingName), table, std::nullopt));
    for (int64_t layer = 0; layer < config_.num_layers; ++layer) {
      NIBBLE_ASSIGN_OR_RETURN(HostLayer host_layer, Layer(layer));
      model.layers.push_back(std::move(host_layer));
    }
    NIBBLE_ASSIGN_OR_RETURN(model.final_norm, Take(std::string(kFinalNormName), norm, std::nullopt));
    if (config_.tie_word_embeddings) {
      model.lm_head = model.embedding;
    } else {
      NIBBLE_ASSIGN_OR_RETURN(model.lm_head,
                              Take(std::string(kLmHeadName), table, std::nullopt, " (tie_word_embeddings is false)"));
    }
    return model;
  }

  absl::StatusOr<HostLayer> Layer(int64_t layer) const {
    const std::string prefix = LayerPrefix(layer);
    const Shape norm{config_.hidden_size};
    HostLayer host_layer;
    for (const DecoderNorm& slot : kDecoderNorms) {
      NIBBLE_ASSIGN_OR_RETURN(host_layer.*slot.member,
                              Take(absl::StrCat(prefix, slot.module, ".weight"), norm, std::nullopt));
    }
    for (const DecoderLinear& slot : DecoderLinears(config_)) {
      NIBBLE_ASSIGN_OR_RETURN(host_layer.*slot.member, Linear(absl::StrCat(prefix, slot.module), slot));
    }
    return host_layer;
  }

 private:
  // The tensor `name`, which must have `expected` shape and the dtype `exact_dtype` (any float dtype when
  // nullopt). `missing_hint` is added to the message when it is absent.
  absl::StatusOr<HostTensor> Take(const std::string& name, const Shape& expected, std::optional<DType> exact_dtype,
                                  absl::string_view missing_hint = "") const {
    if (!tensors_.Has(name)) {
      return absl::NotFoundError(absl::StrCat(tensors_.origin(), ": tensor \"", name, "\" is missing; ", config_source_,
                                              " implies it", missing_hint));
    }
    NIBBLE_ASSIGN_OR_RETURN(HostTensor tensor, tensors_.Get(name));
    const bool dtype_ok = exact_dtype ? tensor.dtype == *exact_dtype : IsFloat(tensor.dtype);
    if (!dtype_ok) {
      return absl::InvalidArgumentError(absl::StrCat(tensors_.FileOf(name), ": tensor \"", name, "\" has dtype ",
                                                     DTypeName(tensor.dtype), " but must be ",
                                                     exact_dtype ? DTypeName(*exact_dtype) : "F32, F16 or BF16"));
    }
    if (!(tensor.shape == expected)) {
      return absl::InvalidArgumentError(absl::StrCat(tensors_.FileOf(name), ": tensor \"", name, "\" has shape ",
                                                     tensor.shape.ToString(), " but ", config_source_, " implies ",
                                                     expected.ToString()));
    }
    return tensor;
  }

  absl::StatusOr<HostLinear> Linear(const std::string& name, const DecoderLinear& slot) const {
    HostLinear linear;
    linear.in_features = slot.in_features;
    linear.out_features = slot.out_features;
    if (config_.awq) {
      const std::string hint = tensors_.Has(name + ".weight")
                                   ? " (its quantization_config says AWQ, but the checkpoint has a dense .weight)"
                                   : "";
      const AwqShapes shapes = AwqTensorShapes(slot.in_features, slot.out_features, config_.awq->group_size);
      AwqWeight awq;
      awq.group_size = config_.awq->group_size;
      NIBBLE_ASSIGN_OR_RETURN(awq.qweight, Take(name + ".qweight", shapes.qweight, DType::kI32, hint));
      NIBBLE_ASSIGN_OR_RETURN(awq.qzeros, Take(name + ".qzeros", shapes.qzeros, DType::kI32, hint));
      NIBBLE_ASSIGN_OR_RETURN(awq.scales, Take(name + ".scales", shapes.scales, DType::kF16, hint));
      linear.weight = std::move(awq);
    } else {
      const std::string hint =
          tensors_.Has(name + ".qweight") ? " (the checkpoint is AWQ-packed but has no quantization_config)" : "";
      NIBBLE_ASSIGN_OR_RETURN(linear.weight,
                              Take(name + ".weight", Shape{slot.out_features, slot.in_features}, std::nullopt, hint));
    }
    if (slot.bias) {
      NIBBLE_ASSIGN_OR_RETURN(linear.bias, Take(name + ".bias", Shape{slot.out_features}, std::nullopt));
    }
    return linear;
  }

  const ModelConfig& config_;
  const TensorSource& tensors_;
  absl::string_view config_source_;
};

}  // namespace

absl::StatusOr<HostModel> AssembleHostModel(const ModelConfig& config, const TensorSource& tensors,
                                            absl::string_view config_source) {
  return Assembler(config, tensors, config_source).Assemble();
}

absl::StatusOr<HostLayer> AssembleHostLayer(const ModelConfig& config, const TensorSource& tensors, int64_t layer,
                                            absl::string_view config_source) {
  return Assembler(config, tensors, config_source).Layer(layer);
}

absl::StatusOr<HostModel> LoadHostModel(const std::filesystem::path& dir) {
  NIBBLE_ASSIGN_OR_RETURN(ModelConfig config, ReadModelConfig(dir));
  NIBBLE_ASSIGN_OR_RETURN(TensorSource tensors, TensorSource::Open(dir));
  return AssembleHostModel(config, tensors, (dir / "config.json").string());
}

}  // namespace nibble
