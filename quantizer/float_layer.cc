#include "quantizer/float_layer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

absl::Status CheckFiniteValues(const std::vector<float>& values, const std::string& tensor) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(tensor, " holds a non-finite value (", values[i], " at element ",
                                                     i, "): the model cannot be quantized"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> FiniteFloats(const HostTensor& tensor, const std::string& name) {
  std::vector<float> values = tensor.ToFloats();
  NIBBLE_RETURN_IF_ERROR(CheckFiniteValues(values, name));
  return values;
}

absl::StatusOr<FloatLinear> ToFloatLinear(const HostLinear& linear, const std::string& name) {
  if (linear.quantized()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is already quantized: quantize from the 16/32-bit model"));
  }
  FloatLinear result;
  result.name = name;
  result.in_features = linear.in_features;
  result.out_features = linear.out_features;
  NIBBLE_ASSIGN_OR_RETURN(result.weight, FiniteFloats(std::get<HostTensor>(linear.weight), name + ".weight"));
  if (linear.bias) {
    NIBBLE_ASSIGN_OR_RETURN(result.bias, FiniteFloats(*linear.bias, name + ".bias"));
  }
  return result;
}

HostTensor VectorTensor(const std::vector<float>& values) {
  return HostTensor::FromFloats(values, Shape{static_cast<int64_t>(values.size())});
}

}  // namespace

absl::Status CheckFinite(const HostTensor& tensor, const std::string& name) {
  return CheckFiniteValues(tensor.ToFloats(), name);
}

HostLinear FloatLinear::ToHost() const {
  HostLinear linear;
  linear.in_features = in_features;
  linear.out_features = out_features;
  linear.weight = HostTensor::FromFloats(weight, Shape{out_features, in_features});
  if (bias) linear.bias = VectorTensor(*bias);
  return linear;
}

HostLayer FloatLayer::ToHost() const {
  return HostLayer{VectorTensor(attention_norm), q.ToHost(),    k.ToHost(),  v.ToHost(),   o.ToHost(),
                   VectorTensor(mlp_norm),       gate.ToHost(), up.ToHost(), down.ToHost()};
}

absl::StatusOr<FloatLayer> ToFloatLayer(const HostLayer& layer, int64_t index) {
  const std::string prefix = absl::StrCat("model.layers.", index, ".");
  FloatLayer result;
  NIBBLE_ASSIGN_OR_RETURN(result.attention_norm, FiniteFloats(layer.attention_norm, prefix + "input_layernorm.weight"));
  NIBBLE_ASSIGN_OR_RETURN(result.mlp_norm, FiniteFloats(layer.mlp_norm, prefix + "post_attention_layernorm.weight"));
  NIBBLE_ASSIGN_OR_RETURN(result.q, ToFloatLinear(layer.q, prefix + "self_attn.q_proj"));
  NIBBLE_ASSIGN_OR_RETURN(result.k, ToFloatLinear(layer.k, prefix + "self_attn.k_proj"));
  NIBBLE_ASSIGN_OR_RETURN(result.v, ToFloatLinear(layer.v, prefix + "self_attn.v_proj"));
  NIBBLE_ASSIGN_OR_RETURN(result.o, ToFloatLinear(layer.o, prefix + "self_attn.o_proj"));
  NIBBLE_ASSIGN_OR_RETURN(result.gate, ToFloatLinear(layer.gate, prefix + "mlp.gate_proj"));
  NIBBLE_ASSIGN_OR_RETURN(result.up, ToFloatLinear(layer.up, prefix + "mlp.up_proj"));
  NIBBLE_ASSIGN_OR_RETURN(result.down, ToFloatLinear(layer.down, prefix + "mlp.down_proj"));
  return result;
}

}  // namespace nibble
