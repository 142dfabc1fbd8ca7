// The forward pass of a Llama-family decoder. Read it top to bottom: Forward at the end runs the model;
// the block-level functions above it are what it is made of (and what the quantizer calls).
//
// Notation: T tokens in the step, R logit rows, D hidden size, H query heads and K key/value heads of size
// Dh, F intermediate size, V vocabulary.
#include "engine/runtime/forward.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

AttentionShape ShapeOf(const ModelConfig& config) {
  // A window at least as long as any context int32 positions can hold is no window.
  const int64_t window = config.attention_window();
  return AttentionShape{static_cast<int32_t>(config.num_heads), static_cast<int32_t>(config.num_kv_heads),
                        static_cast<int32_t>(config.head_dim),
                        window < std::numeric_limits<int32_t>::max() ? static_cast<int32_t>(window) : 0};
}

absl::Status Trace(const BlockTracer* tracer, TracePoint point, const Tensor& tensor) {
  return tracer != nullptr ? (*tracer)(point, tensor) : absl::OkStatus();
}

}  // namespace

absl::Status AttentionSubblock(Backend& backend, const ModelConfig& config, const LayerWeights& layer,
                               const Tensor& rope_inv_freq, const Tensor& normed, const DeviceBatch& batch,
                               const KvLayer& cache, Workspace& ws, const Tensor& out, const BlockTracer* tracer) {
  const int32_t tokens = batch.num_tokens;
  const AttentionShape shape = ShapeOf(config);
  NIBBLE_RETURN_IF_ERROR(Trace(tracer, TracePoint::kAttentionInput, normed));

  // 1. Project to queries, keys and values in one matmul: qkv [T, (H + 2K) * Dh].
  const Tensor qkv = ws.qkv(tokens);
  NIBBLE_RETURN_IF_ERROR(backend.Linear(*layer.qkv, normed, qkv));

  // 2. Rotate q and k by their positions (RoPE), store k and v in the paged cache, and attend causally
  //    over each sequence (within the sliding window, where the model has one): attention [T, H * Dh].
  const Tensor attention = ws.attention(tokens);
  NIBBLE_RETURN_IF_ERROR(backend.Attention(qkv, rope_inv_freq, cache, batch, shape, attention));
  NIBBLE_RETURN_IF_ERROR(Trace(tracer, TracePoint::kOInput, attention));

  // 3. Project the heads back to the hidden size: out [T, D].
  NIBBLE_RETURN_IF_ERROR(backend.Linear(*layer.o, attention, out));
  return Trace(tracer, TracePoint::kAttentionOutput, out);
}

absl::Status MlpSubblock(Backend& backend, const LayerWeights& layer, const Tensor& normed, Workspace& ws,
                         const Tensor& out, const BlockTracer* tracer) {
  const int32_t tokens = static_cast<int32_t>(normed.rows());
  NIBBLE_RETURN_IF_ERROR(Trace(tracer, TracePoint::kMlpInput, normed));

  // 1. Gate and up projections in one matmul: gate_up [T, 2F].
  const Tensor gate_up = ws.gate_up(tokens);
  NIBBLE_RETURN_IF_ERROR(backend.Linear(*layer.gate_up, normed, gate_up));

  // 2. SwiGLU: act = silu(gate) * up [T, F].
  const Tensor act = ws.act(tokens);
  NIBBLE_RETURN_IF_ERROR(backend.SiluMul(gate_up, act));
  NIBBLE_RETURN_IF_ERROR(Trace(tracer, TracePoint::kDownInput, act));

  // 3. Down projection: out [T, D].
  NIBBLE_RETURN_IF_ERROR(backend.Linear(*layer.down, act, out));
  return Trace(tracer, TracePoint::kMlpOutput, out);
}

absl::Status NormBlockInput(Backend& backend, const ModelConfig& config, const LayerWeights& layer,
                            const Tensor& hidden, Workspace& ws) {
  return backend.RmsNorm(hidden, layer.attention_norm.tensor, static_cast<float>(config.rms_norm_eps),
                         ws.normed(static_cast<int32_t>(hidden.rows())));
}

