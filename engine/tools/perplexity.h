// Token-level perplexity of a model on tokenized documents, with the protocol of ../shared/README.md:
// each document ([BOS] + ids) is cut into consecutive windows of at most `context` tokens; a window
// predicts its tokens 1..n-1 from an empty KV cache; a last window shorter than 2 tokens is dropped.
//
// Runs on the calling thread, which must own the model for the duration (see model.h).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/runtime/model.h"

namespace nibble {

struct PerplexityResult {
  int64_t documents = 0;
  int64_t windows = 0;
  int64_t predicted_tokens = 0;
  double mean_nll = 0.0;  // nats per predicted token
  double perplexity = 0.0;
};

// `documents` hold token ids, BOS included. Several windows run per step (up to the model's step limits).
// `on_window` (optional) is called after each step with the windows done so far and the total.
absl::StatusOr<PerplexityResult> Perplexity(Model& model, const std::vector<std::vector<int32_t>>& documents,
                                            int32_t context,
                                            const std::function<void(int64_t, int64_t)>& on_window = nullptr);

}  // namespace nibble
