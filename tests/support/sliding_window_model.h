// What the sliding-window tests share: a small Mistral-shaped synthetic model and one sequence run through it
// position by position, on any backend.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/host_model.h"
#include "engine/runtime/backend.h"

namespace nibble::testing {

// 2 layers, hidden 256, 4 query heads and 2 KV heads of 64 (a head size the CUDA prefill kernel has),
// intermediate 688, vocab 512, context 512, random weights of `seed` (synth.h), and config.json's
// sliding_window set to `sliding_window` (nullopt: none). Pure.
absl::StatusOr<HostModel> SyntheticMistral(std::optional<int64_t> sliding_window, uint64_t seed);

// The logits [V] at every position of `tokens` on a fresh Model of `host` on `backend`: the first
// `prefill_tokens` tokens in one step (logits of every row), then the rest one decode step each (the later
// ones replayed from captured work where the backend captures).
absl::StatusOr<std::vector<std::vector<float>>> LogitsAtEveryPosition(Backend& backend, const HostModel& host,
                                                                      const std::vector<int32_t>& tokens,
                                                                      int32_t prefill_tokens);

// ||got - want|| / ||want|| over one row; infinity when `got` holds anything not finite.
double RelativeError(const std::vector<float>& got, const std::vector<float>& want);

}  // namespace nibble::testing
