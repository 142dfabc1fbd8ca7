// The `decoder` of a Hugging Face tokenizer.json, turned into what each token adds to the text: ByteLevel,
// Metaspace, ByteFallback, Fuse, Strip, Replace and Sequence of them. Any other type is an error naming it,
// and so is a chain whose result would depend on more than one token at a time after Fuse (a Strip of the
// text's end, a multi-character Replace), which could not be streamed token by token.
//
// Immutable once parsed; DecodeToken is const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace nibble {

struct DecodedToken {
  std::string bytes;                 // what the token adds mid-text
  std::string leading_bytes;         // what it adds at the start of the text (Metaspace and Strip drop a space there)
  bool may_split_character = false;  // its bytes are not valid UTF-8 on their own (a byte piece, part of one)
};

class HfDecoder {
 public:
  struct Step;
  explicit HfDecoder(std::vector<Step> steps);
  ~HfDecoder();
  HfDecoder(HfDecoder&&) noexcept;

  // What the vocabulary entry `piece` adds to the text.
  absl::StatusOr<DecodedToken> DecodeToken(absl::string_view piece) const;

 private:
  std::vector<Step> steps_;
};

// The decoder described by `config` (the file's "decoder" object). InvalidArgument naming `source` and the
// component's type when it is missing, not supported or malformed.
absl::StatusOr<HfDecoder> ParseHfDecoder(const nlohmann::json& config, const std::string& source);

}  // namespace nibble
