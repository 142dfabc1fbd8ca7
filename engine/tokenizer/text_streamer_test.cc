#include "engine/tokenizer/text_streamer.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/base/utf8.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

constexpr int32_t kUnk = 0;
constexpr int32_t kBos = 1;
constexpr int32_t kEos = 2;
constexpr int32_t ByteToken(int byte) { return 3 + byte; }  // tok512's <0xNN> pieces

const std::string kFffd(kReplacementCharacter);

class TextStreamerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NIBBLE_REQUIRE_SHARED(model, "models/stories260K/tok512.model");
    auto tokenizer = LoadSentencePieceTokenizer(model);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(tokenizer).value();
  }

  std::vector<int32_t> Encode(const std::string& text) { return tokenizer_->Encode(text).value(); }

  // What each Push returned, then what Finish returned.
  std::vector<std::string> Stream(const std::vector<int32_t>& tokens, StreamStart start) {
    TextStreamer streamer(*tokenizer_, start);
    std::vector<std::string> pieces;
    for (const int32_t token : tokens) pieces.push_back(streamer.Push(token));
    pieces.push_back(streamer.Finish());
    return pieces;
  }

  static std::string Join(const std::vector<std::string>& pieces) {
    std::string text;
    for (const std::string& piece : pieces) text += piece;
    return text;
  }

  // The streaming invariant: pieces join to Decode(tokens) and each is valid UTF-8 on its own.
  void ExpectStreamsLikeDecode(const std::vector<int32_t>& tokens) {
    const std::vector<std::string> pieces = Stream(tokens, StreamStart::kStartsText);
    for (const std::string& piece : pieces) ASSERT_TRUE(IsValidUtf8(piece)) << ::testing::PrintToString(tokens);
    ASSERT_EQ(Join(pieces), tokenizer_->Decode(tokens)) << ::testing::PrintToString(tokens);
  }

  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(TextStreamerTest, StreamsAStoryTokenByToken) {
  const std::vector<int32_t> tokens = Encode("Once upon a time, there was a little girl named Lily.\nShe liked cats.");
  const std::vector<std::string> pieces = Stream(tokens, StreamStart::kStartsText);
  EXPECT_EQ(pieces.front(), "Once");
  EXPECT_EQ(pieces.back(), "");
  EXPECT_EQ(Join(pieces), "Once upon a time, there was a little girl named Lily.\nShe liked cats.");
  ExpectStreamsLikeDecode(tokens);
}

TEST_F(TextStreamerTest, ContinuingAPromptKeepsTheLeadingSpace) {
  const std::vector<int32_t> prompt = Encode("Once upon a");
  const std::vector<int32_t> all = Encode("Once upon a time there was");
  ASSERT_TRUE(std::equal(prompt.begin(), prompt.end(), all.begin()));
  const std::vector<int32_t> generated(all.begin() + prompt.size(), all.end());

  const std::vector<std::string> pieces = Stream(generated, StreamStart::kContinuesText);
  EXPECT_EQ(pieces.front(), " time");
  EXPECT_EQ(Join(pieces), " time there was");
  EXPECT_EQ(tokenizer_->Decode(prompt) + Join(pieces), tokenizer_->Decode(all));

  EXPECT_EQ(Stream(generated, StreamStart::kStartsText).front(), "time");
}

TEST_F(TextStreamerTest, HoldsBackBytesUntilTheCharacterCompletes) {
  // "日本" has no pieces in tok512: "▁" then three byte tokens per character.
  const std::vector<int32_t> tokens = Encode("\xE6\x97\xA5\xE6\x9C\xAC");
  ASSERT_EQ(tokens.size(), 7u);
  EXPECT_EQ(Stream(tokens, StreamStart::kStartsText),
            (std::vector<std::string>{"", "", "", "\xE6\x97\xA5", "", "", "\xE6\x9C\xAC", ""}));
  EXPECT_EQ(Stream(tokens, StreamStart::kContinuesText),
            (std::vector<std::string>{" ", "", "", "\xE6\x97\xA5", "", "", "\xE6\x9C\xAC", ""}));
}

TEST_F(TextStreamerTest, HoldsBackAllFourBytesOfAnEmoji) {
  const std::vector<int32_t> tokens = {ByteToken(0xF0), ByteToken(0x9F), ByteToken(0x98), ByteToken(0x80),
                                       ByteToken('!')};
  EXPECT_EQ(Stream(tokens, StreamStart::kContinuesText),
            (std::vector<std::string>{"", "", "", "\xF0\x9F\x98\x80", "!", ""}));
  ExpectStreamsLikeDecode(tokens);
}

TEST_F(TextStreamerTest, FinishFlushesAnIncompleteCharacterAsReplacements) {
  const std::vector<int32_t> tokens = {ByteToken('a'), ByteToken(0xE6), ByteToken(0x97)};
  EXPECT_EQ(Stream(tokens, StreamStart::kStartsText), (std::vector<std::string>{"a", "", "", kFffd + kFffd}));
  ExpectStreamsLikeDecode(tokens);
}

TEST_F(TextStreamerTest, ANonByteTokenEndsAnIncompleteCharacter) {
  const std::vector<int32_t> the = Encode("the");
  ASSERT_EQ(the.size(), 1u);
  const std::vector<int32_t> tokens = {ByteToken(0xE6), ByteToken(0x97), the[0]};
  EXPECT_EQ(Stream(tokens, StreamStart::kStartsText), (std::vector<std::string>{"", "", kFffd + kFffd + " the", ""}));
  ExpectStreamsLikeDecode(tokens);
  // Control tokens end it too, though they add no text.
  ExpectStreamsLikeDecode({ByteToken(0xE6), kEos, ByteToken(0x97), ByteToken(0xA5)});
  ExpectStreamsLikeDecode({ByteToken(0xE6), ByteToken(0x97), kBos, ByteToken(0xA5)});
}

