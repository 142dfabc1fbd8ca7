// A decoder block's weights as mutable fp32 host arrays: what the quantizer searches over, scales, clips and
// finally quantizes. Converted from and back to the engine's HostLayer; owned by the quantizer's block loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/host_model.h"

namespace nibble {

// One nn.Linear: y = x W^T + b, W row-major [out, in].
struct FloatLinear {
  std::string name;  // "model.layers.3.mlp.down_proj"
  int64_t in_features = 0;
  int64_t out_features = 0;
  std::vector<float> weight;               // [out, in]
  std::optional<std::vector<float>> bias;  // [out]

  float& at(int64_t row, int64_t column) { return weight[static_cast<size_t>(row * in_features + column)]; }
  // The engine's dense HostLinear holding a copy of these values.
  HostLinear ToHost() const;
};

struct FloatLayer {
  std::vector<float> attention_norm;  // [D]
  FloatLinear q, k, v, o;
  std::vector<float> mlp_norm;  // [D]
  FloatLinear gate, up, down;

  // The seven Linears, in checkpoint order.
  std::vector<FloatLinear*> Linears() { return {&q, &k, &v, &o, &gate, &up, &down}; }
  HostLayer ToHost() const;
};

// InvalidArgument naming `name` when `tensor` (a float dtype) holds a NaN or infinite value.
absl::Status CheckFinite(const HostTensor& tensor, const std::string& name);

// Converts block `index` of a model to fp32. InvalidArgument naming the tensor when it is already quantized
// or holds a NaN or infinite value.
absl::StatusOr<FloatLayer> ToFloatLayer(const HostLayer& layer, int64_t index);

}  // namespace nibble
