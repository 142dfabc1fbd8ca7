#include "engine/base/utf8.h"

#include <cstdint>

namespace nibble {
namespace {

enum class CharStart { kValid, kIncomplete, kInvalid };

struct ScannedChar {
  CharStart kind = CharStart::kInvalid;
  size_t length = 0;  // bytes of the character when kValid
};

// Classifies the character that starts at text[0] (text non-empty) by the ranges of Unicode table 3-7:
// the allowed range of the second byte depends on the first; later bytes are any continuation byte.
ScannedChar ScanChar(absl::string_view text) {
  const uint8_t lead = static_cast<uint8_t>(text[0]);
  if (lead < 0x80) return {CharStart::kValid, 1};
  size_t length = 0;
  uint8_t second_min = 0x80;
  uint8_t second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;  // below: overlong
    if (lead == 0xED) second_max = 0x9F;  // above: surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;  // below: overlong
    if (lead == 0xF4) second_max = 0x8F;  // above: beyond U+10FFFF
  } else {
    return {CharStart::kInvalid, 0};  // continuation byte, C0/C1 (overlong) or F5..FF
  }
  for (size_t i = 1; i < length; ++i) {
    if (i >= text.size()) return {CharStart::kIncomplete, 0};
    const uint8_t byte = static_cast<uint8_t>(text[i]);
    const uint8_t min = i == 1 ? second_min : 0x80;
    const uint8_t max = i == 1 ? second_max : 0xBF;
    if (byte < min || byte > max) return {CharStart::kInvalid, 0};
  }
  return {CharStart::kValid, length};
}

}  // namespace

size_t ValidUtf8PrefixLength(absl::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const ScannedChar scanned = ScanChar(text.substr(pos));
    if (scanned.kind != CharStart::kValid) return pos;
    pos += scanned.length;
  }
  return pos;
}

bool IsValidUtf8(absl::string_view text) { return ValidUtf8PrefixLength(text) == text.size(); }

size_t CompleteUtf8Prefix(absl::string_view text) {
  // Only a lead byte among the last three can start an incomplete character, and then every byte after it
  // continues it, so at most one start qualifies. A lead byte is never part of an earlier character, so a
  // left-to-right decoder always stops at it: the split is on a character boundary.
  const size_t first = text.size() > 3 ? text.size() - 3 : 0;
  for (size_t start = first; start < text.size(); ++start) {
    if (ScanChar(text.substr(start)).kind == CharStart::kIncomplete) return start;
  }
  return text.size();
}

std::string ReplaceInvalidUtf8(absl::string_view text) {
  std::string result;
  result.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const ScannedChar scanned = ScanChar(text.substr(pos));
    if (scanned.kind == CharStart::kValid) {
      result.append(text.data() + pos, scanned.length);
      pos += scanned.length;
    } else {
      result.append(kReplacementCharacter.data(), kReplacementCharacter.size());
      ++pos;
    }
  }
  return result;
}

}  // namespace nibble
