#include "engine/tokenizer/generation_config.h"

#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace nibble {

absl::StatusOr<std::vector<int32_t>> ReadGenerationEosIds(const std::filesystem::path& dir, int64_t vocab_size) {
  using nlohmann::json;
  const std::filesystem::path path = dir / "generation_config.json";
  std::vector<int32_t> ids;
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return ids;
  NIBBLE_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  const json generation = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (generation.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not valid JSON"));
  if (!generation.is_object() || !generation.contains("eos_token_id")) return ids;
  const json& eos = generation["eos_token_id"];
  const json list = eos.is_array() ? eos : json::array({eos});
  for (const json& id : list) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": eos_token_id holds an id outside the vocabulary"));
    }
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return ids;
}

}  // namespace nibble
