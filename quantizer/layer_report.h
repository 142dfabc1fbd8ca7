// What the block loop reports about each decoder block it quantized (quantize.h), and that report as JSON: the
// entries of nibble.json's "layers" and of a checkpoint's progress.json (block_checkpoint.h). Plain data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace nibble {

struct ScaleGroupReport {
  std::string layers;   // "q,k,v", "o", "gate,up", "down"
  std::string formula;  // "act" or "duo"
  double alpha = 0;
  double loss = 0;            // module output MSE with the chosen scales
  double loss_at_alpha0 = 0;  // with plain RTN of the group (act, alpha 0)
};

struct LayerReport {
  int64_t index = 0;
  std::vector<ScaleGroupReport> scale_groups;  // empty for RTN
  double clip_error = 0;                       // mean best clipping error over the clipped Linears (AWQ)
  double output_mse = 0;  // block output MSE, quantized vs full precision, on the calibration set (AWQ)
  double seconds = 0;
};

nlohmann::json LayerReportJson(const LayerReport& report);
// InvalidArgument naming the missing or mistyped field.
absl::StatusOr<LayerReport> LayerReportFromJson(const nlohmann::json& json);

}  // namespace nibble
