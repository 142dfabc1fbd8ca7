// Whole models on the CUDA backend against the CPU backend: logits of synthetic dense and AWQ models step by
// step (prefill, then decode steps, the later ones replayed from captured CUDA graphs), and stories260K's
// perplexity on ../shared/data/tinystories-dev-50.txt within 0.5% of the CPU's, with both greedy texts
// printed, and a Mistral-shaped model's sliding window. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/base/file_io.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/serving/generation.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "engine/tools/documents.h"
#include "engine/tools/llama2c.h"
#include "engine/tools/perplexity.h"
#include "engine/tools/synth.h"
#include "tests/support/model_checks.h"
#include "tests/support/shared_data.h"
#include "tests/support/sliding_window_model.h"

namespace nibble {
namespace {

using testing::RelativeError;

class ModelParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA GPU visible: skipping GPU model parity tests";
    auto cuda = MakeCudaBackend(0);
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(*cuda);
  }

  std::vector<float> Logits(Model& model, const StepBatch& step) {
    auto logits = model.Forward(step);
    EXPECT_TRUE(logits.ok()) << logits.status();
    std::vector<float> values(static_cast<size_t>(logits->numel()));
    EXPECT_TRUE(model.backend().CopyToHost(*logits, values.data()).ok());
    return values;
  }

  // Two sequences: prefill (all logits), then `decode_steps` steps of one token each (greedy from the CPU's
  // logits, fed to both backends), comparing logits at every step.
  void CheckModel(const HostModel& host, int decode_steps) {
    ModelOptions options;
    options.max_step_tokens = 256;
    options.max_seqs = 4;
    options.max_context = 256;
    auto cpu_model = Model::Create(*cpu_, host, options);
    auto cuda_model = Model::Create(*cuda_, host, options);
    ASSERT_TRUE(cpu_model.ok() && cuda_model.ok());
    const int64_t vocab = host.config.vocab_size;
    std::vector<std::vector<int32_t>> prompts = {{1, 17, 200, 33, 5, 90, 401, 12, 77}, {1, 300, 4}};
    std::vector<KvSequence> cpu_seqs, cuda_seqs;
    StepBatch prefill;
    for (auto& prompt : prompts) {
      cpu_seqs.emplace_back((*cpu_model)->kv_pool());
      cuda_seqs.emplace_back((*cuda_model)->kv_pool());
      ASSERT_TRUE(cpu_seqs.back().Reserve(prompt.size() + decode_steps).ok());
      ASSERT_TRUE(cuda_seqs.back().Reserve(prompt.size() + decode_steps).ok());
    }
    auto step_for = [&](std::vector<KvSequence>& seqs, const std::vector<std::vector<int32_t>>& tokens,
                        const std::vector<int32_t>& positions, StepBatch::Logits logits) {
      StepBatch step;
      for (size_t s = 0; s < tokens.size(); ++s) step.AddSequence(tokens[s], positions[s], seqs[s].blocks(), logits);
      return step;
    };
    std::vector<int32_t> positions = {0, 0};
    const std::vector<float> want =
        Logits(**cpu_model, step_for(cpu_seqs, prompts, positions, StepBatch::Logits::kAll));
    const std::vector<float> got =
        Logits(**cuda_model, step_for(cuda_seqs, prompts, positions, StepBatch::Logits::kAll));
    EXPECT_LT(RelativeError(got, want), 1e-2) << "prefill";
    std::vector<std::vector<int32_t>> next = {{prompts[0].back()}, {prompts[1].back()}};
    positions = {static_cast<int32_t>(prompts[0].size()), static_cast<int32_t>(prompts[1].size())};
    std::vector<float> last_want(want.end() - 2 * vocab, want.end());
    // The last prefill rows of each sequence: rows 8 and 11.
    std::copy(want.begin() + 8 * vocab, want.begin() + 9 * vocab, last_want.begin());
    std::copy(want.begin() + 11 * vocab, want.begin() + 12 * vocab, last_want.begin() + vocab);
    for (int i = 0; i < decode_steps; ++i) {
      for (int s = 0; s < 2; ++s) {
        const auto row = last_want.begin() + s * vocab;
        next[s] = {static_cast<int32_t>(std::max_element(row, row + vocab) - row)};
      }
      last_want = Logits(**cpu_model, step_for(cpu_seqs, next, positions, StepBatch::Logits::kLast));
      const std::vector<float> decoded =
          Logits(**cuda_model, step_for(cuda_seqs, next, positions, StepBatch::Logits::kLast));
      EXPECT_LT(RelativeError(decoded, last_want), 1e-2) << "decode step " << i << (i >= 2 ? " (replayed graph)" : "");
      for (int32_t& p : positions) ++p;
    }
  }

