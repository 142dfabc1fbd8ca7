// The forward pass of a Llama-family decoder, written once (forward.cc, top to bottom) against the
// Backend interface. Model (model.h) drives it for generation and perplexity; the quantizer calls the
// block-level pieces on its calibration data, so there is no second copy of the model math.
//
// Threading: all functions run on the calling thread and queue work on the backend; the caller owns the
// backend, the weights, the workspace and the cache for the duration of the call.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/model_config.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/kv_cache.h"
#include "engine/runtime/model_weights.h"
#include "engine/runtime/workspace.h"

namespace nibble {

// Points inside a decoder block where the quantizer observes activations (inputs of every Linear and
// outputs of the two sub-blocks), in the order the forward reaches them.
enum class TracePoint {
  kAttentionInput,   // [T, D] normed input of q/k/v
  kOInput,           // [T, H * Dh] input of o
  kAttentionOutput,  // [T, D] output of o (the attention sub-block)
  kMlpInput,         // [T, D] normed input of gate/up
  kDownInput,        // [T, F] input of down
  kMlpOutput,        // [T, D] output of down (the MLP sub-block)
};
// Called with a view that is valid only during the call (copy what you keep).
using BlockTracer = std::function<absl::Status(TracePoint, const Tensor&)>;

// The attention sub-block: qkv projection, RoPE, attention over the cache, o projection.
// normed [T, D] -> out [T, D] (may alias ws.delta).
absl::Status AttentionSubblock(Backend& backend, const ModelConfig& config, const LayerWeights& layer,
                               const Tensor& rope_inv_freq, const Tensor& normed, const DeviceBatch& batch,
                               const KvLayer& cache, Workspace& ws, const Tensor& out,
                               const BlockTracer* tracer = nullptr);
// The MLP sub-block: gate/up projection, silu(gate) * up, down projection. normed [T, D] -> out [T, D].
absl::Status MlpSubblock(Backend& backend, const LayerWeights& layer, const Tensor& normed, Workspace& ws,
                         const Tensor& out, const BlockTracer* tracer = nullptr);
// One decoder block in place on the residual stream hidden [T, D].
// On entry ws.normed(T) holds RmsNorm(hidden) * layer.attention_norm (NormBlockInput, or the previous
// block's fused exit). The block's last residual add is fused with the next norm: on return hidden holds
// the block's output and, when next_norm is given (data != nullptr), ws.normed(T) holds
// RmsNorm(output) * next_norm (the next block's attention norm, or the final norm).
absl::Status DecoderBlock(Backend& backend, const ModelConfig& config, const LayerWeights& layer,
                          const Tensor& next_norm, const Tensor& rope_inv_freq, const Tensor& hidden,
                          const DeviceBatch& batch, const KvLayer& cache, Workspace& ws,
                          const BlockTracer* tracer = nullptr);
// ws.normed(T) = RmsNorm(hidden) * layer.attention_norm: the input norm of a block's first sub-block.
absl::Status NormBlockInput(Backend& backend, const ModelConfig& config, const LayerWeights& layer,
                            const Tensor& hidden, Workspace& ws);
// Embeds batch.token_ids into hidden [T, D].
absl::Status Embed(Backend& backend, const ModelWeights& weights, const DeviceBatch& batch, const Tensor& hidden);

// The whole model over one step. Returns fp32 logits [R, V] for batch.logit_rows, a view into `ws` valid
// until the next call.
absl::StatusOr<Tensor> Forward(Backend& backend, const ModelConfig& config, const ModelWeights& weights,
                               const DeviceBatch& batch, const KvCache& cache, Workspace& ws);

}  // namespace nibble
