// A compiled PCRE2 regular expression over UTF-8 text (UTF and Unicode properties on: \p{L}, \s and \w are
// Unicode-aware), as the patterns of Hugging Face tokenizer.json files need: lookahead, (?i:...), classes.
//
// Immutable once compiled; FindAll is const and thread-safe (each call has its own match data). Movable,
// not copyable; owns the compiled code.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nibble {

class Pcre2Regex {
 public:
  // InvalidArgument naming `source` and quoting the error position when `pattern` does not compile.
  static absl::StatusOr<Pcre2Regex> Compile(absl::string_view pattern, absl::string_view source);

  // Calls on_match(begin, end) for each successive non-overlapping, non-empty match in `text` (valid UTF-8,
  // byte offsets), left to right. An Internal error when the matcher fails (e.g. its match limit).
  absl::Status FindAll(absl::string_view text, const std::function<void(size_t, size_t)>& on_match) const;

 private:
  struct CodeDeleter {
    void operator()(void* code) const;
  };
  explicit Pcre2Regex(void* code) : code_(code) {}

  std::unique_ptr<void, CodeDeleter> code_;  // pcre2_code_8
};

}  // namespace nibble
