// llama2.c's tokenizer.bin, converted into a SentencePiece model (llama2c_tokenizer.h), against libsentencepiece
// on the SentencePiece model it was exported from: stories260K's tok512.bin must become tok512.model's vocabulary
// and tokenize the TinyStories dev text exactly as tok512.model does. Then malformed files, each refused naming
// the file and the token at fault.
#include "engine/tools/llama2c_tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cstring>
#include <limits>

#include "absl/strings/str_split.h"
#include "engine/base/file_io.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tools/documents.h"
#include "engine/tools/llama2c.h"
#include "tests/support/sentencepiece_reference.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using ::nibble::testing::SentencePieceReference;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

template <typename T>
std::string Raw(T value) {
  return std::string(reinterpret_cast<const char*>(&value), sizeof(T));
}

// A tokenizer.bin as llama2.c's tokenizer.py writes it.
std::string TokenizerBin(int32_t max_token_length, const std::vector<std::pair<float, std::string>>& tokens) {
  std::string file = Raw(max_token_length);
  for (const auto& [score, bytes] : tokens) file += Raw(score) + Raw(static_cast<int32_t>(bytes.size())) + bytes;
  return file;
}

// Where each record of a tokenizer.bin starts (read here independently of the converter).
std::vector<size_t> RecordOffsets(const std::string& file) {
  std::vector<size_t> offsets;
  for (size_t offset = 4; offset < file.size();) {
    offsets.push_back(offset);
    int32_t length = 0;
    std::memcpy(&length, file.data() + offset + 4, 4);
    offset += 8 + length;
  }
  return offsets;
}

// --- stories260K: tok512.bin against tok512.model ---------------------------------------------------------

class Tok512BinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto bin = testing::SharedFile("models/stories260K/stories260K.bin");
    const auto tokenizer_bin = testing::SharedFile("models/stories260K/tok512.bin");
    const auto tokenizer_model = testing::SharedFile("models/stories260K/tok512.model");
    const auto text = testing::SharedFile("data/tinystories-dev-50.txt");
    if (!bin || !tokenizer_bin || !tokenizer_model || !text) {
      GTEST_SKIP() << "stories260K (with tok512.bin and tok512.model) or the dev text not found (set NIBBLE_SHARED)";
    }
    tokenizer_bin_ = *tokenizer_bin;
    tokenizer_model_ = *tokenizer_model;
    text_ = ReadTextFile(*text).value();
    const absl::Status imported = ImportLlama2c(*bin, tokenizer_bin_, dir_.path());
    ASSERT_TRUE(imported.ok()) << imported;
  }

  testing::TempDir dir_;
  std::filesystem::path tokenizer_bin_, tokenizer_model_;
  std::string text_;
};

TEST_F(Tok512BinTest, ImportWritesTok512ModelsVocabulary) {
  const SentencePieceReference converted((dir_.path() / "tokenizer.model").string());
  const SentencePieceReference reference(tokenizer_model_.string());
  ASSERT_TRUE(converted.ok()) << converted.error();
  ASSERT_TRUE(reference.ok()) << reference.error();
  const auto got = converted.Pieces(), want = reference.Pieces();
  ASSERT_EQ(got.size(), 512u);
  ASSERT_EQ(got.size(), want.size());
  for (size_t id = 0; id < got.size(); ++id) {
    SCOPED_TRACE(id);
    EXPECT_EQ(got[id].piece, want[id].piece);
    EXPECT_EQ(std::bit_cast<uint32_t>(got[id].score), std::bit_cast<uint32_t>(want[id].score));  // -0.0 too
    EXPECT_EQ(got[id].unknown, want[id].unknown);
    EXPECT_EQ(got[id].control, want[id].control);
    EXPECT_EQ(got[id].byte, want[id].byte);
  }
  EXPECT_EQ(converted.unk_id(), 0);
  EXPECT_EQ(converted.bos_id(), 1);
  EXPECT_EQ(converted.eos_id(), 2);
  // tok512.model was trained with SentencePiece's default remove_extra_whitespaces; no piece holds "▁▁".
  const auto model = ConvertLlama2cTokenizer(ReadTextFile(tokenizer_bin_).value(), tokenizer_bin_.string(), 512);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(model->remove_extra_whitespaces);
}