TEST_F(TextStreamerTest, BytesThatCanNeverCompleteAreNotHeldBack) {
  EXPECT_EQ(Stream({ByteToken(0xFF), ByteToken(0x80)}, StreamStart::kStartsText),
            (std::vector<std::string>{kFffd, kFffd, ""}));
  EXPECT_EQ(Stream({ByteToken(0xE0), ByteToken(0x80)}, StreamStart::kStartsText),  // overlong
            (std::vector<std::string>{"", kFffd + kFffd, ""}));
  EXPECT_EQ(Stream({ByteToken(0xE6), ByteToken(0xE6), ByteToken(0x97), ByteToken(0xA5)}, StreamStart::kStartsText),
            (std::vector<std::string>{"", kFffd, "", "\xE6\x97\xA5", ""}));
}

TEST_F(TextStreamerTest, LeadingSpaceRulesMatchDecode) {
  const int32_t space = Encode("\xE6\x97\xA5")[0];  // the lone "▁" piece
  ASSERT_EQ(*tokenizer_->IdToPiece(space), "\xE2\x96\x81");
  const int32_t the = Encode("the")[0];
  ExpectStreamsLikeDecode({space, the});
  ExpectStreamsLikeDecode({space, space, the});
  ExpectStreamsLikeDecode({kBos, the});
  ExpectStreamsLikeDecode({kUnk, the});
  ExpectStreamsLikeDecode({ByteToken(' '), the});
  ExpectStreamsLikeDecode({ByteToken(0xE6), the});
}

TEST_F(TextStreamerTest, RealTextWithByteFallbackStreamsLikeDecode) {
  for (const std::string text : {"caf\xC3\xA9 au lait", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xA7\xE3\x81\x99",
                                 "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 end",
                                 "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC",
                                 "mix \xD1\x80\xD1\x83\xD1\x81 and \xE4\xB8\xAD\xE6\x96\x87!\nnext line"}) {
    std::vector<int32_t> tokens = Encode(text);
    ExpectStreamsLikeDecode(tokens);
    EXPECT_EQ(Join(Stream(tokens, StreamStart::kStartsText)), text);
    tokens.insert(tokens.begin(), kBos);
    tokens.push_back(kEos);
    ExpectStreamsLikeDecode(tokens);
  }
}

// Random ids: mostly byte tokens (biased towards lead and continuation bytes) mixed with pieces, control
// tokens, the unknown token and ids outside the vocabulary.
std::vector<int32_t> RandomTokens(std::mt19937& rng, int vocab_size) {
  static constexpr int kBytes[] = {'a', ' ', '\n', 0x80, 0x97, 0xA5, 0xBF, 0xC3, 0xE0, 0xE6, 0xED, 0xF0, 0xF4, 0xFF};
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_int_distribution<int> byte(0, sizeof(kBytes) / sizeof(kBytes[0]) - 1);
  std::uniform_int_distribution<int> any_byte(0, 255);
  std::uniform_int_distribution<int> piece(ByteToken(256), vocab_size - 1);
  std::uniform_int_distribution<int> length(0, 30);
  std::vector<int32_t> tokens(length(rng));
  for (int32_t& token : tokens) {
    switch (kind(rng)) {
      case 0:
      case 1:
      case 2:
      case 3:
        token = ByteToken(kBytes[byte(rng)]);
        break;
      case 4:
        token = ByteToken(any_byte(rng));
        break;
      case 5:
      case 6:
      case 7:
        token = piece(rng);
        break;
      case 8:
        token = std::uniform_int_distribution<int>(0, 2)(rng);
        break;  // unk, bos, eos
      default:
        token = std::uniform_int_distribution<int>(0, 1)(rng) == 0 ? -7 : vocab_size + 3;
        break;
    }
  }
  return tokens;
}

TEST_F(TextStreamerTest, RandomTokenSequencesStreamLikeDecode) {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 5000; ++trial) {
    ExpectStreamsLikeDecode(RandomTokens(rng, tokenizer_->vocab_size()));
    if (HasFatalFailure()) return;
  }
}

TEST_F(TextStreamerTest, RandomTokenSequencesContinueAPromptLikeDecode) {
  const std::vector<int32_t> prompt = Encode("Once upon a");
  const std::string prompt_text = tokenizer_->Decode(prompt);
  std::mt19937 rng(99);
  for (int trial = 0; trial < 5000; ++trial) {
    const std::vector<int32_t> generated = RandomTokens(rng, tokenizer_->vocab_size());
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), generated.begin(), generated.end());
    const std::vector<std::string> pieces = Stream(generated, StreamStart::kContinuesText);
    for (const std::string& piece : pieces) ASSERT_TRUE(IsValidUtf8(piece));
    ASSERT_EQ(prompt_text + Join(pieces), tokenizer_->Decode(all)) << ::testing::PrintToString(generated);
  }
}

TEST_F(TextStreamerTest, PushingAfterFinishContinuesTheText) {
  const int32_t the = Encode("the")[0];  // "▁the"
  TextStreamer streamer(*tokenizer_, StreamStart::kStartsText);
  EXPECT_EQ(streamer.Push(the), "the");
  EXPECT_EQ(streamer.Finish(), "");
  EXPECT_EQ(streamer.Push(ByteToken(0xE6)), "");
  EXPECT_EQ(streamer.Finish(), kFffd);
  EXPECT_EQ(streamer.Finish(), "");
  EXPECT_EQ(streamer.Push(the), " the");
}

}  // namespace
}  // namespace nibble
