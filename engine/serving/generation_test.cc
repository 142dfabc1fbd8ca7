// Offline Generate, and through it GenerationState's decisions, on stories260K and tok512 from ../shared
// (skipped where absent): text deltas, stop strings spanning tokens, stop token ids and EOS, logprobs,
// generation until the context is full, cancellation from the callback.
#include "engine/serving/generation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/backends/backend_factory.h"
#include "engine/base/utf8.h"
#include "engine/io/model_loader.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tools/llama2c.h"
#include "tests/support/serving_test_support.h"

namespace nibble {
namespace {

class GenerationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NIBBLE_REQUIRE_STORIES260K(stories);
    host_ = stories.host;
    tokenizer_ = stories.tokenizer;
    ModelOptions options;
    options.max_context = 128;
    model_ = Model::Create(*backend_, *host_, options).value();
  }

  GenerationRequest Greedy(std::string prompt, int32_t max_tokens) {
    GenerationRequest request;
    request.prompt = std::move(prompt);
    request.max_tokens = max_tokens;
    request.sampling.temperature = 0.0f;
    request.ignore_eos = true;
    return request;
  }

  // The text `tokens` add after the prompt (BOS first), as Decode shows it.
  std::string ContinuationText(const std::string& prompt, const std::vector<int32_t>& tokens) {
    std::vector<int32_t> all = {tokenizer_->bos_id()};
    const std::vector<int32_t> encoded = tokenizer_->Encode(prompt).value();
    all.insert(all.end(), encoded.begin(), encoded.end());
    const size_t prompt_text = tokenizer_->Decode(all).size();
    all.insert(all.end(), tokens.begin(), tokens.end());
    return tokenizer_->Decode(all).substr(prompt_text);
  }

  // Generate, with every event kept.
  GenerationResult Run(const GenerationRequest& request, std::vector<GenerationEvent>* events = nullptr) {
    auto result = Generate(*model_, tokenizer_.get(), request, [&](const GenerationEvent& event) {
      if (events != nullptr) events->push_back(event);
      return true;
    });
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : GenerationResult{};
  }

  std::unique_ptr<Backend> backend_ = MakeBackend(BackendKind::kCpu).value();
  std::shared_ptr<const HostModel> host_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<Model> model_;
};

TEST_F(GenerationTest, TextDeltasAreWholeCharactersAndJoinToTheDecodedOutput) {
  // From BOS alone the output starts the text.
  GenerationRequest request = Greedy("", 60);
  request.prompt_token_ids = {tokenizer_->bos_id()};
  std::vector<GenerationEvent> events;
  const GenerationResult alone = Run(request, &events);
  ASSERT_EQ(alone.tokens.size(), 60u);
  for (const GenerationEvent& event : events) EXPECT_TRUE(IsValidUtf8(event.text));
  EXPECT_EQ(alone.text, tokenizer_->Decode(alone.tokens));

  // After a text prompt the output continues it (keeping its leading space).
  const GenerationResult continued = Run(Greedy("Once upon a time", 60));
  EXPECT_EQ(continued.text, ContinuationText("Once upon a time", continued.tokens));
  EXPECT_EQ(continued.usage.prompt_tokens,
            static_cast<int32_t>(tokenizer_->Encode("Once upon a time")->size()) + 1);  // BOS added
}

TEST_F(GenerationTest, StopStringSpanningTokensCutsTheTextBeforeIt) {
  std::vector<GenerationEvent> events;
  const GenerationResult full = Run(Greedy("Once upon a time", 80), &events);
  // A stop string made of the last two characters of one token's text and the first two of the next, at
  // its first occurrence in the output; ASCII, so that characters are bytes.
  size_t boundary = 0;
  std::string stop;
  size_t tokens_through_stop = 0;
  for (size_t e = 0; e + 1 < events.size() && stop.empty(); ++e) {
    boundary += events[e].text.size();
    const std::string& before = events[e].text;
    const std::string& after = events[e + 1].text;
    if (before.size() < 2 || after.size() < 2) continue;
    const std::string candidate = before.substr(before.size() - 2) + after.substr(0, 2);
    const bool ascii = std::all_of(candidate.begin(), candidate.end(), [](char c) { return c > 0; });
    if (ascii && full.text.find(candidate) == boundary - 2) {
      stop = candidate;
      tokens_through_stop = e + 2;  // one event per token here: no byte tokens held back
    }
  }
  ASSERT_FALSE(stop.empty()) << "no suitable token boundary in: " << full.text;

  GenerationRequest request = Greedy("Once upon a time", 80);
  request.stop = {"a stop string that never occurs", stop};
  const GenerationResult stopped = Run(request);
  EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
  EXPECT_EQ(stopped.text, full.text.substr(0, boundary - 2));
  // The token that completed the stop string is the last one sent.
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + tokens_through_stop));
}

TEST_F(GenerationTest, StopTokensEndGenerationWithoutBeingSent) {
  const GenerationResult full = Run(Greedy("Once upon a time", 40));
  // The token at index 6, where it first occurs.
  const size_t index = std::find(full.tokens.begin(), full.tokens.end(), full.tokens[6]) - full.tokens.begin();
  GenerationRequest request = Greedy("Once upon a time", 40);
  request.stop_token_ids = {full.tokens[index]};
  const GenerationResult stopped = Run(request);
  EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + index));
  EXPECT_EQ(stopped.usage.completion_tokens, static_cast<int32_t>(index));
  EXPECT_EQ(stopped.text, ContinuationText("Once upon a time", stopped.tokens));
}

