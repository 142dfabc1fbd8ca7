#include "engine/runtime/model.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/forward.h"

namespace nibble {

Model::Model(Backend& backend, ModelConfig config, ModelOptions options, ModelWeights weights, Workspace workspace,
             KvCache cache, BatchUploader uploader)
    : backend_(&backend),
      config_(std::move(config)),
      options_(options),
      weights_(std::move(weights)),
      workspace_(std::move(workspace)),
      cache_(std::move(cache)),
      uploader_(std::move(uploader)),
      padding_block_{options.kv_blocks} {}

absl::StatusOr<std::unique_ptr<Model>> Model::Create(Backend& backend, const HostModel& host,
                                                     const ModelOptions& requested) {
  ModelOptions options = requested;
  if (options.max_context <= 0) options.max_context = static_cast<int32_t>(host.config.max_position_embeddings);
  if (options.max_step_tokens <= 0 || options.max_seqs <= 0 || options.kv_block_size <= 0) {
    return absl::InvalidArgumentError("model options: step tokens, sequences and KV block size must be positive");
  }
  const int32_t blocks_per_seq = (options.max_context + options.kv_block_size - 1) / options.kv_block_size;
  if (options.kv_blocks <= 0) options.kv_blocks = blocks_per_seq * options.max_seqs;

  NIBBLE_ASSIGN_OR_RETURN(ModelWeights weights, UploadModel(backend, host));
  NIBBLE_ASSIGN_OR_RETURN(Workspace workspace,
                          Workspace::Create(backend, host.config, options.max_step_tokens, options.max_step_tokens));
  NIBBLE_ASSIGN_OR_RETURN(KvCache cache,
                          KvCache::Create(backend, backend.activation_dtype(), host.config, host.config.num_layers,
                                          options.kv_blocks + 1, options.kv_block_size,
                                          /*pool_blocks=*/options.kv_blocks));
  NIBBLE_ASSIGN_OR_RETURN(BatchUploader uploader,
                          BatchUploader::Create(backend, BatchLimits{options.max_step_tokens, options.max_seqs,
                                                                     blocks_per_seq, options.kv_block_size}));
  return std::unique_ptr<Model>(new Model(backend, host.config, options, std::move(weights), std::move(workspace),
                                          std::move(cache), std::move(uploader)));
}

absl::Status Model::Validate(const StepBatch& batch) const {
  for (int32_t id : batch.token_ids) {
    if (id < 0 || id >= config_.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the vocabulary (", config_.vocab_size, " tokens)"));
    }
  }
  for (int32_t context : batch.context_lens) {
    if (context > options_.max_context) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence of ", context, " tokens exceeds the context of ", options_.max_context));
    }
  }
  for (const auto& table : batch.block_tables) {
    for (int32_t block : table) {
      if (block < 0 || block >= options_.kv_blocks) {
        return absl::InvalidArgumentError(absl::StrCat("KV block id ", block, " is outside the cache"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Model::Forward(const StepBatch& batch) {
  NIBBLE_RETURN_IF_ERROR(Validate(batch));
  NIBBLE_ASSIGN_OR_RETURN(std::optional<Tensor> replayed, ForwardCaptured(batch));
  if (replayed) return *replayed;
  NIBBLE_ASSIGN_OR_RETURN(DeviceBatch device_batch, uploader_.Upload(batch));
  return nibble::Forward(*backend_, config_, weights_, device_batch, cache_, workspace_);
}

absl::StatusOr<std::optional<Tensor>> Model::ForwardCaptured(const StepBatch& batch) {
  const int32_t seqs = batch.num_seqs();
  if (!options_.capture_decode || !backend_->SupportsCapture() || batch.num_tokens() != seqs ||
      static_cast<int32_t>(batch.logit_rows.size()) != seqs) {
    return std::nullopt;
  }
  for (int32_t row = 0; row < seqs; ++row) {
    if (batch.logit_rows[row] != row) return std::nullopt;
  }
  // Padded sizes: every size up to 8, then multiples of 8 (a handful of captures cover any batch).
  const int32_t padded = seqs <= 8 ? seqs : (seqs + 7) / 8 * 8;
  if (padded > options_.max_seqs) return std::nullopt;
  StepBatch step = batch;
  const int32_t padding_token = 0;
  for (int32_t s = seqs; s < padded; ++s) {
    step.AddSequence({&padding_token, 1}, 0, padding_block_, StepBatch::Logits::kLast);
  }
  NIBBLE_ASSIGN_OR_RETURN(DeviceBatch device_batch, uploader_.Upload(step));
  const std::pair<int32_t, uint64_t> key{padded, backend_->CaptureKey(device_batch)};
  auto captured = captured_.find(key);
  if (captured == captured_.end()) {
    if (seen_.insert(key).second) {
      // First sight of this shape: run it directly, which also sizes the backend's scratch.
      NIBBLE_ASSIGN_OR_RETURN(Tensor logits,
                              nibble::Forward(*backend_, config_, weights_, device_batch, cache_, workspace_));
      return logits.Rows(0, seqs);
    }
    NIBBLE_RETURN_IF_ERROR(backend_->BeginCapture());
    const absl::Status recorded =
        nibble::Forward(*backend_, config_, weights_, device_batch, cache_, workspace_).status();
    absl::StatusOr<std::unique_ptr<CapturedWork>> work = backend_->EndCapture();
    NIBBLE_RETURN_IF_ERROR(recorded);
    NIBBLE_RETURN_IF_ERROR(work.status());
    captured = captured_.emplace(key, std::move(*work)).first;
  }
  NIBBLE_RETURN_IF_ERROR(backend_->Replay(*captured->second));
  return workspace_.logits(padded).Rows(0, seqs);
}

absl::StatusOr<std::vector<SampledToken>> Model::ForwardAndSample(const StepBatch& batch,
                                                                  std::span<const SamplingRequest> requests) {
  if (requests.size() != batch.logit_rows.size()) {
    return absl::InvalidArgumentError("ForwardAndSample: one sampling request per logit row");
  }
  NIBBLE_ASSIGN_OR_RETURN(Tensor logits, Forward(batch));
  std::vector<SampledToken> tokens(requests.size());
  NIBBLE_RETURN_IF_ERROR(backend_->Sample(logits, requests, tokens));
  return tokens;
}

}  // namespace nibble
