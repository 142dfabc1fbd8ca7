// A model ready to run on one backend: its weights uploaded, its activation workspace, its paged KV cache
// and its batch uploader. Generation, perplexity and the server's scheduler drive it one step at a time.
//
// Contract: Model does not own the Backend, which must outlive it. A Model is used by one thread at a
// time (the engine thread that owns the backend); its KV block pool may be read from any thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/host_model.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/kv_cache.h"
#include "engine/runtime/model_weights.h"
#include "engine/runtime/workspace.h"

namespace nibble {

struct ModelOptions {
  int32_t max_step_tokens = 2048;  // tokens one step may run (a prefill longer than this is chunked)
  int32_t max_seqs = 64;           // sequences one step may run
  int32_t max_context = 0;         // longest sequence; 0: the model's max_position_embeddings
  int32_t kv_block_size = 16;      // tokens per KV block
  int32_t kv_blocks = 0;           // blocks in the KV cache; 0: enough for max_seqs full-length sequences
  bool capture_decode = true;      // replay decode steps from captured work where the backend can (CUDA graphs)
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Create(Backend& backend, const HostModel& host,
                                                       const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  Backend& backend() const { return *backend_; }
  const KvCache& kv_cache() const { return cache_; }
  const std::shared_ptr<KvBlockPool>& kv_pool() const { return cache_.pool(); }
  size_t weight_bytes() const { return weights_.bytes(); }

  // Runs one step: checks the batch (token ids in the vocabulary, block ids in the cache, sizes within the
  // options), uploads it and runs the forward pass. Returns fp32 logits [R, V] in backend memory, valid
  // until the next call.
  absl::StatusOr<Tensor> Forward(const StepBatch& batch);
  // Forward, then one sampled token per logit row (requests in logit-row order).
  absl::StatusOr<std::vector<SampledToken>> ForwardAndSample(const StepBatch& batch,
                                                             std::span<const SamplingRequest> requests);

 private:
  Model(Backend& backend, ModelConfig config, ModelOptions options, ModelWeights weights, Workspace workspace,
        KvCache cache, BatchUploader uploader);
  absl::Status Validate(const StepBatch& batch) const;
  // A pure decode step (one token per sequence, its logits wanted) padded to a captured size, replayed;
  // nullopt when the step does not qualify.
  absl::StatusOr<std::optional<Tensor>> ForwardCaptured(const StepBatch& batch);

  Backend* backend_;
  ModelConfig config_;
  ModelOptions options_;
  ModelWeights weights_;
  Workspace workspace_;
  KvCache cache_;  // one block more than the pool hands out: padding sequences of captured steps use it
  BatchUploader uploader_;
  std::vector<int32_t> padding_block_;
  // Captured decode steps by (padded batch size, backend capture key); a key is captured the second time
  // it is seen (the first run sizes the backend's scratch memory).
  std::map<std::pair<int32_t, uint64_t>, std::unique_ptr<CapturedWork>> captured_;
  std::set<std::pair<int32_t, uint64_t>> seen_;
};

}  // namespace nibble
