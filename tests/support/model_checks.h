// Whole-model checks shared by the GPU parity tests: token-level perplexity on a tokenized corpus (ctx 512)
// and the greedy text from BOS, on any backend.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/io/host_model.h"
#include "engine/runtime/backend.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble::testing {

struct PerplexityAndGreedy {
  double perplexity = 0;
  int64_t predicted_tokens = 0;
  std::string greedy;  // up to 200 tokens from BOS, stopping at EOS or a new BOS
};

// Runs `host` on `backend` over `documents` ([BOS] + tokens each). Fails the calling test on error.
PerplexityAndGreedy MeasurePerplexityAndGreedy(Backend& backend, const HostModel& host, const Tokenizer& tokenizer,
                                               const std::vector<std::vector<int32_t>>& documents);

}  // namespace nibble::testing
