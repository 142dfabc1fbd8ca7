#include "quantizer/import.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_config.h"
#include "engine/io/model_loader.h"
#include "engine/io/weight_check.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "quantizer/publisher.h"

namespace nibble {

absl::StatusOr<uint64_t> ImportModelDirectory(const ModelStore& store, absl::string_view model,
                                              const std::filesystem::path& source_dir) {
  NIBBLE_RETURN_IF_ERROR(ValidateModelName(model));
  std::error_code error;
  if (!std::filesystem::is_directory(source_dir, error)) {
    return absl::NotFoundError(absl::StrCat(source_dir.string(), ": not a directory"));
  }
  NIBBLE_ASSIGN_OR_RETURN(const ModelConfig config, ReadModelConfig(source_dir));
  NIBBLE_RETURN_IF_ERROR(LoadTokenizer(source_dir).status());
  NIBBLE_ASSIGN_OR_RETURN(const HostModel host, LoadHostModel(source_dir));
  if (absl::Status finite = CheckFiniteWeights(host); !finite.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source_dir.string(), ": ", finite.message()));
  }
  nlohmann::json fields = {{"source", {{"path", std::filesystem::absolute(source_dir).string()}, {"imported", true}}}};
  if (config.awq) {
    fields["quantization"] = {{"method", "awq"},
                              {"bits", config.awq->bits},
                              {"group_size", config.awq->group_size},
                              {"zero_point", config.awq->zero_point},
                              {"version", config.awq->version}};
  }
  return PublishDirectory(store, model, source_dir, fields);
}

}  // namespace nibble
