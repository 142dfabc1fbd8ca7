#include "engine/tokenizer/byte_level.h"

#include <array>
#include <cstdint>

namespace nibble {
namespace {

// The code point that stands for each byte (GPT-2's bytes_to_unicode).
struct ByteLevelTable {
  std::array<char32_t, 256> code_point_of_byte{};

  constexpr ByteLevelTable() {
    char32_t next = 256;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174);
      code_point_of_byte[byte] = printable ? static_cast<char32_t>(byte) : next++;
    }
  }
};

constexpr ByteLevelTable kTable;

void AppendUtf8(char32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else {  // the table's code points are all below U+0800
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

}  // namespace

std::string BytesToByteLevel(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char byte : bytes) AppendUtf8(kTable.code_point_of_byte[static_cast<uint8_t>(byte)], out);
  return out;
}

std::optional<std::string> ByteLevelToBytes(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<uint8_t>(text[i]);
    char32_t code_point = 0;
    if (lead < 0x80) {
      code_point = lead;
      i += 1;
    } else if ((lead & 0xE0) == 0xC0 && i + 1 < text.size()) {
      code_point = (static_cast<char32_t>(lead & 0x1F) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3F);
      i += 2;
    } else {
      return std::nullopt;  // three- and four-byte characters are outside the alphabet
    }
    // Invert the table: printable bytes stand for themselves, the others are U+0100 + their rank.
    if (code_point < 256 && kTable.code_point_of_byte[code_point] == code_point) {
      out.push_back(static_cast<char>(code_point));
      continue;
    }
    bool found = false;
    if (code_point >= 256 && code_point < 256 + 68) {
      for (int byte = 0; byte < 256; ++byte) {
        if (kTable.code_point_of_byte[byte] == code_point) {
          out.push_back(static_cast<char>(byte));
          found = true;
          break;
        }
      }
    }
    if (!found) return std::nullopt;
  }
  return out;
}

}  // namespace nibble
