// The BPE `model` of a Hugging Face tokenizer.json: vocabulary, ranked merges, `ignore_merges` (a pre-token
// that is itself in the vocabulary is one token, as Llama 3 sets it), `byte_fallback` (a character outside
// the vocabulary becomes its <0xNN> byte tokens), `unk_token` and `fuse_unk`. Dropout, subword prefixes and
// word suffixes are refused as unsupported.
//
// Immutable once parsed; Encode is const and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace nibble {

class BpeModel {
 public:
  // The model of `config` (the file's "model" object). InvalidArgument naming `source` when it is not a BPE
  // model nibble supports or a merge names a piece outside the vocabulary.
  static absl::StatusOr<BpeModel> Parse(const nlohmann::json& config, const std::string& source);

  // Appends the ids of the pre-token `piece` (valid UTF-8) to `ids`. InvalidArgument when a character is
  // outside the vocabulary and the model has neither byte fallback nor an unknown token.
  absl::Status Encode(absl::string_view piece, std::vector<int32_t>& ids) const;

  // id -> piece, for every id the vocabulary holds (ids without a piece hold nullopt).
  const std::vector<std::optional<std::string>>& pieces() const { return pieces_; }
  std::optional<int32_t> unk_id() const { return unk_id_; }
  bool byte_fallback() const { return byte_fallback_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  // The initial symbols of `piece`: one per character (byte tokens or the unknown token where needed).
  absl::Status InitialSymbols(absl::string_view piece, std::vector<int32_t>& symbols) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::optional<std::string>> pieces_;
  absl::flat_hash_map<uint64_t, Merge> merges_;  // PairKey(left, right) -> merge
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  int32_t byte_ids_[256] = {};  // <0xNN> ids when byte_fallback (-1 where the vocabulary lacks one)
};

}  // namespace nibble