  // One sequence of `prompt` on both models: prefill, then `decode_steps` greedy steps (tokens from the CPU's
  // logits), comparing the CUDA logits of every decode step with the CPU's.
  void CheckSequence(Model& cpu_model, Model& cuda_model, const std::vector<int32_t>& prompt, int decode_steps,
                     const std::string& what) {
    KvSequence cpu_seq(cpu_model.kv_pool());
    KvSequence cuda_seq(cuda_model.kv_pool());
    ASSERT_TRUE(cpu_seq.Reserve(prompt.size() + decode_steps).ok());
    ASSERT_TRUE(cuda_seq.Reserve(prompt.size() + decode_steps).ok());
    StepBatch cpu_step;
    cpu_step.AddSequence(prompt, 0, cpu_seq.blocks(), StepBatch::Logits::kLast);
    StepBatch cuda_step;
    cuda_step.AddSequence(prompt, 0, cuda_seq.blocks(), StepBatch::Logits::kLast);
    std::vector<float> want = Logits(cpu_model, cpu_step);
    Logits(cuda_model, cuda_step);
    int32_t position = static_cast<int32_t>(prompt.size());
    for (int i = 0; i < decode_steps; ++i, ++position) {
      const int32_t token[] = {static_cast<int32_t>(std::max_element(want.begin(), want.end()) - want.begin())};
      StepBatch cpu_decode;
      cpu_decode.AddSequence(token, position, cpu_seq.blocks(), StepBatch::Logits::kLast);
      StepBatch cuda_decode;
      cuda_decode.AddSequence(token, position, cuda_seq.blocks(), StepBatch::Logits::kLast);
      want = Logits(cpu_model, cpu_decode);
      EXPECT_LT(RelativeError(Logits(cuda_model, cuda_decode), want), 1e-2)
          << what << ", decode step " << i << " at position " << position;
    }
  }

  std::unique_ptr<Backend> cpu_ = MakeCpuBackend();
  std::unique_ptr<Backend> cuda_;
};

// A decode step replays the graph captured for its batch size and context length. When a longer context later
// makes the backend's scratch (the decode attention's per-partition partials) grow, a new, shorter sequence
// replays a graph captured before the growth: it must still find the memory it was captured with (seen on the
// H200: nibble-server failed with an illegal address once requests joined a batch whose contexts had grown).
TEST_F(ModelParityTest, StepsReplayedAfterTheScratchGrewMatchTheCpu) {
  auto host = SynthesizeModel("tiny", 5);
  ASSERT_TRUE(host.ok()) << host.status();
  ModelOptions options;
  options.max_step_tokens = 256;
  options.max_seqs = 2;
  options.max_context = 256;
  auto cpu_model = Model::Create(*cpu_, *host, options);
  auto cuda_model = Model::Create(*cuda_, *host, options);
  ASSERT_TRUE(cpu_model.ok() && cuda_model.ok());
  std::vector<int32_t> prompt(70);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + (i * 37) % 250);
  // Contexts 70 -> 230: decode graphs captured for 2, 3 and 4 partitions of 64 positions; the partials grow.
  CheckSequence(**cpu_model, **cuda_model, prompt, 160, "long sequence");
  // Contexts 70 -> 80 again: replays the 2-partition graph captured before the growth.
  CheckSequence(**cpu_model, **cuda_model, prompt, 10, "short sequence after it");
}

