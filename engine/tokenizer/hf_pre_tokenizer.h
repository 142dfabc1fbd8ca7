// The `pre_tokenizer` of a Hugging Face tokenizer.json: Split (String or Regex pattern, every behavior,
// invert), ByteLevel (GPT-2's regex when use_regex, add_prefix_space), Digits, Metaspace and Sequence of
// them. Any other type is an error naming it.
//
// Immutable once parsed; PreTokenize is const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace nibble {

class HfPreTokenizer {
 public:
  virtual ~HfPreTokenizer() = default;
  // Splits (and transforms) each of `pieces` in place, keeping their order. `starts_text`: the pieces come
  // from the segment at the start of the text (Metaspace's prepend_scheme "first" prepends only there).
  virtual absl::Status PreTokenize(std::vector<std::string>& pieces, bool starts_text) const = 0;
};

// The pre-tokenizer described by `config` (the file's "pre_tokenizer"; null: none, returns nullptr).
// InvalidArgument naming `source` and the component's type when it is not supported or malformed.
absl::StatusOr<std::unique_ptr<HfPreTokenizer>> ParseHfPreTokenizer(const nlohmann::json& config,
                                                                    const std::string& source);

}  // namespace nibble
