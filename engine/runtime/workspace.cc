#include "engine/runtime/workspace.h"

#include "engine/base/status_macros.h"

namespace nibble {
namespace {

// The workspace's tensors, in the order they sit in its buffer.
enum Slot { kHidden, kNormed, kQkv, kAttention, kDelta, kGateUp, kAct, kLastHidden, kLogits, kSlots };

constexpr size_t kAlignment = 256;  // keeps every tensor aligned for 16-byte vector loads (and more)

size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

absl::StatusOr<Workspace> Workspace::Create(Backend& backend, const ModelConfig& config, int32_t max_tokens,
                                            int32_t max_logit_rows) {
  Workspace ws;
  ws.config_ = config;
  ws.max_tokens_ = max_tokens;
  ws.max_logit_rows_ = max_logit_rows;
  ws.dtype_ = backend.activation_dtype();
  const size_t element = DTypeSize(ws.dtype_);
  const size_t t = static_cast<size_t>(max_tokens);
  const size_t r = static_cast<size_t>(max_logit_rows);
  const size_t sizes[kSlots] = {
      t * config.hidden_size * element,            // hidden
      t * config.hidden_size * element,            // normed
      t * config.qkv_size() * element,             // qkv
      t * config.q_size() * element,               // attention
      t * config.hidden_size * element,            // delta
      t * 2 * config.intermediate_size * element,  // gate_up
      t * config.intermediate_size * element,      // act
      r * config.hidden_size * element,            // last_hidden
      r * config.vocab_size * sizeof(float),       // logits
  };
  size_t total = 0;
  for (size_t size : sizes) {
    ws.offsets_.push_back(total);
    total += AlignUp(size);
  }
  NIBBLE_ASSIGN_OR_RETURN(ws.buffer_, backend.Allocate(total));
  return ws;
}

Tensor Workspace::Slice(int index, DType dtype, Shape shape) const {
  return Tensor{static_cast<char*>(buffer_.data()) + offsets_[static_cast<size_t>(index)], dtype, shape};
}

Tensor Workspace::hidden(int32_t tokens) const { return Slice(kHidden, dtype_, {tokens, config_.hidden_size}); }
Tensor Workspace::normed(int32_t tokens) const { return Slice(kNormed, dtype_, {tokens, config_.hidden_size}); }
Tensor Workspace::qkv(int32_t tokens) const { return Slice(kQkv, dtype_, {tokens, config_.qkv_size()}); }
Tensor Workspace::attention(int32_t tokens) const { return Slice(kAttention, dtype_, {tokens, config_.q_size()}); }
Tensor Workspace::delta(int32_t tokens) const { return Slice(kDelta, dtype_, {tokens, config_.hidden_size}); }
Tensor Workspace::gate_up(int32_t tokens) const {
  return Slice(kGateUp, dtype_, {tokens, 2 * config_.intermediate_size});
}
Tensor Workspace::act(int32_t tokens) const { return Slice(kAct, dtype_, {tokens, config_.intermediate_size}); }
Tensor Workspace::last_hidden(int32_t rows) const { return Slice(kLastHidden, dtype_, {rows, config_.hidden_size}); }
Tensor Workspace::logits(int32_t rows) const { return Slice(kLogits, DType::kF32, {rows, config_.vocab_size}); }

}  // namespace nibble
