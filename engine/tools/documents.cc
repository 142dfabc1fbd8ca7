#include "engine/tools/documents.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace nibble {

std::vector<std::string> SplitDocuments(absl::string_view text, absl::string_view separator) {
  std::vector<std::string> documents;
  auto keep = [&](absl::string_view piece) {
    piece = absl::StripAsciiWhitespace(piece);
    if (!piece.empty()) documents.emplace_back(piece);
  };
  if (separator.empty()) {
    keep(text);
    return documents;
  }
  for (absl::string_view piece : absl::StrSplit(text, separator)) keep(piece);
  return documents;
}

absl::StatusOr<std::vector<std::string>> JsonlDocuments(absl::string_view text, absl::string_view field) {
  std::vector<std::string> documents;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const nlohmann::json object = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    const std::string key(field);
    if (!object.is_object() || !object.contains(key) || !object[key].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSONL line ", line_number, ": expected an object with a string field \"", field, "\""));
    }
    std::string document = object[key].get<std::string>();
    if (!absl::StripAsciiWhitespace(document).empty()) documents.push_back(std::move(document));
  }
  return documents;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> TokenizeDocuments(const Tokenizer& tokenizer,
                                                                    const std::vector<std::string>& documents) {
  std::vector<std::vector<int32_t>> tokenized;
  tokenized.reserve(documents.size());
  for (size_t i = 0; i < documents.size(); ++i) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(documents[i]);
    if (!ids.ok()) return absl::InvalidArgumentError(absl::StrCat("document ", i, ": ", ids.status().message()));
    std::vector<int32_t> tokens;
    if (tokenizer.bos_id() >= 0) tokens.push_back(tokenizer.bos_id());
    tokens.insert(tokens.end(), ids->begin(), ids->end());
    tokenized.push_back(std::move(tokens));
  }
  return tokenized;
}

}  // namespace nibble
