#include "engine/base/quote.h"

#include <gtest/gtest.h>

#include <string>

namespace nibble {
namespace {

TEST(QuoteTest, ShortTextIsQuotedWhole) {
  EXPECT_EQ(QuotedPrefix("stories"), "\"stories\"");
  EXPECT_EQ(QuotedPrefix(""), "\"\"");
}

TEST(QuoteTest, ControlBytesQuotesAndNonAsciiAreEscaped) {
  EXPECT_EQ(QuotedPrefix("a\nb\"c\x01\xff"), "\"a\\nb\\\"c\\x01\\xff\"");
}

TEST(QuoteTest, LongTextIsCutToAPrefixAndItsLengthSaid) {
  const std::string long_name(1 << 20, 'x');
  const std::string quoted = QuotedPrefix(long_name);
  EXPECT_EQ(quoted, "\"" + std::string(kQuotedPrefixBytes, 'x') + "\"... (1048576 bytes)");
  // The worst case: every byte escaped to four.
  const std::string binary(1 << 20, '\x01');
  EXPECT_LE(QuotedPrefix(binary).size(), 4 * kQuotedPrefixBytes + 40);
}

}  // namespace
}  // namespace nibble