// stories260K ends its stories with BOS, not EOS: a synthetic model, sampled, says EOS now and then.
TEST(GenerationWithoutTokenizerTest, EosStopsGenerationUnlessIgnored) {
  const auto synthetic = testing::SynthTinyModel(3);
  auto backend = MakeBackend(BackendKind::kCpu).value();
  auto model = Model::Create(*backend, *synthetic, ModelOptions{}).value();
  const int32_t eos = synthetic->config.eos_token_ids.front();
  for (uint64_t seed = 0; seed < 50; ++seed) {
    GenerationRequest request;
    request.prompt_token_ids = {synthetic->config.bos_token_id};
    request.max_tokens = 100;
    request.sampling.seed = seed;
    request.ignore_eos = true;
    const GenerationResult ignored = Generate(*model, nullptr, request).value();
    const auto at = std::find(ignored.tokens.begin(), ignored.tokens.end(), eos);
    if (at == ignored.tokens.end()) continue;
    EXPECT_EQ(ignored.finish_reason, FinishReason::kLength);
    request.ignore_eos = false;
    const GenerationResult stopped = Generate(*model, nullptr, request).value();
    EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
    EXPECT_EQ(stopped.tokens, std::vector<int32_t>(ignored.tokens.begin(), at));
    return;
  }
  FAIL() << "no seed tried makes the synthetic model say EOS";
}

// An imported stories260K ends its story with BOS: its generation_config.json makes that an end token, so
// generation stops there (finish reason stop) instead of running on into the next story up to max_tokens. The
// same whether the import was given tok512.model or llama2.c's tok512.bin.
TEST(ImportedLlama2cGenerationTest, BosEndsTheStory) {
  NIBBLE_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  NIBBLE_REQUIRE_SHARED(tokenizer_model, "models/stories260K/tok512.model");
  NIBBLE_REQUIRE_SHARED(tokenizer_bin, "models/stories260K/tok512.bin");
  for (const std::filesystem::path& tokenizer_file : {tokenizer_model, tokenizer_bin}) {
    SCOPED_TRACE(tokenizer_file);
    testing::TempDir dir;
    ASSERT_TRUE(ImportLlama2c(bin, tokenizer_file, dir.path()).ok());
    const auto host = LoadHostModel(dir.path());
    ASSERT_TRUE(host.ok()) << host.status();
    const auto tokenizer = LoadTokenizer(dir.path());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    const int32_t bos = (*tokenizer)->bos_id();
    EXPECT_THAT((*tokenizer)->eos_ids(), ::testing::ElementsAre(2, bos));
    const auto backend = MakeBackend(BackendKind::kCpu).value();
    const auto model = Model::Create(*backend, *host, ModelOptions{}).value();

    GenerationRequest request;
    request.prompt = "Once upon a time";
    // No max_tokens: up to the whole context (seq_len 512).
    request.sampling.temperature = 0.0f;
    request.ignore_eos = true;
    const GenerationResult full = Generate(*model, tokenizer->get(), request).value();
    ASSERT_EQ(full.finish_reason, FinishReason::kLength);
    const auto first_bos = std::find(full.tokens.begin(), full.tokens.end(), bos);
    ASSERT_NE(first_bos, full.tokens.end()) << "greedy stories260K is expected to end its story: " << full.text;

    request.ignore_eos = false;
    const GenerationResult stopped = Generate(*model, tokenizer->get(), request).value();
    EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
    EXPECT_EQ(stopped.tokens, std::vector<int32_t>(full.tokens.begin(), first_bos));
    EXPECT_THAT(stopped.text, ::testing::StartsWith(", there was a little girl named Lily."));
  }
}

TEST_F(GenerationTest, LogprobsReportTheChosenTokenAndTheMostLikely) {
  GenerationRequest request = Greedy("Once upon a time", 10);
  request.sampling.num_logprobs = 5;
  const GenerationResult result = Run(request);
  ASSERT_EQ(result.logprobs.size(), result.tokens.size());
  for (size_t i = 0; i < result.tokens.size(); ++i) {
    const SampledToken& token = result.logprobs[i];
    EXPECT_EQ(token.token, result.tokens[i]);
    ASSERT_EQ(token.top_logprobs.size(), 5u);
    EXPECT_EQ(token.top_logprobs.front().first, token.token);  // greedy without penalties: the most likely
    EXPECT_FLOAT_EQ(token.top_logprobs.front().second, token.logprob);
    for (size_t k = 1; k < 5; ++k) EXPECT_LE(token.top_logprobs[k].second, token.top_logprobs[k - 1].second);
  }
}

TEST_F(GenerationTest, WithoutMaxTokensGenerationFillsTheContext) {
  GenerationRequest request = Greedy("Once upon a time", 1);
  request.max_tokens.reset();
  const GenerationResult result = Run(request);
  EXPECT_EQ(result.finish_reason, FinishReason::kLength);
  EXPECT_EQ(result.usage.prompt_tokens + result.usage.completion_tokens, 128);
}

TEST_F(GenerationTest, ReturningFalseFromTheCallbackCancels) {
  int events = 0;
  auto result = Generate(*model_, tokenizer_.get(), Greedy("Once upon a time", 50),
                         [&](const GenerationEvent&) { return ++events < 3; });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(result->tokens.size(), 3u);
  EXPECT_EQ(model_->kv_pool()->usage(), 0.0);
}

TEST_F(GenerationTest, InvalidRequestIsRefused) {
  GenerationRequest request = Greedy("Once upon a time", 10);
  request.sampling.top_p = 2.0f;
  auto result = Generate(*model_, tokenizer_.get(), request);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), ::testing::HasSubstr("top_p"));
}

}  // namespace
}  // namespace nibble
