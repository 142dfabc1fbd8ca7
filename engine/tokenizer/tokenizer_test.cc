#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/utf8.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "tests/support/sentencepiece_reference.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using ::nibble::testing::SentencePieceReference;
using ::nibble::testing::TempDir;

constexpr char kTok512[] = "models/stories260K/tok512.model";

// tok512: 512 pieces, <unk> 0, <s> 1, </s> 2, byte pieces <0x00>..<0xFF> at 3..258, merges after.
constexpr int32_t kUnk = 0;
constexpr int32_t kBos = 1;
constexpr int32_t kEos = 2;
constexpr int32_t ByteToken(int byte) { return 3 + byte; }

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl named Lily.",
      "Hello, world! How are you? I'm fine; thanks: (really) [yes] {no} <maybe> @#$%^&*~`|\\/",
      "line one\nline two\n\nline four\r\nwindows line",
      "tab\tseparated\tcolumns",
      "multiple   spaces    inside",
      "  leading and trailing spaces  ",
      " ",
      "\n",
      "",
      "12345 67.89 -0.5e10",
      "\"quoted\" and 'apostrophes' and under_score-dash",
      "caf\xC3\xA9",                               // café
      "na\xC3\xAFve r\xC3\xA9sum\xC3\xA9",         // naïve résumé
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",      // 日本語
      "mixed \xE4\xB8\xAD\xE6\x96\x87 text",       // mixed 中文 text
      "\xF0\x9F\x98\x80 emoji \xF0\x9F\x8E\x89!",  // 😀 emoji 🎉!
      // Ελληνικά рус
      "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC \xD1\x80\xD1\x83\xD1\x81",
      std::string("nul\0byte", 8),
  };
  return texts;
}

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NIBBLE_REQUIRE_SHARED(model, kTok512);
    model_path_ = model;
    auto tokenizer = LoadSentencePieceTokenizer(model);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(tokenizer).value();
    reference_ = std::make_unique<SentencePieceReference>(model.string());
    ASSERT_TRUE(reference_->ok());
  }

  std::vector<int32_t> MustEncode(const std::string& text) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<int32_t>{};
  }

  std::filesystem::path model_path_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<SentencePieceReference> reference_;
};

