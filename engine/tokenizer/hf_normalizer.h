// The `normalizer` of a Hugging Face tokenizer.json: NFC, NFD, NFKC, NFKD (through utf8proc), Prepend,
// Replace (a String or Regex pattern) and Sequence of them. Any other type is an error naming it.
//
// Immutable once parsed; Normalize is const and thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace nibble {

class HfNormalizer {
 public:
  virtual ~HfNormalizer() = default;
  // `text` (valid UTF-8) normalized; the result is valid UTF-8.
  virtual absl::StatusOr<std::string> Normalize(std::string text) const = 0;
};

// The normalizer described by `config` (the file's "normalizer" object; null: none, returns nullptr).
// InvalidArgument naming `source` and the component's type when it is not supported or malformed.
absl::StatusOr<std::unique_ptr<HfNormalizer>> ParseHfNormalizer(const nlohmann::json& config,
                                                                const std::string& source);

}  // namespace nibble
