#include "tests/support/sliding_window_model.h"

#include <cmath>
#include <span>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/model.h"
#include "engine/tools/synth.h"

namespace nibble::testing {

absl::StatusOr<HostModel> SyntheticMistral(std::optional<int64_t> sliding_window, uint64_t seed) {
  NIBBLE_ASSIGN_OR_RETURN(ModelConfig config, SynthPreset("tiny"));
  config.architecture = Architecture::kMistral;
  config.architecture_name = "MistralForCausalLM";
  config.hidden_size = 256;
  config.intermediate_size = 688;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 64;
  config.sliding_window = sliding_window;
  return SynthesizeModel(config, seed);
}

absl::StatusOr<std::vector<std::vector<float>>> LogitsAtEveryPosition(Backend& backend, const HostModel& host,
                                                                      const std::vector<int32_t>& tokens,
                                                                      int32_t prefill_tokens) {
  ModelOptions options;
  options.max_step_tokens = 256;
  options.max_seqs = 1;
  options.max_context = 256;
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Create(backend, host, options));
  KvSequence sequence(model->kv_pool());
  NIBBLE_RETURN_IF_ERROR(sequence.Reserve(static_cast<int64_t>(tokens.size())));
  const int64_t vocab = host.config.vocab_size;
  std::vector<std::vector<float>> logits;
  for (int32_t first = 0; first < static_cast<int32_t>(tokens.size());) {
    const int32_t count = first == 0 ? prefill_tokens : 1;
    StepBatch step;
    step.AddSequence(std::span<const int32_t>(tokens).subspan(first, count), first, sequence.blocks(),
                     StepBatch::Logits::kAll);
    NIBBLE_ASSIGN_OR_RETURN(const Tensor rows, model->Forward(step));
    std::vector<float> values(static_cast<size_t>(rows.numel()));
    NIBBLE_RETURN_IF_ERROR(backend.CopyToHost(rows, values.data()));
    for (int32_t r = 0; r < count; ++r)
      logits.emplace_back(values.begin() + r * vocab, values.begin() + (r + 1) * vocab);
    first += count;
  }
  return logits;
}

double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / norm);
}

}  // namespace nibble::testing
