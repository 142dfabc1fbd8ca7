#include "engine/serving/stop_strings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/base/utf8.h"

namespace nibble {
namespace {

struct Streamed {
  std::vector<std::string> pieces;  // each Push's text, then Finish's
  bool stopped = false;
};

Streamed Filter(const std::vector<std::string>& stops, const std::vector<std::string>& deltas) {
  StopStringFilter filter(stops);
  Streamed streamed;
  for (const std::string& delta : deltas) {
    StopStringFilter::Output output = filter.Push(delta);
    streamed.pieces.push_back(output.text);
    streamed.stopped = streamed.stopped || output.stopped;
  }
  streamed.pieces.push_back(filter.Finish());
  return streamed;
}

using Pieces = std::vector<std::string>;

TEST(StopStringFilterTest, WithoutStopStringsTextPassesThrough) {
  const Streamed streamed = Filter({}, {"Once", " upon", " a time"});
  EXPECT_EQ(streamed.pieces, (Pieces{"Once", " upon", " a time", ""}));
  EXPECT_FALSE(streamed.stopped);
  EXPECT_EQ(Filter({""}, {"a", "b"}).pieces, (Pieces{"a", "b", ""}));  // empty stop strings are ignored
}

TEST(StopStringFilterTest, StopsBeforeAStopStringInsideOneDelta) {
  const Streamed streamed = Filter({"\n\n"}, {"Hello\n\nWorld", "more"});
  EXPECT_EQ(streamed.pieces, (Pieces{"Hello", "", ""}));
  EXPECT_TRUE(streamed.stopped);
}

TEST(StopStringFilterTest, StopsAtAStopStringSpanningDeltas) {
  const Streamed streamed = Filter({"The End"}, {"once. The", " En", "d!", " more"});
  EXPECT_EQ(streamed.pieces, (Pieces{"once. ", "", "", "", ""}));
  EXPECT_TRUE(streamed.stopped);
}

TEST(StopStringFilterTest, ReleasesHeldTextOnceItCannotBeAStopString) {
  const Streamed streamed = Filter({"abc"}, {"xab", "d", "ab"});
  EXPECT_EQ(streamed.pieces, (Pieces{"x", "abd", "", "ab"}));  // Finish releases the last "ab"
  EXPECT_FALSE(streamed.stopped);
}

TEST(StopStringFilterTest, EarliestMatchOfSeveralStopStringsWins) {
  EXPECT_EQ(Filter({"world", "lo w"}, {"hello world"}).pieces, (Pieces{"hel", ""}));
  EXPECT_EQ(Filter({"lo w", "world"}, {"hello world"}).pieces, (Pieces{"hel", ""}));
}

TEST(StopStringFilterTest, OverlappingPartialMatches) {
  const Streamed streamed = Filter({"aab"}, {"aa", "a", "b"});
  EXPECT_EQ(streamed.pieces, (Pieces{"", "a", "", ""}));
  EXPECT_TRUE(streamed.stopped);
}

TEST(StopStringFilterTest, RandomTextsMatchAPlainSearch) {
  // Characters of 1, 2, 3 and 4 bytes, so that cuts on bytes rather than characters would show.
  const std::vector<std::string> alphabet = {"a", "b", " ", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80"};
  std::mt19937 rng(5);
  std::uniform_int_distribution<size_t> letter(0, alphabet.size() - 1);
  auto random_text = [&](int max_chars) {
    std::string text;
    for (int i = std::uniform_int_distribution<int>(1, max_chars)(rng); i > 0; --i) text += alphabet[letter(rng)];
    return text;
  };
  for (int trial = 0; trial < 5000; ++trial) {
    std::vector<std::string> stops;
    for (int i = std::uniform_int_distribution<int>(0, 3)(rng); i > 0; --i) stops.push_back(random_text(3));
    // Deltas of whole characters. Generation stops at the first delta that completes a stop string; the
    // text then ends before the earliest stop string in the text so far.
    std::vector<std::string> deltas;
    std::string text;
    size_t match = std::string::npos;
    for (int i = std::uniform_int_distribution<int>(0, 8)(rng); i > 0; --i) {
      deltas.push_back(random_text(3));
      if (match != std::string::npos) continue;
      text += deltas.back();
      for (const std::string& stop : stops) match = std::min(match, text.find(stop));
    }

    const Streamed streamed = Filter(stops, deltas);
    std::string joined;
    for (const std::string& piece : streamed.pieces) {
      ASSERT_TRUE(IsValidUtf8(piece));
      joined += piece;
    }
    ASSERT_EQ(streamed.stopped, match != std::string::npos);
    ASSERT_EQ(joined, text.substr(0, match)) << "text " << text << " stops " << ::testing::PrintToString(stops)
                                             << " deltas " << ::testing::PrintToString(deltas);
  }
}

}  // namespace
}  // namespace nibble