absl::Status DecoderBlock(Backend& backend, const ModelConfig& config, const LayerWeights& layer,
                          const Tensor& next_norm, const Tensor& rope_inv_freq, const Tensor& hidden,
                          const DeviceBatch& batch, const KvLayer& cache, Workspace& ws, const BlockTracer* tracer) {
  const int32_t tokens = batch.num_tokens;
  const float eps = static_cast<float>(config.rms_norm_eps);
  const Tensor normed = ws.normed(tokens);  // [T, D], RmsNorm(hidden) * attention_norm on entry
  const Tensor delta = ws.delta(tokens);    // [T, D]

  // 1. Attention on the normalised residual stream: delta [T, D].
  NIBBLE_RETURN_IF_ERROR(
      AttentionSubblock(backend, config, layer, rope_inv_freq, normed, batch, cache, ws, delta, tracer));

  // 2. Residual add fused with the MLP's input norm: hidden += delta; normed = RmsNorm(hidden) * mlp_norm.
  NIBBLE_RETURN_IF_ERROR(backend.AddRmsNorm(hidden, delta, layer.mlp_norm.tensor, eps, normed));

  // 3. MLP: delta [T, D].
  NIBBLE_RETURN_IF_ERROR(MlpSubblock(backend, layer, normed, ws, delta, tracer));

  // 4. Residual add fused with the next norm: hidden += delta; normed = RmsNorm(hidden) * next_norm.
  return backend.AddRmsNorm(hidden, delta, next_norm, eps, next_norm.data != nullptr ? normed : Tensor{});
}

absl::Status Embed(Backend& backend, const ModelWeights& weights, const DeviceBatch& batch, const Tensor& hidden) {
  return backend.Embedding(weights.embedding.tensor, batch.token_ids, hidden);
}

absl::StatusOr<Tensor> Forward(Backend& backend, const ModelConfig& config, const ModelWeights& weights,
                               const DeviceBatch& batch, const KvCache& cache, Workspace& ws) {
  const int32_t tokens = batch.num_tokens;
  const int32_t rows = batch.num_logit_rows;
  if (tokens > ws.max_tokens() || rows > ws.max_logit_rows()) {
    return absl::InvalidArgumentError(absl::StrCat("forward: step of ", tokens, " tokens and ", rows,
                                                   " logit rows exceeds the workspace (", ws.max_tokens(), ", ",
                                                   ws.max_logit_rows(), ")"));
  }

  // 1. Token embeddings: hidden [T, D], and the first block's input norm: normed [T, D].
  const Tensor hidden = ws.hidden(tokens);
  NIBBLE_RETURN_IF_ERROR(Embed(backend, weights, batch, hidden));
  NIBBLE_RETURN_IF_ERROR(NormBlockInput(backend, config, weights.layers.front(), hidden, ws));

  // 2. The decoder blocks, in place on the residual stream; each leaves the next one's input norm (the
  //    last one the final norm) in normed.
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    const Tensor& next_norm =
        l + 1 < weights.layers.size() ? weights.layers[l + 1].attention_norm.tensor : weights.final_norm.tensor;
    NIBBLE_RETURN_IF_ERROR(DecoderBlock(backend, config, weights.layers[l], next_norm, weights.rope_inv_freq.tensor,
                                        hidden, batch, cache.layer(static_cast<int64_t>(l)), ws));
  }

  // 3. Keep the rows that need logits: last_hidden [R, D] (already final-normed).
  const Tensor last_hidden = ws.last_hidden(rows);
  NIBBLE_RETURN_IF_ERROR(backend.GatherRows(ws.normed(tokens), batch.logit_rows, last_hidden));

  // 4. The language-model head: logits fp32 [R, V].
  const Tensor logits = ws.logits(rows);
  NIBBLE_RETURN_IF_ERROR(backend.Linear(*weights.lm_head, last_hidden, logits));
  return logits;
}

}  // namespace nibble
