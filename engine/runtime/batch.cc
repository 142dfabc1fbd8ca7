#include "engine/runtime/batch.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/device_memory.h"

namespace nibble {

void StepBatch::AddSequence(std::span<const int32_t> tokens, int32_t first_position, std::span<const int32_t> blocks,
                            Logits logits) {
  const int32_t first_row = num_tokens();
  for (size_t i = 0; i < tokens.size(); ++i) {
    token_ids.push_back(tokens[i]);
    positions.push_back(first_position + static_cast<int32_t>(i));
  }
  seq_starts.push_back(num_tokens());
  context_lens.push_back(first_position + static_cast<int32_t>(tokens.size()));
  block_tables.push_back(blocks);
  if (logits == Logits::kAll) {
    for (int32_t row = first_row; row < num_tokens(); ++row) logit_rows.push_back(row);
  } else if (logits == Logits::kLast && !tokens.empty()) {
    logit_rows.push_back(num_tokens() - 1);
  }
}

BatchUploader::BatchUploader(DeviceMemory& memory, BatchLimits limits, Buffer buffer)
    : memory_(&memory), limits_(limits), buffer_(std::move(buffer)) {}

namespace {

// The uploader's int32 arrays, back to back in one buffer: token_ids [T], positions [T], seq_starts [B+1],
// context_lens [B], block_tables [B, W], logit_rows [T] (at most one per token).
struct Layout {
  size_t token_ids, positions, seq_starts, context_lens, block_tables, logit_rows, total;
  explicit Layout(const BatchLimits& l) {
    const size_t t = static_cast<size_t>(l.max_tokens);
    const size_t b = static_cast<size_t>(l.max_seqs);
    token_ids = 0;
    positions = token_ids + t;
    seq_starts = positions + t;
    context_lens = seq_starts + b + 1;
    block_tables = context_lens + b;
    logit_rows = block_tables + b * static_cast<size_t>(l.max_blocks_per_seq);
    total = logit_rows + t;
  }
};

}  // namespace

absl::StatusOr<BatchUploader> BatchUploader::Create(DeviceMemory& memory, BatchLimits limits) {
  if (limits.max_tokens <= 0 || limits.max_seqs <= 0 || limits.max_blocks_per_seq <= 0 || limits.kv_block_size <= 0) {
    return absl::InvalidArgumentError("batch limits must be positive");
  }
  NIBBLE_ASSIGN_OR_RETURN(Buffer buffer, memory.Allocate(Layout(limits).total * sizeof(int32_t)));
  return BatchUploader(memory, limits, std::move(buffer));
}

absl::StatusOr<DeviceBatch> BatchUploader::Upload(const StepBatch& batch) {
  const int32_t tokens = batch.num_tokens();
  const int32_t seqs = batch.num_seqs();
  const int32_t rows = static_cast<int32_t>(batch.logit_rows.size());
  const int32_t width = limits_.max_blocks_per_seq;
  if (tokens == 0 || seqs == 0) return absl::InvalidArgumentError("batch: no tokens");
  if (tokens > limits_.max_tokens || seqs > limits_.max_seqs || rows > tokens) {
    return absl::InvalidArgumentError(absl::StrCat("batch: ", tokens, " tokens, ", seqs, " sequences and ", rows,
                                                   " logit rows exceed the limits (", limits_.max_tokens, " tokens, ",
                                                   limits_.max_seqs, " sequences)"));
  }
  if (batch.positions.size() != batch.token_ids.size() || batch.seq_starts.size() != static_cast<size_t>(seqs) + 1 ||
      batch.block_tables.size() != static_cast<size_t>(seqs) || batch.seq_starts.front() != 0 ||
      batch.seq_starts.back() != tokens) {
    return absl::InvalidArgumentError("batch: arrays disagree on the number of tokens or sequences");
  }
  int32_t max_context = 0;
  int32_t max_new_tokens = 0;
  for (int32_t b = 0; b < seqs; ++b) {
    const int32_t context = batch.context_lens[b];
    const int64_t needed = (static_cast<int64_t>(context) + limits_.kv_block_size - 1) / limits_.kv_block_size;
    if (batch.seq_starts[b + 1] < batch.seq_starts[b] || context <= 0 ||
        static_cast<int64_t>(batch.block_tables[b].size()) < needed) {
      return absl::InvalidArgumentError(absl::StrCat("batch: sequence ", b, " has ", batch.block_tables[b].size(),
                                                     " KV blocks for ", context, " tokens (", limits_.kv_block_size,
                                                     " per block)"));
    }
    if (needed > width) {
      return absl::InvalidArgumentError(absl::StrCat("batch: sequence ", b, " context of ", context,
                                                     " tokens exceeds the block-table width of ", width, " blocks"));
    }
    max_context = std::max(max_context, context);
    max_new_tokens = std::max(max_new_tokens, batch.seq_starts[b + 1] - batch.seq_starts[b]);
  }
  for (int32_t row : batch.logit_rows) {
    if (row < 0 || row >= tokens)
      return absl::InvalidArgumentError(absl::StrCat("batch: logit row ", row, " out of range"));
  }

  // Stage every array in one host image, laid out as in the device buffer, and copy the used prefix.
  const Layout layout(limits_);
  staging_.assign(layout.total, -1);
  std::copy(batch.token_ids.begin(), batch.token_ids.end(), staging_.begin() + layout.token_ids);
  std::copy(batch.positions.begin(), batch.positions.end(), staging_.begin() + layout.positions);
  std::copy(batch.seq_starts.begin(), batch.seq_starts.end(), staging_.begin() + layout.seq_starts);
  std::copy(batch.context_lens.begin(), batch.context_lens.end(), staging_.begin() + layout.context_lens);
  for (int32_t b = 0; b < seqs; ++b) {
    const auto& table = batch.block_tables[b];
    const size_t used = std::min(table.size(), static_cast<size_t>(width));
    std::copy(table.begin(), table.begin() + used, staging_.begin() + layout.block_tables + b * width);
  }
  std::copy(batch.logit_rows.begin(), batch.logit_rows.end(), staging_.begin() + layout.logit_rows);
  const size_t used = layout.logit_rows + static_cast<size_t>(rows);
  auto* base = static_cast<int32_t*>(buffer_.data());
  NIBBLE_RETURN_IF_ERROR(
      memory_->CopyToDevice(staging_.data(), Tensor{base, DType::kI32, Shape{static_cast<int64_t>(used)}}));

  DeviceBatch device;
  device.num_tokens = tokens;
  device.num_seqs = seqs;
  device.num_logit_rows = rows;
  device.max_context = max_context;
  device.max_new_tokens = max_new_tokens;
  device.token_ids = Tensor{base + layout.token_ids, DType::kI32, Shape{tokens}};
  device.positions = Tensor{base + layout.positions, DType::kI32, Shape{tokens}};
  device.seq_starts = Tensor{base + layout.seq_starts, DType::kI32, Shape{seqs + 1}};
  device.context_lens = Tensor{base + layout.context_lens, DType::kI32, Shape{seqs}};
  device.block_tables = Tensor{base + layout.block_tables, DType::kI32, Shape{seqs, width}};
  device.logit_rows = Tensor{base + layout.logit_rows, DType::kI32, Shape{rows}};
  return device;
}

}  // namespace nibble
