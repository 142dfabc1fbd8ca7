// Perplexity of the real stories260K model on ../shared/data/tinystories-dev-50.txt with the protocol of
// ../shared/README.md, against the independent reference figures given there (numpy forward): 21,725
// predicted tokens, mean NLL 1.407563 nats (perplexity 4.0860), within 0.05%.
#include "engine/tools/perplexity.h"

#include <gtest/gtest.h>

#include "engine/base/file_io.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "engine/tools/documents.h"
#include "engine/tools/llama2c.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

TEST(PerplexityTest, Stories260kMatchesTheReference) {
  NIBBLE_REQUIRE_SHARED(checkpoint, "models/stories260K/stories260K.bin");
  NIBBLE_REQUIRE_SHARED(tokenizer_file, "models/stories260K/tok512.model");
  NIBBLE_REQUIRE_SHARED(text, "data/tinystories-dev-50.txt");
  auto host = ReadLlama2c(checkpoint);
  ASSERT_TRUE(host.ok()) << host.status();
  auto tokenizer = LoadSentencePieceTokenizer(tokenizer_file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto backend = MakeCpuBackend();
  ModelOptions options;
  options.max_step_tokens = 2048;
  options.max_seqs = 8;
  auto model = Model::Create(*backend, *host, options);
  ASSERT_TRUE(model.ok()) << model.status();

  const auto corpus = ReadTextFile(text);
  ASSERT_TRUE(corpus.ok());
  const auto documents = TokenizeDocuments(**tokenizer, SplitDocuments(*corpus, "<|endoftext|>"));
  ASSERT_TRUE(documents.ok()) << documents.status();
  const auto result = Perplexity(**model, *documents, 512);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->documents, 50);
  EXPECT_EQ(result->predicted_tokens, 21725);
  EXPECT_NEAR(result->mean_nll, 1.407563, 1.407563 * 0.0005);
  EXPECT_NEAR(result->perplexity, 4.0860, 4.0860 * 0.0005);
}

TEST(PerplexityTest, RefusesUnusableContexts) {
  auto backend = MakeCpuBackend();
  NIBBLE_REQUIRE_SHARED(checkpoint, "models/stories260K/stories260K.bin");
  auto host = ReadLlama2c(checkpoint);
  ASSERT_TRUE(host.ok());
  auto model = Model::Create(*backend, *host, ModelOptions{.max_step_tokens = 256, .max_seqs = 2});
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(Perplexity(**model, {{1, 2, 3}}, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Perplexity(**model, {{1, 2, 3}}, 512).status().code(), absl::StatusCode::kInvalidArgument);  // > step
  EXPECT_EQ(Perplexity(**model, {{1}}, 128).status().code(), absl::StatusCode::kInvalidArgument);        // no window
}

}  // namespace
}  // namespace nibble
