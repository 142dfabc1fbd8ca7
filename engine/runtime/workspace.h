// Activation scratch for the forward pass, in backend memory: one allocation holding every intermediate
// tensor for steps of up to max_tokens tokens. Owned and used by one thread (the one driving the forward).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/tensor.h"
#include "engine/io/model_config.h"
#include "engine/runtime/backend.h"

namespace nibble {

// Activation scratch for steps of up to `max_tokens` tokens and `max_logit_rows` logit rows.
class Workspace {
 public:
  static absl::StatusOr<Workspace> Create(Backend& backend, const ModelConfig& config, int32_t max_tokens,
                                          int32_t max_logit_rows);
  int32_t max_tokens() const { return max_tokens_; }
  int32_t max_logit_rows() const { return max_logit_rows_; }

  // Views for a step of `tokens` tokens.
  Tensor hidden(int32_t tokens) const;     // [T, D] the residual stream
  Tensor normed(int32_t tokens) const;     // [T, D]
  Tensor qkv(int32_t tokens) const;        // [T, (H + 2K) * Dh]
  Tensor attention(int32_t tokens) const;  // [T, H * Dh]
  Tensor delta(int32_t tokens) const;      // [T, D] a sub-block's output before the residual add
  Tensor gate_up(int32_t tokens) const;    // [T, 2F]
  Tensor act(int32_t tokens) const;        // [T, F]
  Tensor last_hidden(int32_t rows) const;  // [R, D]
  Tensor logits(int32_t rows) const;       // fp32 [R, V]

 private:
  Workspace() = default;
  ModelConfig config_;  // sizes of the tensors
  int32_t max_tokens_ = 0;
  int32_t max_logit_rows_ = 0;
  DType dtype_ = DType::kF32;
  Buffer buffer_;
  std::vector<size_t> offsets_;
  Tensor Slice(int index, DType dtype, Shape shape) const;
};

}  // namespace nibble
