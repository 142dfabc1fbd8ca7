#include "engine/tokenizer/tokenizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/utf8.h"

namespace nibble {

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(absl::string_view text) const {
  const size_t valid = ValidUtf8PrefixLength(text);
  if (valid != text.size()) {
    return absl::InvalidArgumentError(absl::StrCat("prompt is not valid UTF-8 at byte ", valid));
  }
  return EncodeValidUtf8(text);
}

}  // namespace nibble
