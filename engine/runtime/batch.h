// One step's batch: which tokens of which sequences the forward pass runs, where each sequence's keys and
// values live in the paged KV cache, and which rows need logits.
//
// StepBatch is built on the host by whoever drives the model (the scheduler, perplexity, calibration).
// BatchUploader copies it into backend memory it owns, at addresses and widths that stay fixed for its
// lifetime (CUDA graphs replay against them). One thread uses a BatchUploader at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/tensor.h"

namespace nibble {

class DeviceMemory;

struct StepBatch {
  std::vector<int32_t> token_ids;                      // [T] new tokens, sequence after sequence
  std::vector<int32_t> positions;                      // [T] position of each token in its sequence
  std::vector<int32_t> seq_starts{0};                  // [B+1] first row of each sequence; seq_starts[B] = T
  std::vector<int32_t> context_lens;                   // [B] tokens of each sequence in the cache after this step
  std::vector<std::span<const int32_t>> block_tables;  // [B] KV block ids of each sequence (views)
  std::vector<int32_t> logit_rows;                     // [R] token rows whose logits are wanted

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(context_lens.size()); }

  enum class Logits { kNone, kLast, kAll };
  // Appends a sequence: `tokens` at positions first_position.., its KV blocks `blocks` (enough for
  // first_position + tokens.size() tokens; the view must outlive the upload), and which of its rows need
  // logits.
  void AddSequence(std::span<const int32_t> tokens, int32_t first_position, std::span<const int32_t> blocks,
                   Logits logits);
};

// The same arrays in backend memory, plus the sizes the host knows.
struct DeviceBatch {
  int32_t num_tokens = 0;
  int32_t num_seqs = 0;
  int32_t num_logit_rows = 0;
  int32_t max_context = 0;     // largest context_len of this step
  int32_t max_new_tokens = 0;  // most tokens one sequence brings to this step (1 in a pure decode step)
  Tensor token_ids;            // i32 [T]
  Tensor positions;            // i32 [T]
  Tensor seq_starts;           // i32 [B+1]
  Tensor context_lens;         // i32 [B]
  Tensor block_tables;         // i32 [B, max_blocks_per_seq] (the uploader's fixed width), -1 padded
  Tensor logit_rows;           // i32 [R]
};

struct BatchLimits {
  int32_t max_tokens = 4096;         // T
  int32_t max_seqs = 256;            // B
  int32_t max_blocks_per_seq = 256;  // block-table width: max context / block size
  int32_t kv_block_size = 16;        // tokens per KV block (to check each sequence has enough blocks)
};

class BatchUploader {
 public:
  static absl::StatusOr<BatchUploader> Create(DeviceMemory& memory, BatchLimits limits);
  // Validates `batch` (sizes within the limits, arrays consistent, enough blocks for every context) and
  // copies it. The DeviceBatch views this uploader's buffer: valid until the next Upload.
  absl::StatusOr<DeviceBatch> Upload(const StepBatch& batch);
  const BatchLimits& limits() const { return limits_; }

 private:
  BatchUploader(DeviceMemory& memory, BatchLimits limits, Buffer buffer);
  DeviceMemory* memory_;
  BatchLimits limits_;
  Buffer buffer_;                 // every array, back to back (see Upload for the offsets)
  std::vector<int32_t> staging_;  // host image of buffer_, copied in one transfer
};

}  // namespace nibble
