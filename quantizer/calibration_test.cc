#include "quantizer/calibration.h"

#include "engine/base/file_io.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Tokenizer> StoriesTokenizer(const std::filesystem::path& tokenizer_model,
                                            const testing::TempDir& temp) {
  const auto dir = temp.path() / "tokenizer";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(tokenizer_model, dir / "tokenizer.model");
  auto tokenizer = LoadTokenizer(dir);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::move(*tokenizer);
}

TEST(CalibrationTest, TinyStoriesGivesTheReferenceBlocks) {
  NIBBLE_REQUIRE_SHARED(text, "data/tinystories-dev-50.txt");
  NIBBLE_REQUIRE_SHARED(tokenizer_model, "models/stories260K/tok512.model");
  testing::TempDir temp;
  auto tokenizer = StoriesTokenizer(tokenizer_model, temp);
  CalibrationOptions options;
  options.separator = "<|endoftext|>";
  auto set = LoadCalibration(text, *tokenizer, options);
  ASSERT_TRUE(set.ok()) << set.status();
  // The reference (issue 3): 40 of the 50 documents are at most 512 tokens, 13,910 tokens, 27 blocks of 512.
  EXPECT_EQ(set->documents, 50);
  EXPECT_EQ(set->documents_used, 40);
  EXPECT_EQ(set->tokens_used, 13910);
  ASSERT_EQ(set->blocks.size(), 27u);
  for (const auto& block : set->blocks) EXPECT_EQ(block.size(), 512u);
  EXPECT_EQ(set->blocks[0][0], tokenizer->bos_id());
  EXPECT_EQ(set->source_sha256.size(), 64u);

  options.n_samples = 3;
  options.seqlen = 128;
  auto few = LoadCalibration(text, *tokenizer, options);
  ASSERT_TRUE(few.ok()) << few.status();
  EXPECT_EQ(few->documents_used, 3);
  EXPECT_EQ(few->blocks.size(), static_cast<size_t>(few->tokens_used / 128));
}

TEST(CalibrationTest, TextThatYieldsNoBlockIsRefusedNamingTheFile) {
  NIBBLE_REQUIRE_SHARED(tokenizer_model, "models/stories260K/tok512.model");
  testing::TempDir temp;
  auto tokenizer = StoriesTokenizer(tokenizer_model, temp);
  const auto path = temp.path() / "short.txt";
  ASSERT_TRUE(WriteFileContents(path, "Once upon a time.").ok());
  auto set = LoadCalibration(path, *tokenizer, CalibrationOptions{});
  EXPECT_TRUE(absl::IsInvalidArgument(set.status()));
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("short.txt"));
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("no block"));
}

TEST(CalibrationTest, JsonlDocumentsAreReadFromTheTextField) {
  NIBBLE_REQUIRE_SHARED(tokenizer_model, "models/stories260K/tok512.model");
  testing::TempDir temp;
  auto tokenizer = StoriesTokenizer(tokenizer_model, temp);
  const auto path = temp.path() / "calib.jsonl";
  std::string lines;
  for (int i = 0; i < 20; ++i)
    lines += R"({"text": "Lily saw a big dog in the park and she was happy."})"
             "\n";
  ASSERT_TRUE(WriteFileContents(path, lines).ok());
  CalibrationOptions options;
  options.seqlen = 64;
  auto set = LoadCalibration(path, *tokenizer, options);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->documents, 20);
  EXPECT_EQ(set->documents_used, 20);
  EXPECT_EQ(set->blocks.size(), static_cast<size_t>(set->tokens_used / 64));

  ASSERT_TRUE(WriteFileContents(path, "{\"text\": 3}\n").ok());
  auto bad = LoadCalibration(path, *tokenizer, options);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("calib.jsonl"));
}

}  // namespace
}  // namespace nibble
