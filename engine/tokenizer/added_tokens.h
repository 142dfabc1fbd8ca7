// The `added_tokens` of a Hugging Face tokenizer.json, found in text before the model runs: leftmost
// first, the longest at a position, `lstrip`/`rstrip` taking the whitespace beside a match with it. Tokens
// with `normalized` are looked for in normalized text, the others in the raw text (AddedTokens::Split is
// called once for each kind).
//
// Immutable once built; Split is const and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace nibble {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A stretch of text: either an added token's match (id >= 0) or text for the model (id == -1).
struct TextSegment {
  absl::string_view text;
  int32_t id = -1;
  size_t offset = 0;  // where `text` starts in the split text
};

class AddedTokenMatcher {
 public:
  // Matches the `tokens` whose `normalized` equals `normalized` (empty contents are ignored).
  AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized);

  // `text` cut into matches and the stretches between them, in order; stretches are never empty.
  std::vector<TextSegment> Split(absl::string_view text) const;

 private:
  struct Match {
    int32_t id;
    bool lstrip;
    bool rstrip;
  };
  // The length of the longest token starting at `text`'s start (0: none), and which one.
  size_t LongestAt(absl::string_view text, const Match** match) const;

  // A byte trie: edges (node << 8 | byte) -> node; terminal nodes -> their token.
  absl::flat_hash_map<uint64_t, uint32_t> edges_;
  absl::flat_hash_map<uint32_t, Match> terminals_;
  uint32_t node_count_ = 1;  // node 0 is the root
};

}  // namespace nibble