// Every line, every story and the whole dev text, plus texts with tabs, whitespace runs, newlines and characters
// outside the vocabulary (byte fallback), tokenized by the imported model directory's tokenizer (what `nibble
// generate` loads) and by libsentencepiece on tok512.model; decoding the ids gives tok512.model's text back.
TEST_F(Tok512BinTest, TokenizesTheDevTextExactlyAsTok512Model) {
  const SentencePieceReference reference(tokenizer_model_.string());
  ASSERT_TRUE(reference.ok()) << reference.error();
  const auto tokenizer = LoadTokenizer(dir_.path());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  std::vector<std::string> texts = absl::StrSplit(text_, '\n');
  const size_t lines = texts.size();
  const std::vector<std::string> stories = SplitDocuments(text_, "<|endoftext|>");
  ASSERT_EQ(stories.size(), 50u);
  texts.insert(texts.end(), stories.begin(), stories.end());
  texts.push_back(text_);
  texts.insert(texts.end(), {"  leading, trailing  and   inner runs  ", "tab\tand\nnewline\r\n", " ", "",
                             "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 100%"});

  int round_trips = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string& text = texts[i];
    SCOPED_TRACE(i < lines ? "line " + std::to_string(i + 1) : "text " + std::to_string(i));
    const std::vector<int> want = reference.EncodeAsIds(text);
    const auto got = (*tokenizer)->Encode(text);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(std::vector<int>(got->begin(), got->end()), want) << text.substr(0, 80);
    const std::string decoded = (*tokenizer)->Decode(*got);
    EXPECT_EQ(decoded, reference.DecodeIds(want));
    // The text comes back as it was unless it has spaces the normalizer removes (leading, trailing, repeated).
    const bool extra_spaces = text.starts_with(' ') || text.ends_with(' ') || text.find("  ") != std::string::npos;
    EXPECT_EQ(decoded == text, !extra_spaces) << text.substr(0, 80);
    round_trips += decoded == text;
  }
  // 14 dev lines end in a space (one is a lone space) and one holds a double space, as do its story and the whole
  // text; two of the added texts have such spaces too.
  EXPECT_EQ(round_trips, static_cast<int>(texts.size()) - 15 - 2 - 2);
}

// The tokenizer check runs before anything is written: a tokenizer.bin of another vocabulary size than the
// checkpoint's is refused naming both.
TEST_F(Tok512BinTest, VocabularyOfAnotherSizeThanTheCheckpointsIsRefused) {
  testing::TempDir dir;
  const auto small = dir.path() / "small.bin";
  // dim 8, hidden 12, 2 layers, 2 heads, 1 KV head, vocab 16 (shared), seq_len 3.
  const std::array<int32_t, 7> header = {8, 12, 2, 2, 1, 16, 3};
  const size_t floats = 16 * 8 + 2 * 8 + 2 * 64 + 2 * 32 + 2 * 32 + 2 * 64 + 2 * 8 + 3 * 2 * 96 + 8 + 2 * 3 * 2;
  ASSERT_TRUE(WriteFileContents(
                  small, std::string(reinterpret_cast<const char*>(header.data()), 28) + std::string(floats * 4, '\0'))
                  .ok());
  ASSERT_TRUE(ReadLlama2c(small).ok());
  const absl::Status status = ImportLlama2c(small, tokenizer_bin_, dir.path() / "out");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr(tokenizer_bin_.string() + ": "),
                                      HasSubstr("bytes follow token 15, the last of the model's vocab_size 16")));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out"));
}

// --- Whitespace runs: kept when the vocabulary has a piece for them -----------------------------------------

// A vocabulary without byte pieces: <unk>, BOS, EOS, then " a", "  " (or "ab"), " ", "a", "b".
std::string TinyTokenizerBin(bool with_space_run) {
  return TokenizerBin(6, {{0.0f, "<unk>"},
                          {0.0f, "\n<s>\n"},
                          {0.0f, "\n</s>\n"},
                          {-1.0f, " a"},
                          {-2.0f, with_space_run ? "  " : "ab"},
                          {-3.0f, " "},
                          {-4.0f, "a"},
                          {-5.0f, "b"}});
}

