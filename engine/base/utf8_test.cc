#include "engine/base/utf8.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

namespace nibble {
namespace {

// Encodes any value up to 0x1FFFFF the way UTF-8 would, surrogates included (the validator must reject
// those; the encoder here does not judge).
std::string Encode(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

const std::string kFffd(kReplacementCharacter);

TEST(Utf8Test, EveryScalarValueIsValidAndEverySurrogateIsNot) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const std::string bytes = Encode(cp);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(IsValidUtf8(bytes), !surrogate) << "U+" << std::hex << cp;
    ASSERT_EQ(CompleteUtf8Prefix(bytes), bytes.size()) << "U+" << std::hex << cp;
    if (!surrogate) {
      ASSERT_EQ(ReplaceInvalidUtf8(bytes), bytes) << "U+" << std::hex << cp;
    }
  }
}

TEST(Utf8Test, AcceptsBoundaryCharacters) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
  EXPECT_TRUE(IsValidUtf8("\x7F"));
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));          // U+0080
  EXPECT_TRUE(IsValidUtf8("\xDF\xBF"));          // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));      // U+0800
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));      // U+E000
  EXPECT_TRUE(IsValidUtf8("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80"));
}

TEST(Utf8Test, RejectsOverlongForms) {
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // U+0000 in two bytes
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));          // U+007F in two bytes
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\x80"));      // U+0000 in three bytes
  EXPECT_FALSE(IsValidUtf8("\xE0\x9F\xBF"));      // U+07FF in three bytes
  EXPECT_FALSE(IsValidUtf8("\xF0\x80\x80\x80"));  // U+0000 in four bytes
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));  // U+FFFF in four bytes
}

TEST(Utf8Test, RejectsSurrogatesAndValuesBeyondUnicode) {
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));              // U+D800
  EXPECT_FALSE(IsValidUtf8("\xED\xBF\xBF"));              // U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\xBD\xED\xB8\x80"));  // CESU-8 pair for U+1F600
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));          // U+110000
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF8\x88\x80\x80\x80"));  // old five-byte form
  EXPECT_FALSE(IsValidUtf8("\xFE"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(Utf8Test, RejectsTruncatedAndStrayBytes) {
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xE6\x97"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x98"));
  EXPECT_FALSE(IsValidUtf8("\x80"));  // continuation without a lead
  EXPECT_FALSE(
      IsValidUtf8("\xE6\x97"
                  "a"));                      // lead interrupted by ASCII
  EXPECT_FALSE(IsValidUtf8("\xC3\xA9\xA9"));  // one continuation too many
}

TEST(Utf8Test, ValidPrefixLengthPointsAtTheFirstBadByte) {
  EXPECT_EQ(ValidUtf8PrefixLength("hello"), 5u);
  EXPECT_EQ(ValidUtf8PrefixLength("ab\xFF"
                                  "cd"),
            2u);
  EXPECT_EQ(ValidUtf8PrefixLength("caf\xC3\xA9\xE6\x97"), 5u);  // truncated character at the end
  EXPECT_EQ(ValidUtf8PrefixLength("\xC3\xA9\xED\xA0\x80"), 2u);
  EXPECT_EQ(ValidUtf8PrefixLength("\x80"), 0u);
}

TEST(Utf8Test, CompletePrefixHoldsBackOnlyCharactersThatCanStillComplete) {
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("\xC3"), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xE6\x97"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("\xE6\x97\xA5"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF0\x9F\x98"), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF0\x9F"), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF0\x9F\x98\x80"), 5u);
  // Starts that no later byte can rescue are not held back.
  EXPECT_EQ(CompleteUtf8Prefix("a\x80"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xE0\x80"), 3u);  // overlong
  EXPECT_EQ(CompleteUtf8Prefix("a\xED\xA0"), 3u);  // surrogate
  EXPECT_EQ(CompleteUtf8Prefix("a\xF4\x90"), 3u);  // beyond U+10FFFF
  EXPECT_EQ(CompleteUtf8Prefix("a\xC0"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF5"), 2u);
  // An interrupted character before an incomplete one.
  EXPECT_EQ(CompleteUtf8Prefix("\xE6\x97\xE6\x97"), 2u);
}

TEST(Utf8Test, ReplacesEachInvalidByteWithOneReplacementCharacter) {
  EXPECT_EQ(ReplaceInvalidUtf8("plain"), "plain");
  EXPECT_EQ(ReplaceInvalidUtf8(""), "");
  EXPECT_EQ(ReplaceInvalidUtf8("a\xE6\x97"), "a" + kFffd + kFffd);
  EXPECT_EQ(ReplaceInvalidUtf8("\xC0\x80"), kFffd + kFffd);
  EXPECT_EQ(ReplaceInvalidUtf8("\xED\xA0\x80z"), kFffd + kFffd + kFffd + "z");
  EXPECT_EQ(ReplaceInvalidUtf8("\xE6\x97\xE6\x97\xA5"), kFffd + kFffd + "\xE6\x97\xA5");
  EXPECT_EQ(ReplaceInvalidUtf8("\xFF\xC3\xA9"), kFffd + "\xC3\xA9");
}

// Random byte strings biased towards the interesting bytes (leads, continuations, ASCII).
std::string RandomBytes(std::mt19937& rng, size_t max_length) {
  static constexpr uint8_t kBytes[] = {'a',  ' ',  0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
                                       0xC2, 0xC3, 0xDF, 0xE0, 0xE6, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  std::uniform_int_distribution<size_t> length(0, max_length);
  std::uniform_int_distribution<size_t> pick(0, sizeof(kBytes) - 1);
  std::string bytes(length(rng), '\0');
  for (char& byte : bytes) byte = static_cast<char>(kBytes[pick(rng)]);
  return bytes;
}

// Whether some continuation bytes turn `tail` into one valid character.
bool CanComplete(const std::string& tail) {
  for (const char second : {'\x80', '\x90', '\xA0'}) {
    std::string candidate = tail;
    if (candidate.size() == 1) candidate += second;
    while (candidate.size() < 4 && !IsValidUtf8(candidate)) candidate += '\x80';
    if (IsValidUtf8(candidate)) return true;
  }
  return false;
}

TEST(Utf8Test, RandomBytesSplitAtTheCompletePrefixReplaceAsAWhole) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20000; ++trial) {
    const std::string bytes = RandomBytes(rng, 12);
    const std::string replaced = ReplaceInvalidUtf8(bytes);
    ASSERT_TRUE(IsValidUtf8(replaced));
    ASSERT_EQ(IsValidUtf8(bytes), replaced == bytes);
    const size_t head = CompleteUtf8Prefix(bytes);
    ASSERT_LE(bytes.size() - head, 3u);
    ASSERT_EQ(ReplaceInvalidUtf8(bytes.substr(0, head)) + ReplaceInvalidUtf8(bytes.substr(head)), replaced);
    if (head < bytes.size()) {
      ASSERT_TRUE(CanComplete(bytes.substr(head))) << "held back bytes that can never form a character";
    }
    const size_t valid = ValidUtf8PrefixLength(bytes);
    ASSERT_TRUE(IsValidUtf8(bytes.substr(0, valid)));
    ASSERT_LE(valid, head);
  }
}

}  // namespace
}  // namespace nibble
