#include "tests/support/model_checks.h"

#include <gtest/gtest.h>

#include "engine/runtime/model.h"
#include "engine/serving/generation.h"
#include "engine/tools/perplexity.h"

namespace nibble::testing {

PerplexityAndGreedy MeasurePerplexityAndGreedy(Backend& backend, const HostModel& host, const Tokenizer& tokenizer,
                                               const std::vector<std::vector<int32_t>>& documents) {
  PerplexityAndGreedy measured;
  ModelOptions options;
  options.max_step_tokens = 2048;
  options.max_seqs = 8;
  auto model = Model::Create(backend, host, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return measured;
  auto result = Perplexity(**model, documents, 512);
  EXPECT_TRUE(result.ok()) << result.status();
  if (result.ok()) {
    measured.perplexity = result->perplexity;
    measured.predicted_tokens = result->predicted_tokens;
  }
  GenerationRequest generation;
  generation.prompt_token_ids = {tokenizer.bos_id()};
  generation.max_tokens = 200;
  generation.sampling.temperature = 0.0f;
  generation.stop_token_ids = {tokenizer.bos_id()};  // EOS stops it too (ignore_eos is false)
  auto generated = Generate(**model, &tokenizer, generation);
  EXPECT_TRUE(generated.ok()) << generated.status();
  if (generated.ok()) measured.greedy = generated->text;
  return measured;
}

}  // namespace nibble::testing
