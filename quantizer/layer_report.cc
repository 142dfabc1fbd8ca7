#include "quantizer/layer_report.h"

#include "absl/strings/str_cat.h"

namespace nibble {

nlohmann::json LayerReportJson(const LayerReport& report) {
  nlohmann::json groups = nlohmann::json::array();
  for (const ScaleGroupReport& group : report.scale_groups) {
    groups.push_back({{"layers", group.layers},
                      {"formula", group.formula},
                      {"alpha", group.alpha},
                      {"loss", group.loss},
                      {"loss_rtn", group.loss_at_alpha0}});
  }
  return {{"layer", report.index},
          {"scale_groups", groups},
          {"clip_error", report.clip_error},
          {"output_mse", report.output_mse},
          {"seconds", report.seconds}};
}

absl::StatusOr<LayerReport> LayerReportFromJson(const nlohmann::json& json) {
  try {
    LayerReport report;
    report.index = json.at("layer").get<int64_t>();
    for (const nlohmann::json& group : json.at("scale_groups")) {
      report.scale_groups.push_back({group.at("layers").get<std::string>(), group.at("formula").get<std::string>(),
                                     group.at("alpha").get<double>(), group.at("loss").get<double>(),
                                     group.at("loss_rtn").get<double>()});
    }
    report.clip_error = json.at("clip_error").get<double>();
    report.output_mse = json.at("output_mse").get<double>();
    report.seconds = json.at("seconds").get<double>();
    return report;
  } catch (const nlohmann::json::exception& error) {
    return absl::InvalidArgumentError(absl::StrCat("block report: ", error.what()));
  }
}

}  // namespace nibble