TEST(Llama2cTokenizerTest, SpaceRunsAreKeptOnlyWhereTheVocabularyHasAPieceForThem) {
  testing::TempDir dir;
  for (const bool with_space_run : {true, false}) {
    SCOPED_TRACE(with_space_run);
    const auto model = ConvertLlama2cTokenizer(TinyTokenizerBin(with_space_run), "tiny.bin", 8);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(model->remove_extra_whitespaces, !with_space_run);
    const auto path = dir.path() / (with_space_run ? "keep.model" : "collapse.model");
    ASSERT_TRUE(WriteFileContents(path, SerializeSentencePieceBpeModel(*model)).ok());
    const SentencePieceReference sentencepiece(path.string());
    ASSERT_TRUE(sentencepiece.ok()) << sentencepiece.error();
    EXPECT_EQ(sentencepiece.bos_id(), 1);
    EXPECT_EQ(sentencepiece.eos_id(), 2);
    if (with_space_run) {
      EXPECT_THAT(sentencepiece.EncodeAsPieces("a  b"), ElementsAre("\xE2\x96\x81"
                                                                    "a",
                                                                    "\xE2\x96\x81\xE2\x96\x81", "b"));
      EXPECT_EQ(sentencepiece.DecodeIds(sentencepiece.EncodeAsIds("a  b")), "a  b");
    } else {
      EXPECT_THAT(sentencepiece.EncodeAsPieces("  a  b "), ElementsAre("\xE2\x96\x81"
                                                                       "a",
                                                                       "\xE2\x96\x81", "b"));
    }
  }
}

// --- Malformed files ----------------------------------------------------------------------------------------

class MalformedTokenizerBinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto file = testing::SharedFile("models/stories260K/tok512.bin");
    if (!file) GTEST_SKIP() << "tok512.bin not found (set NIBBLE_SHARED)";
    good_ = ReadTextFile(*file).value();
    offsets_ = RecordOffsets(good_);
    ASSERT_EQ(offsets_.size(), 512u);
    ASSERT_TRUE(ConvertLlama2cTokenizer(good_, kName, 512).ok());
  }

  // The message converting `contents` fails with (InvalidArgument naming the file).
  std::string Error(const std::string& contents, int64_t vocab_size = 512) {
    const auto converted = ConvertLlama2cTokenizer(contents, kName, vocab_size);
    if (converted.ok()) return "converted";
    EXPECT_EQ(converted.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(converted.status().message(), HasSubstr(std::string(kName) + ": "));
    return std::string(converted.status().message());
  }
  std::string Token(int index) const {
    return "token " + std::to_string(index) + " (at byte " + std::to_string(offsets_[index]) + ")";
  }
  int32_t Length(int index) const {
    int32_t length = 0;
    std::memcpy(&length, good_.data() + offsets_[index] + 4, 4);
    return length;
  }
  // The file with token `index`'s score or length replaced.
  std::string WithScore(int index, float score) const {
    std::string file = good_;
    file.replace(offsets_[index], 4, Raw(score));
    return file;
  }
  std::string WithLength(int index, int32_t length) const {
    std::string file = good_;
    file.replace(offsets_[index] + 4, 4, Raw(length));
    return file;
  }
  // The file with token `index`'s bytes replaced by as many others.
  std::string WithBytes(int index, const std::string& bytes) const {
    std::string file = good_;
    EXPECT_EQ(bytes.size(), static_cast<size_t>(Length(index)));
    file.replace(offsets_[index] + 8, Length(index), bytes);
    return file;
  }

  static constexpr char kName[] = "/models/tok512.bin";
  std::string good_;
  std::vector<size_t> offsets_;
};

