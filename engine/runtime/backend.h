// The backend interface: memory, weight upload and the heavy operations of the forward pass.
//
// The forward pass (forward.h) is written once against this interface; `cpu` (fp32 reference, plain
// loops) and `cuda` (fp16 activations, W4A16 kernels) implement it. Shapes below use T tokens in the step,
// B sequences, R logit rows, D hidden size, H/K query/KV heads of size Dh, F intermediate size, V vocab.
//
// Contract:
// - Threading: a Backend and everything it allocated are used by one thread at a time (the engine thread
//   that owns the device). Ops are queued in order; CopyToHost and Synchronize wait for queued work.
// - Ownership: Allocate/Upload return owning objects; releasing them frees backend memory. Tensors passed
//   to ops are views the caller keeps alive until the op has run (until the next Synchronize).
// - Errors: every method returns a status; bad shapes or dtypes are InvalidArgument naming the op and the
//   tensor; device failures are Internal with the device's message. Nothing throws or aborts.
// - Dtypes: activations are activation_dtype(); logits (the lm_head output) are fp32; ids are int32.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/tensor.h"
#include "engine/io/host_model.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/device_memory.h"
#include "engine/runtime/kv_cache.h"
#include "engine/runtime/sampling.h"

namespace nibble {

// A Linear's weights uploaded to a backend, in whatever layout its matmul wants (repacked once).
class LinearWeights {
 public:
  LinearWeights(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  virtual ~LinearWeights() = default;
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  // Backend memory the weights (and bias) take.
  virtual size_t bytes() const = 0;

 private:
  int64_t in_features_;
  int64_t out_features_;
};

// A tensor together with the backend memory it lives in.
struct DeviceTensor {
  Buffer buffer;
  Tensor tensor;
};

struct AttentionShape {
  int32_t num_heads = 0;       // H
  int32_t num_kv_heads = 0;    // K; H % K == 0 (grouped-query attention)
  int32_t head_dim = 0;        // Dh
  int32_t sliding_window = 0;  // W: the keys a query sees, its own included (0: all; ModelConfig::attention_window)
};

// Work a backend recorded for replay (a CUDA graph). Owned by whoever captured it; replay on that backend only.
class CapturedWork {
 public:
  virtual ~CapturedWork() = default;
};

// Memory (Allocate, copies, Synchronize, memory_usage) comes from DeviceMemory (device_memory.h).
class Backend : public DeviceMemory {
 public:
  virtual std::string name() const = 0;
  virtual DType activation_dtype() const = 0;

  // --- Weights (once, at load) -------------------------------------------------------------------------
  virtual absl::StatusOr<std::unique_ptr<LinearWeights>> UploadLinear(const HostLinear& linear) = 0;
  // A float tensor (norm weights, embeddings) converted to `dtype` (activation dtype or fp32).
  virtual absl::StatusOr<DeviceTensor> UploadTensor(const HostTensor& tensor, DType dtype) = 0;

  // --- Ops ---------------------------------------------------------------------------------------------
  // out[t] = table[token_ids[t]]. table [V, D], token_ids i32 [T], out [T, D].
  virtual absl::Status Embedding(const Tensor& table, const Tensor& token_ids, const Tensor& out) = 0;
  // out = x / rms(x) * weight per row. x, out [T, D]; weight [D].
  virtual absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) = 0;
  // residual += delta; then out = RmsNorm(residual) * weight when `out` is given (out.data != nullptr;
  // a plain residual add otherwise). residual, delta, out [T, D]; weight [D].
  virtual absl::Status AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                                  const Tensor& out) = 0;
  // y = x W^T + b. x [T, in] activation dtype; y [T, out] activation dtype or fp32.
  virtual absl::Status Linear(const LinearWeights& weights, const Tensor& x, const Tensor& y) = 0;
  // Attention over the paged cache, for every token of the step:
  //   1. rotate-half RoPE on the q and k heads of qkv, in place, at each token's position (inv_freq: fp32
  //      [Dh / 2] inverse frequencies, llama3 scaling already applied);
  //   2. store each token's k and v in `cache` at its position (through the batch's block tables);
  //   3. out = causal softmax(q k^T / sqrt(Dh)) v over the sequence's positions first..position, query head h
  //      reading KV head h / (H / K); first = 0, or max(0, position - W + 1) with a sliding window W > 0.
  // qkv [T, (H + 2K) * Dh] (q heads, then k heads, then v heads); out [T, H * Dh].
  virtual absl::Status Attention(const Tensor& qkv, const Tensor& inv_freq, const KvLayer& cache,
                                 const DeviceBatch& batch, const AttentionShape& shape, const Tensor& out) = 0;
  // out = silu(gate) * up with gate_up [T, 2F] holding gate in columns [0, F) and up in [F, 2F); out [T, F].
  virtual absl::Status SiluMul(const Tensor& gate_up, const Tensor& out) = 0;
  // out[r] = x[rows[r]]. x [T, D], rows i32 [R], out [R, D].
  virtual absl::Status GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) = 0;
  // One token per row of logits (fp32 [R, V], overwritten) as sampling.h defines; requests.size() == R.
  virtual absl::Status Sample(const Tensor& logits, std::span<const SamplingRequest> requests,
                              std::span<SampledToken> out) = 0;

  // --- Capture (optional: CUDA graphs) -------------------------------------------------------------
  // Whether ops can be recorded once and replayed. Between BeginCapture and EndCapture ops are recorded,
  // not run, and nothing may allocate; EndCapture must follow every BeginCapture, even after a failed op.
  virtual bool SupportsCapture() const { return false; }
  virtual absl::Status BeginCapture() { return absl::UnimplementedError(name() + ": no capture"); }
  virtual absl::StatusOr<std::unique_ptr<CapturedWork>> EndCapture() {
    return absl::UnimplementedError(name() + ": no capture");
  }
  virtual absl::Status Replay(const CapturedWork&) { return absl::UnimplementedError(name() + ": no capture"); }
  // Steps with equal sizes and equal keys launch identical work, so a capture of one replays for the other
  // (the CUDA backend keys on the number of attention partitions, which the longest context decides).
  virtual uint64_t CaptureKey(const DeviceBatch&) const { return 0; }
};

}  // namespace nibble
