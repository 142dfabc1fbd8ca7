#include "engine/tokenizer/added_tokens.h"

namespace nibble {
namespace {

bool IsAsciiWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized) {
  for (const AddedToken& token : tokens) {
    if (token.normalized != normalized || token.content.empty()) continue;
    uint32_t node = 0;
    for (const char byte : token.content) {
      const uint64_t edge = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(byte);
      auto [it, inserted] = edges_.try_emplace(edge, node_count_);
      if (inserted) ++node_count_;
      node = it->second;
    }
    terminals_.try_emplace(node, Match{token.id, token.lstrip, token.rstrip});
  }
}

size_t AddedTokenMatcher::LongestAt(absl::string_view text, const Match** match) const {
  size_t longest = 0;
  uint32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto edge = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
    if (edge == edges_.end()) break;
    node = edge->second;
    if (const auto terminal = terminals_.find(node); terminal != terminals_.end()) {
      longest = i + 1;
      *match = &terminal->second;
    }
  }
  return longest;
}

std::vector<TextSegment> AddedTokenMatcher::Split(absl::string_view text) const {
  std::vector<TextSegment> segments;
  size_t plain_begin = 0;  // start of the text not yet in a segment
  auto add_plain = [&](size_t end) {
    if (end > plain_begin) segments.push_back({text.substr(plain_begin, end - plain_begin), -1, plain_begin});
  };
  size_t i = 0;
  while (i < text.size() && !terminals_.empty()) {
    const Match* match = nullptr;
    const size_t length = LongestAt(text.substr(i), &match);
    if (length == 0) {
      ++i;
      continue;
    }
    size_t begin = i;
    size_t end = i + length;
    if (match->lstrip) {
      while (begin > plain_begin && IsAsciiWhitespace(text[begin - 1])) --begin;
    }
    if (match->rstrip) {
      while (end < text.size() && IsAsciiWhitespace(text[end])) ++end;
    }
    add_plain(begin);
    segments.push_back({text.substr(begin, end - begin), match->id, begin});
    plain_begin = end;
    i = end;
  }
  add_plain(text.size());
  return segments;
}

}  // namespace nibble
