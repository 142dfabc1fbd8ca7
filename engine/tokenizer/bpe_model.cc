#include "engine/tokenizer/bpe_model.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/status_macros.h"
#include "engine/tokenizer/json_fields.h"

namespace nibble {
namespace {

using nlohmann::json;

absl::Status Malformed(const std::string& source, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": model BPE: ", problem));
}

size_t CharacterLength(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

// A merge's two parts: "a b" (older files) or ["a", "b"].
absl::StatusOr<std::pair<std::string, std::string>> MergeParts(const json& merge, const std::string& source) {
  if (merge.is_string()) {
    const std::string text = merge.get<std::string>();
    const size_t space = text.find(' ');
    if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
      return Malformed(source, absl::StrCat("merge \"", text.substr(0, 40), "\" is not two pieces"));
    }
    return std::make_pair(text.substr(0, space), text.substr(space + 1));
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return std::make_pair(merge[0].get<std::string>(), merge[1].get<std::string>());
  }
  return Malformed(source, "a merge is neither \"a b\" nor [\"a\", \"b\"]");
}

}  // namespace

absl::StatusOr<BpeModel> BpeModel::Parse(const json& config, const std::string& source) {
  if (!config.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": no \"model\" object"));
  NIBBLE_ASSIGN_OR_RETURN(const std::string type, OptionalString(config, "type", "BPE", source, "model"));
  if (type != "BPE") {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": model type \"", type, "\" is not supported (nibble reads BPE)"));
  }
  if (config.contains("dropout") && config["dropout"].is_number() && config["dropout"].get<double>() != 0.0) {
    return Malformed(source, "dropout is not supported");
  }
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (config.contains(field) && config[field].is_string() && !config[field].get<std::string>().empty()) {
      return Malformed(source, absl::StrCat(field, " is not supported"));
    }
  }
  if (!config.contains("vocab") || !config["vocab"].is_object()) return Malformed(source, "no \"vocab\" object");
  if (!config.contains("merges") || !config["merges"].is_array()) return Malformed(source, "no \"merges\" array");

  BpeModel model;
  model.vocab_.reserve(config["vocab"].size());
  for (const auto& [piece, id] : config["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t{1} << 30)) {
      return Malformed(source, absl::StrCat("vocab entry \"", piece.substr(0, 40), "\" has no valid id"));
    }
    const auto value = static_cast<int32_t>(id.get<int64_t>());
    model.vocab_[piece] = value;
    if (static_cast<size_t>(value) >= model.pieces_.size()) model.pieces_.resize(value + 1);
    model.pieces_[value] = piece;
  }
  model.merges_.reserve(config["merges"].size());
  int32_t rank = 0;
  for (const json& merge : config["merges"]) {
    NIBBLE_ASSIGN_OR_RETURN(auto parts, MergeParts(merge, source));
    const auto left = model.vocab_.find(parts.first);
    const auto right = model.vocab_.find(parts.second);
    const auto merged = model.vocab_.find(parts.first + parts.second);
    if (left == model.vocab_.end() || right == model.vocab_.end() || merged == model.vocab_.end()) {
      return Malformed(source, absl::StrCat("merge ", rank, " names a piece outside the vocabulary"));
    }
    model.merges_.try_emplace(PairKey(left->second, right->second), Merge{rank, merged->second});
    ++rank;
  }
  if (config.contains("unk_token") && config["unk_token"].is_string()) {
    const auto unk = model.vocab_.find(config["unk_token"].get<std::string>());
    if (unk == model.vocab_.end()) return Malformed(source, "unk_token is not in the vocabulary");
    model.unk_id_ = unk->second;
  }
  NIBBLE_ASSIGN_OR_RETURN(model.fuse_unk_, OptionalBool(config, "fuse_unk", false, source, "model"));
  NIBBLE_ASSIGN_OR_RETURN(model.byte_fallback_, OptionalBool(config, "byte_fallback", false, source, "model"));
  NIBBLE_ASSIGN_OR_RETURN(model.ignore_merges_, OptionalBool(config, "ignore_merges", false, source, "model"));
  for (int byte = 0; byte < 256; ++byte) {
    const auto it = model.vocab_.find(absl::StrFormat("<0x%02X>", byte));
    model.byte_ids_[byte] = it == model.vocab_.end() ? -1 : it->second;
  }
  return model;
}

absl::Status BpeModel::InitialSymbols(absl::string_view piece, std::vector<int32_t>& symbols) const {
  bool previous_unknown = false;
  for (size_t i = 0; i < piece.size();) {
    const size_t length = std::min(CharacterLength(static_cast<unsigned char>(piece[i])), piece.size() - i);
    const absl::string_view character = piece.substr(i, length);
    i += length;
    if (const auto it = vocab_.find(character); it != vocab_.end()) {
      symbols.push_back(it->second);
      previous_unknown = false;
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (const char byte : character) all_bytes = all_bytes && byte_ids_[static_cast<unsigned char>(byte)] >= 0;
      if (all_bytes) {
        for (const char byte : character) symbols.push_back(byte_ids_[static_cast<unsigned char>(byte)]);
        previous_unknown = false;
        continue;
      }
    }
    if (!unk_id_) {
      return absl::InvalidArgumentError(
          "the text has a character outside the tokenizer's vocabulary, which has no unknown token");
    }
    if (!(fuse_unk_ && previous_unknown)) symbols.push_back(*unk_id_);
    previous_unknown = true;
  }
  return absl::OkStatus();
}

absl::Status BpeModel::Encode(absl::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return absl::OkStatus();
  if (ignore_merges_) {
    if (const auto it = vocab_.find(piece); it != vocab_.end()) {
      ids.push_back(it->second);
      return absl::OkStatus();
    }
  }
  std::vector<int32_t> symbols;
  NIBBLE_RETURN_IF_ERROR(InitialSymbols(piece, symbols));
  const int n = static_cast<int>(symbols.size());
  // A doubly linked list over `symbols` (merged-away symbols are unlinked) and a heap of candidate merges,
  // lowest rank first, leftmost first among equal ranks; stale candidates are skipped when popped.
  std::vector<int> next(n), previous(n);
  for (int i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : -1;
    previous[i] = i - 1;
  }
  struct Candidate {
    int32_t rank;
    int left;
    int32_t left_id;
    int32_t right_id;
    bool operator>(const Candidate& other) const { return rank != other.rank ? rank > other.rank : left > other.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    const auto it = merges_.find(PairKey(symbols[left], symbols[next[left]]));
    if (it != merges_.end()) heap.push({it->second.rank, left, symbols[left], symbols[next[left]]});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const int left = top.left;
    if (!alive[left] || symbols[left] != top.left_id) continue;
    const int right = next[left];
    if (right < 0 || symbols[right] != top.right_id) continue;
    symbols[left] = merges_.at(PairKey(top.left_id, top.right_id)).merged_id;
    alive[right] = false;
    next[left] = next[right];
    if (next[right] >= 0) previous[next[right]] = left;
    push(previous[left]);
    push(left);
  }
  for (int i = 0; i >= 0; i = next[i]) ids.push_back(symbols[i]);  // symbol 0 is never merged away
  return absl::OkStatus();
}

}  // namespace nibble
