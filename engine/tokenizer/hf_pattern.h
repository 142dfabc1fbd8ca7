// A `pattern` of a Hugging Face tokenizer.json component: {"String": "..."} (a literal) or {"Regex": "..."}
// (PCRE2, UTF + Unicode properties). Immutable; FindAll is const and thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/pcre2_regex.h"
#include "nlohmann/json.hpp"

namespace nibble {

class HfPattern {
 public:
  // InvalidArgument naming `source` and `component` when `config` is neither form or the regex is bad.
  static absl::StatusOr<HfPattern> Parse(const nlohmann::json& config, const std::string& source,
                                         absl::string_view component);

  // Successive non-overlapping, non-empty matches in `text`, left to right (byte offsets).
  absl::Status FindAll(absl::string_view text, const std::function<void(size_t, size_t)>& on_match) const;

  // The literal of a String pattern; nullopt for a Regex.
  const std::optional<std::string>& literal() const { return literal_; }

 private:
  std::optional<std::string> literal_;
  std::optional<Pcre2Regex> regex_;
};

// `text` with every match of `pattern` replaced by `content`.
absl::StatusOr<std::string> ReplaceAll(const HfPattern& pattern, absl::string_view text, absl::string_view content);

}  // namespace nibble