TEST_F(ModelParityTest, SyntheticDenseModel) {
  auto host = SynthesizeModel("tiny", 3);
  ASSERT_TRUE(host.ok()) << host.status();
  CheckModel(*host, 6);
}

TEST_F(ModelParityTest, SyntheticAwqModels) {
  for (int group : {32, 64}) {
    auto host = SynthesizeQuantizedModel("tiny", 4, group);
    ASSERT_TRUE(host.ok()) << host.status();
    CheckModel(*host, 6);
  }
}

// Mistral's sliding window (8) on a small Mistral-shaped model: 40 positions (prefill 24, then 16 decode steps,
// the later ones replayed graphs) against the CPU with the window, and clearly apart from the CUDA logits of the
// same weights without it from position 8 on (before it, every position sees all of its keys either way).
TEST_F(ModelParityTest, MistralSlidingWindowMatchesTheCpu) {
  auto windowed = testing::SyntheticMistral(8, 7);
  auto full = testing::SyntheticMistral(std::nullopt, 7);
  ASSERT_TRUE(windowed.ok() && full.ok());
  std::vector<int32_t> tokens(40);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(1 + (i * 53) % 500);
  for (int32_t prefill : {24, 1}) {
    auto want = testing::LogitsAtEveryPosition(*cpu_, *windowed, tokens, prefill);
    auto got = testing::LogitsAtEveryPosition(*cuda_, *windowed, tokens, prefill);
    auto unwindowed = testing::LogitsAtEveryPosition(*cuda_, *full, tokens, prefill);
    ASSERT_TRUE(want.ok() && got.ok() && unwindowed.ok()) << want.status() << got.status() << unwindowed.status();
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string step = i < static_cast<size_t>(prefill) ? "prefill" : "decode";
      const double error = RelativeError((*got)[i], (*want)[i]);
      EXPECT_LT(error, 1e-2) << step << ", position " << i;
      if (i >= 8) {
        EXPECT_GT(RelativeError((*unwindowed)[i], (*want)[i]), 4 * error)
            << step << ", position " << i << ": the window must make a difference";
      }
    }
  }
}

TEST_F(ModelParityTest, Stories260kPerplexityAndGreedyText) {
  NIBBLE_REQUIRE_SHARED(checkpoint, "models/stories260K/stories260K.bin");
  NIBBLE_REQUIRE_SHARED(tokenizer_file, "models/stories260K/tok512.model");
  NIBBLE_REQUIRE_SHARED(text_file, "data/tinystories-dev-50.txt");
  auto host = ReadLlama2c(checkpoint);
  auto tokenizer = LoadSentencePieceTokenizer(tokenizer_file);
  ASSERT_TRUE(host.ok() && tokenizer.ok());
  const auto corpus = ReadTextFile(text_file);
  ASSERT_TRUE(corpus.ok());
  const auto tokenized = TokenizeDocuments(**tokenizer, SplitDocuments(*corpus, "<|endoftext|>"));
  ASSERT_TRUE(tokenized.ok());
  const std::vector<std::vector<int32_t>>& documents = *tokenized;
  const testing::PerplexityAndGreedy cpu = testing::MeasurePerplexityAndGreedy(*cpu_, *host, **tokenizer, documents);
  const testing::PerplexityAndGreedy cuda = testing::MeasurePerplexityAndGreedy(*cuda_, *host, **tokenizer, documents);
  EXPECT_EQ(cpu.predicted_tokens, 21725);
  EXPECT_EQ(cuda.predicted_tokens, 21725);
  std::cout << "stories260K perplexity: cpu " << cpu.perplexity << ", cuda " << cuda.perplexity << "\n"
            << "greedy (cpu):  " << cpu.greedy << "\ngreedy (cuda): " << cuda.greedy << "\n";
  EXPECT_NEAR(cuda.perplexity, cpu.perplexity, cpu.perplexity * 0.005);
}

}  // namespace
}  // namespace nibble