TEST_F(MalformedTokenizerBinTest, TruncatedFiles) {
  EXPECT_THAT(Error(good_.substr(0, offsets_[100] + 10)),
              HasSubstr(Token(100) + " is cut off: it has length " + std::to_string(Length(100)) +
                        ", but only 2 bytes are left"));
  EXPECT_THAT(Error(good_.substr(0, offsets_[200] + 5)),
              HasSubstr(Token(200) + " is cut off: 5 bytes are left of its 8-byte score and length"));
  EXPECT_THAT(Error(good_.substr(0, offsets_[300])),
              HasSubstr("the file ends after 300 tokens, but the model's vocab_size is 512"));
  EXPECT_THAT(Error(good_.substr(0, 2)), HasSubstr("2 bytes is too short for tokenizer.bin's max_token_length"));
}

TEST_F(MalformedTokenizerBinTest, VocabularySizeMustBeTheModels) {
  EXPECT_THAT(Error(good_, 600), HasSubstr("the file ends after 512 tokens, but the model's vocab_size is 600"));
  EXPECT_THAT(Error(good_, 500), HasSubstr(std::to_string(good_.size() - offsets_[500]) +
                                           " bytes follow token 499, the last of the model's vocab_size 500"));
}

TEST_F(MalformedTokenizerBinTest, LengthsOutsideOneToMaxTokenLength) {
  EXPECT_THAT(Error(WithLength(7, -3)), HasSubstr(Token(7) + " has length -3; it must be 1 to max_token_length (7)"));
  EXPECT_THAT(Error(WithLength(9, 8)), HasSubstr(Token(9) + " has length 8; it must be 1 to max_token_length (7)"));
  EXPECT_THAT(Error(WithLength(11, 0)), HasSubstr(Token(11) + " has length 0"));
  std::string negative_max = good_;
  negative_max.replace(0, 4, Raw(int32_t{-7}));
  EXPECT_THAT(Error(negative_max), HasSubstr("tokenizer.bin's max_token_length is -7; it must be 1 to 65536"));
}

TEST_F(MalformedTokenizerBinTest, ScoresMustBeFinite) {
  EXPECT_THAT(Error(WithScore(300, std::numeric_limits<float>::quiet_NaN())),
              HasSubstr(Token(300) + " has score nan; scores must be finite"));
  EXPECT_THAT(Error(WithScore(301, -std::numeric_limits<float>::infinity())),
              HasSubstr(Token(301) + " has score -inf"));
}

TEST_F(MalformedTokenizerBinTest, VocabulariesSentencePieceWouldRefuse) {
  // Token 260 is "he" and 264 "nd": a second "nd" repeats the first.
  EXPECT_THAT(Error(WithBytes(260, "nd")), HasSubstr("token 264 (\"nd\") repeats token 260"));
  EXPECT_THAT(Error(WithBytes(0, "<UNK>")), HasSubstr("no token is <unk>; SentencePiece needs the unknown piece"));
  EXPECT_THAT(Error(WithBytes(3, "<0x0g>")), HasSubstr("255 of the 256 byte pieces <0x00>..<0xFF> are present"));
  EXPECT_THAT(Error(WithBytes(260, std::string("h\0", 2))), HasSubstr(Token(260) + " holds a NUL byte"));
}

// Through the import: refused before anything is written, naming the file; a file that is neither format says so.
TEST_F(MalformedTokenizerBinTest, ImportRefusesBeforeWriting) {
  NIBBLE_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  testing::TempDir dir;
  const auto tokenizer = dir.path() / "tokenizer.bin";
  ASSERT_TRUE(WriteFileContents(tokenizer, WithScore(42, std::numeric_limits<float>::quiet_NaN())).ok());
  absl::Status status = ImportLlama2c(bin, tokenizer, dir.path() / "out");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(tokenizer.string() + ": token 42 (at byte " + std::to_string(offsets_[42]) +
                                          ") has score nan"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out"));

  std::string negative_max = good_;
  negative_max.replace(0, 4, Raw(int32_t{-7}));
  ASSERT_TRUE(WriteFileContents(tokenizer, negative_max).ok());
  status = ImportLlama2c(bin, tokenizer, dir.path() / "out");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(tokenizer.string() + ": not a SentencePiece model ("),
                    HasSubstr(") nor llama2.c's tokenizer.bin (whose first int32, max_token_length, would be 1 to "
                              "65536)")));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out"));
}

}  // namespace
}  // namespace nibble