TEST_F(TokenizerTest, MaxTokenBytesIsTheLongestPieceAndBoundsEveryEncoding) {
  // The reference: libsentencepiece's pieces, "▁" (three bytes) standing for one input space; tok512 has
  // byte fallback, so no token covers more than its piece (and the unknown piece covers no input).
  size_t longest = 0;
  for (const auto& piece : reference_->Pieces()) {
    if (piece.control || piece.byte || piece.unknown) continue;
    size_t bytes = piece.piece.size();
    for (size_t at = piece.piece.find("\xE2\x96\x81"); at != std::string::npos;
         at = piece.piece.find("\xE2\x96\x81", at + 3)) {
      bytes -= 2;
    }
    longest = std::max(longest, bytes);
  }
  EXPECT_EQ(tokenizer_->max_token_bytes(), static_cast<int32_t>(longest));
  // Text the normalizer leaves alone (it round-trips) never needs fewer tokens than the bound says.
  int checked = 0;
  for (const std::string& text : Texts()) {
    const std::vector<int> ids = reference_->EncodeAsIds(text);
    if (reference_->DecodeIds(ids) != text) continue;
    EXPECT_GE(ids.size() * tokenizer_->max_token_bytes(), text.size()) << text;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST_F(TokenizerTest, ReportsVocabularyAndSpecialIds) {
  EXPECT_EQ(tokenizer_->vocab_size(), 512);
  EXPECT_EQ(tokenizer_->vocab_size(), reference_->GetPieceSize());
  EXPECT_EQ(tokenizer_->bos_id(), kBos);
  EXPECT_EQ(tokenizer_->eos_id(), kEos);
  EXPECT_EQ(*tokenizer_->IdToPiece(kUnk), "<unk>");
  EXPECT_EQ(*tokenizer_->IdToPiece(kBos), "<s>");
  EXPECT_EQ(*tokenizer_->IdToPiece(kEos), "</s>");
  EXPECT_EQ(*tokenizer_->IdToPiece(ByteToken(0x0A)), "<0x0A>");
}

TEST_F(TokenizerTest, IdToPieceOutsideTheVocabularyIsOutOfRange) {
  for (const int32_t id : {-1, 512, 1 << 30}) {
    const auto piece = tokenizer_->IdToPiece(id);
    EXPECT_EQ(piece.status().code(), absl::StatusCode::kOutOfRange) << id;
  }
}

TEST_F(TokenizerTest, EncodeMatchesLibsentencepiece) {
  for (const std::string& text : Texts()) {
    const std::vector<int32_t> ids = MustEncode(text);
    const std::vector<int> expected = reference_->EncodeAsIds(text);
    EXPECT_EQ(ids, std::vector<int32_t>(expected.begin(), expected.end())) << "text: " << text;
    if (!ids.empty()) {
      EXPECT_NE(ids.front(), kBos) << "Encode must not add BOS: " << text;
    }
  }
}

TEST_F(TokenizerTest, NonAsciiFallsBackToBytes) {
  // tok512 has no piece for these characters: they must come out as byte tokens that decode back.
  for (const std::string text : {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xF0\x9F\x98\x80"}) {
    const std::vector<int32_t> ids = MustEncode(text);
    int byte_tokens = 0;
    for (const int32_t id : ids) byte_tokens += tokenizer_->IsByteToken(id) ? 1 : 0;
    EXPECT_EQ(byte_tokens, static_cast<int>(text.size())) << text;
    EXPECT_EQ(tokenizer_->Decode(ids), text);
  }
}

TEST_F(TokenizerTest, RoundTripsTextTheNormalizerLeavesAlone) {
  // SentencePiece's normalizer collapses runs of spaces and trims the ends; other text round-trips.
  for (const std::string text :
       {"Once upon a time, there was a little girl named Lily.", "line one\nline two", "caf\xC3\xA9",
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xF0\x9F\x98\x80 emoji \xF0\x9F\x8E\x89!", "12345 67.89"}) {
    EXPECT_EQ(tokenizer_->Decode(MustEncode(text)), text);
  }
  EXPECT_EQ(tokenizer_->Decode(MustEncode("multiple   spaces")), "multiple spaces");
}

TEST_F(TokenizerTest, DecodeMatchesLibsentencepiece) {
  for (const std::string& text : Texts()) {
    std::vector<int32_t> ids = MustEncode(text);
    ids.insert(ids.begin(), kBos);
    ids.push_back(kEos);
    const std::string expected = reference_->DecodeIds(std::vector<int>(ids.begin(), ids.end()));
    EXPECT_EQ(tokenizer_->Decode(ids), expected) << "text: " << text;
  }
}

TEST_F(TokenizerTest, DecodeOfRandomIdsMatchesLibsentencepiece) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> id(0, 511);
  std::uniform_int_distribution<int> length(0, 24);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<int32_t> ids(length(rng));
    for (int32_t& token : ids) token = id(rng);
    ASSERT_EQ(tokenizer_->Decode(ids), reference_->DecodeIds(std::vector<int>(ids.begin(), ids.end())));
  }
}

TEST_F(TokenizerTest, IdsOutsideTheVocabularyDecodeAsUnknown) {
  const std::vector<int32_t> the = MustEncode("the end");
  for (const int32_t bad : {-1, 512, 100000}) {
    std::vector<int32_t> with_bad = the;
    with_bad.insert(with_bad.begin() + 1, bad);
    std::vector<int32_t> with_unk = the;
    with_unk.insert(with_unk.begin() + 1, kUnk);
    EXPECT_EQ(tokenizer_->Decode(with_bad), tokenizer_->Decode(with_unk));
    EXPECT_EQ(tokenizer_->TokenBytes(bad), tokenizer_->TokenBytes(kUnk));
    EXPECT_EQ(tokenizer_->LeadingTokenBytes(bad), tokenizer_->LeadingTokenBytes(kUnk));
    EXPECT_FALSE(tokenizer_->IsByteToken(bad));
  }
}

TEST_F(TokenizerTest, RejectsInvalidUtf8NamingTheByte) {
  const std::vector<std::pair<std::string, size_t>> cases = {
      {"ab\xFF"
       "cd",
       2},                         // never valid in UTF-8
      {"caf\xC3", 3},              // truncated at the end
      {"x\xC0\x80", 1},            // overlong NUL
      {"\xED\xA0\x80", 0},         // surrogate
      {"ok \xF4\x90\x80\x80", 3},  // beyond U+10FFFF
      {"\xE6\x97"
       "a",
       0},  // interrupted character
  };
  for (const auto& [text, offset] : cases) {
    const auto ids = tokenizer_->Encode(text);
    ASSERT_FALSE(ids.ok());
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ids.status().message(), "prompt is not valid UTF-8 at byte " + std::to_string(offset));
  }
}

TEST_F(TokenizerTest, TokenBytesOfEachKindOfPiece) {
  const std::vector<int32_t> ids = MustEncode("Once upon a time");
  ASSERT_FALSE(ids.empty());
  const int32_t time = ids.back();
  EXPECT_EQ(*tokenizer_->IdToPiece(time), "\xE2\x96\x81time");  // ▁time
  EXPECT_EQ(tokenizer_->TokenBytes(time), " time");
  EXPECT_EQ(tokenizer_->LeadingTokenBytes(time), "time");
  EXPECT_FALSE(tokenizer_->IsByteToken(time));

  EXPECT_EQ(tokenizer_->TokenBytes(ByteToken(0x0A)), "\n");
  EXPECT_EQ(tokenizer_->TokenBytes(ByteToken(0x20)), " ");
  EXPECT_EQ(tokenizer_->LeadingTokenBytes(ByteToken(0x20)), " ");  // a byte space is never dropped
  EXPECT_EQ(tokenizer_->TokenBytes(ByteToken(0xE6)), "\xE6");
  EXPECT_EQ(tokenizer_->TokenBytes(ByteToken(0x00)), std::string(1, '\0'));
  EXPECT_TRUE(tokenizer_->IsByteToken(ByteToken(0xE6)));

  EXPECT_EQ(tokenizer_->TokenBytes(kBos), "");
  EXPECT_EQ(tokenizer_->TokenBytes(kEos), "");
  // The unknown piece shows as the library's unknown surface, at the start of the text too. (Upstream's
  // default is " ⁇ "; Debian's 0.1.97 build shows the literal text " \342\201\207 " instead.)
  const std::string unknown_surface = reference_->DecodeIds({kUnk});
  EXPECT_FALSE(unknown_surface.empty());
  EXPECT_EQ(tokenizer_->TokenBytes(kUnk), unknown_surface);
  EXPECT_EQ(tokenizer_->LeadingTokenBytes(kUnk), unknown_surface);
  EXPECT_FALSE(tokenizer_->IsByteToken(kUnk));
}

TEST_F(TokenizerTest, TokenBytesAgreeWithDecodeForEveryId) {
  const std::vector<int32_t> once = MustEncode("Once");
  ASSERT_EQ(once.size(), 1u);
  const std::string once_text = tokenizer_->Decode(once);
  for (int32_t id = 0; id < tokenizer_->vocab_size(); ++id) {
    const std::string alone = tokenizer_->Decode(std::vector<int32_t>{id});
    const std::string after = tokenizer_->Decode(std::vector<int32_t>{once[0], id});
    if (tokenizer_->IsByteToken(id)) {
      if (id < ByteToken(0x80)) {
        EXPECT_EQ(alone, tokenizer_->TokenBytes(id)) << id;
      }
      continue;
    }
    EXPECT_TRUE(IsValidUtf8(tokenizer_->TokenBytes(id))) << id;
    EXPECT_EQ(alone, tokenizer_->LeadingTokenBytes(id)) << "id " << id;
    EXPECT_EQ(after, once_text + std::string(tokenizer_->TokenBytes(id))) << "id " << id;
  }
}

TEST_F(TokenizerTest, EncodesAndDecodesFromManyThreads) {
  std::vector<std::vector<int32_t>> expected;
  std::vector<std::string> decoded;
  for (const std::string& text : Texts()) {
    expected.push_back(MustEncode(text));
    decoded.push_back(tokenizer_->Decode(expected.back()));
  }
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (size_t i = 0; i < Texts().size(); ++i) {
          const auto ids = tokenizer_->Encode(Texts()[i]);
          if (!ids.ok() || *ids != expected[i]) ++failures[t];
          if (tokenizer_->Decode(expected[i]) != decoded[i]) ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST_F(TokenizerTest, LoadsFromAModelDirectory) {
  TempDir dir;
  std::filesystem::copy_file(model_path_, dir.path() / "tokenizer.model");
  const auto tokenizer = LoadTokenizer(dir.path());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 512);
  EXPECT_EQ((*tokenizer)->Encode("Once upon a time").value(), MustEncode("Once upon a time"));
}

void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_F(TokenizerTest, CorruptModelFilesAreErrorsNamingTheFile) {
  TempDir dir;
  std::ifstream in(model_path_, std::ios::binary);
  const std::string model((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<std::pair<std::string, std::string>> files = {
      {"garbage.model", "this is not a protobuf\n"},
      {"empty.model", ""},
      {"truncated.model", model.substr(0, model.size() / 2)},
      {"head.model", model.substr(0, 2000)},
      // Found by tests/fuzz (fuzz_sentencepiece): a piece that starts with NUL made libsentencepiece throw
      // (darts-clone's "zero-length key") out of Load, which killed the process.
      {"nul-piece.model", std::string("\x0a\x0e\x0a\x05\x3c\x75\x6e\x6b\x3b\x15\x00\x00\x00\x00\x18\x02\x0a\x0c\x0a\x03"
                                      "\x00\x38\x3e\x15\x00\x00\x00\x00\x20\x00\x28\x01",
                                      32)},
      // Found by tests/fuzz (fuzz_sentencepiece): "<s>" as a normal piece and again as a control one loads,
      // and then streams differently from Decode.
      {"twice.model",
       std::string("\x0a\x0e\x0a\x05\x3c\x75\x6e\x6b\x3e\x15\x00\x00\x00\x00\x18\x02\x0a\x0c\x0a\x03\x3c\x73\x3e\x15"
                   "\x00\x00\x00\x00\x18\x3e\x15\x00\x00\x00\x00\x18\x02\x0a\x0c\x0a\x03\x3c\x73\x3e\x15\x00\x00\x00"
                   "\x00\x18\x03\x0a\x0d\x0a\x04\x3c\x2f\x73\x3e\x15\x00\x00\x00\x00\x18\x03\x0a\x0f\x0a\x06\x3c\x30"
                   "\x78\x30\x30\x3e\x38\x3e\x15\x00\x00\x30\xc1\x18\x01\x0a\x0a\x0a\x01\x6e\x15\x00\x00\x40\xc1\x18"
                   "\x01\x1a\x10\x0a\x08\x69\x64\x65\x6e\x74\x69\x74\x79\x18\x01\x20\x00\x28\x01",
                   115)},
  };
  for (const auto& [name, bytes] : files) {
    WriteFile(dir.path() / name, bytes);
    const auto tokenizer = LoadSentencePieceTokenizer(dir.path() / name);
    ASSERT_FALSE(tokenizer.ok()) << name;
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument) << tokenizer.status();
    EXPECT_NE(tokenizer.status().message().find((dir.path() / name).string()), absl::string_view::npos)
        << tokenizer.status();
  }
}

TEST(TokenizerLoadTest, MissingFilesAreNotFound) {
  TempDir dir;
  const auto file = LoadSentencePieceTokenizer(dir.path() / "absent.model");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find("absent.model"), absl::string_view::npos) << file.status();

  const auto directory = LoadTokenizer(dir.path());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(directory.status().message().find(dir.path().string()), absl::string_view::npos) << directory.status();
}

TEST(TokenizerLoadTest, TokenizerJsonWithoutAModelIsAnErrorNamingTheFile) {
  TempDir dir;
  WriteFile(dir.path() / "tokenizer.json", "{}");
  const auto tokenizer = LoadTokenizer(dir.path());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find("tokenizer.json"), absl::string_view::npos) << tokenizer.status();
}

}  // namespace
}  // namespace nibble
