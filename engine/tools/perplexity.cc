#include "engine/tools/perplexity.h"

#include <cmath>
#include <span>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

// Negative log-likelihood of `target` under logits (fp32 [V]), in double for a stable sum.
double Nll(std::span<const float> logits, int32_t target) {
  double max = logits[0];
  for (float logit : logits) max = std::max(max, static_cast<double>(logit));
  double sum = 0.0;
  for (float logit : logits) sum += std::exp(static_cast<double>(logit) - max);
  return -(static_cast<double>(logits[static_cast<size_t>(target)]) - max - std::log(sum));
}

}  // namespace

absl::StatusOr<PerplexityResult> Perplexity(Model& model, const std::vector<std::vector<int32_t>>& documents,
                                            int32_t context, const std::function<void(int64_t, int64_t)>& on_window) {
  if (context < 2) return absl::InvalidArgumentError("perplexity: the context must be at least 2 tokens");
  if (context > model.options().max_context || context > model.options().max_step_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("perplexity: context ", context, " exceeds the model's limits (",
                                                   model.options().max_context, " tokens of context, ",
                                                   model.options().max_step_tokens, " per step)"));
  }
  // Every window of every document: a view of at least 2 tokens.
  std::vector<std::span<const int32_t>> windows;
  PerplexityResult result;
  for (const auto& document : documents) {
    if (document.empty()) continue;
    ++result.documents;
    for (size_t begin = 0; begin < document.size(); begin += static_cast<size_t>(context)) {
      const size_t length = std::min(static_cast<size_t>(context), document.size() - begin);
      if (length >= 2) windows.emplace_back(document.data() + begin, length);
    }
  }
  result.windows = static_cast<int64_t>(windows.size());

  double total_nll = 0.0;
  std::vector<float> logits;
  const int64_t vocab = model.config().vocab_size;
  size_t next = 0;
  while (next < windows.size()) {
    // Pack as many windows as fit into one step, each in fresh KV blocks released after the step.
    StepBatch step;
    std::vector<KvSequence> sequences;
    std::vector<std::span<const int32_t>> packed;
    int32_t tokens = 0;
    while (next < windows.size() && packed.size() < static_cast<size_t>(model.options().max_seqs) &&
           tokens + static_cast<int32_t>(windows[next].size()) <= model.options().max_step_tokens) {
      KvSequence sequence(model.kv_pool());
      if (!sequence.Reserve(static_cast<int64_t>(windows[next].size())).ok()) break;  // cache full: run what we have
      step.AddSequence(windows[next], 0, sequence.blocks(), StepBatch::Logits::kAll);
      sequences.push_back(std::move(sequence));
      packed.push_back(windows[next]);
      tokens += static_cast<int32_t>(windows[next].size());
      ++next;
    }
    if (packed.empty()) return absl::ResourceExhaustedError("perplexity: the KV cache cannot hold one window");
    NIBBLE_ASSIGN_OR_RETURN(Tensor device_logits, model.Forward(step));
    logits.resize(static_cast<size_t>(device_logits.numel()));
    NIBBLE_RETURN_IF_ERROR(model.backend().CopyToHost(device_logits, logits.data()));
    // Row r of a window predicts its token r + 1.
    int64_t row = 0;
    for (const auto& window : packed) {
      for (size_t r = 0; r + 1 < window.size(); ++r) {
        total_nll += Nll(
            std::span<const float>(logits).subspan(static_cast<size_t>((row + r) * vocab), static_cast<size_t>(vocab)),
            window[r + 1]);
      }
      result.predicted_tokens += static_cast<int64_t>(window.size()) - 1;
      row += static_cast<int64_t>(window.size());
    }
    if (on_window) on_window(static_cast<int64_t>(next), result.windows);
  }
  if (result.predicted_tokens == 0) return absl::InvalidArgumentError("perplexity: no window has 2 tokens to score");
  result.mean_nll = total_nll / static_cast<double>(result.predicted_tokens);
  result.perplexity = std::exp(result.mean_nll);
  return result;
}

}  // namespace nibble
