#include "quantizer/block_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

constexpr int32_t kKvBlockSize = 16;

// Copies host rows [first_row, first_row + rows) of an fp32 [*, width] array into a device tensor of the same
// shape, converting to the tensor's dtype (the backend's activation dtype: fp32 on the CPU, fp16 on CUDA).
absl::Status Upload(Backend& backend, std::span<const float> host, int64_t first_row, const Tensor& dst) {
  const std::span<const float> rows = host.subspan(static_cast<size_t>(first_row * dst.cols()), dst.numel());
  if (dst.dtype == DType::kF32) return backend.CopyToDevice(rows.data(), dst);
  std::vector<uint8_t> converted(dst.bytes());
  ConvertFromFloat(rows, dst.dtype, converted.data());
  return backend.CopyToDevice(converted.data(), dst);
}
// The reverse: a device tensor [rows, width] into host fp32 rows starting at first_row.
absl::Status Download(Backend& backend, const Tensor& src, std::vector<float>& host, int64_t first_row) {
  const std::span<float> rows(host.data() + first_row * src.cols(), static_cast<size_t>(src.numel()));
  if (src.dtype == DType::kF32) return backend.CopyToHost(src, rows.data());
  std::vector<uint8_t> raw(src.bytes());
  NIBBLE_RETURN_IF_ERROR(backend.CopyToHost(src, raw.data()));
  ConvertToFloat(src.dtype, raw.data(), rows);
  return absl::OkStatus();
}

}  // namespace

BlockRunner::BlockRunner(Backend& backend, const ModelConfig& config, int32_t num_sequences, int32_t seqlen,
                         int32_t seqs_per_step, Workspace workspace, KvCache cache, BatchUploader uploader,
                         DeviceTensor rope_inv_freq)
    : backend_(&backend),
      config_(config),
      num_sequences_(num_sequences),
      seqlen_(seqlen),
      seqs_per_step_(seqs_per_step),
      workspace_(std::move(workspace)),
      cache_(std::move(cache)),
      uploader_(std::move(uploader)),
      rope_inv_freq_(std::move(rope_inv_freq)),
      placeholder_tokens_(static_cast<size_t>(seqlen), 0) {
  for (int32_t s = 0; s < seqs_per_step_; ++s)
    block_tables_.push_back(*cache_.pool()->Allocate(cache_.pool()->BlocksFor(seqlen)));
}

absl::StatusOr<BlockRunner> BlockRunner::Create(Backend& backend, const ModelConfig& config, int32_t num_sequences,
                                                int32_t seqlen, int32_t max_step_tokens) {
  if (num_sequences < 1 || seqlen < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("calibration needs at least one sequence (", num_sequences, " sequences of ", seqlen, " tokens)"));
  }
  const int32_t seqs_per_step = std::clamp(max_step_tokens / seqlen, 1, num_sequences);
  const int32_t step_tokens = seqs_per_step * seqlen;
  NIBBLE_ASSIGN_OR_RETURN(Workspace workspace, Workspace::Create(backend, config, step_tokens, 1));
  const int32_t blocks_per_seq = (seqlen + kKvBlockSize - 1) / kKvBlockSize;
  NIBBLE_ASSIGN_OR_RETURN(KvCache cache, KvCache::Create(backend, backend.activation_dtype(), config, /*num_layers=*/1,
                                                         seqs_per_step * blocks_per_seq, kKvBlockSize));
  BatchLimits limits;
  limits.max_tokens = step_tokens;
  limits.max_seqs = seqs_per_step;
  limits.max_blocks_per_seq = blocks_per_seq;
  limits.kv_block_size = kKvBlockSize;
  NIBBLE_ASSIGN_OR_RETURN(BatchUploader uploader, BatchUploader::Create(backend, limits));
  const std::vector<float> inv_freq = RopeInverseFrequencies(config);
  NIBBLE_ASSIGN_OR_RETURN(
      DeviceTensor rope,
      backend.UploadTensor(HostTensor::FromFloats(inv_freq, Shape{static_cast<int64_t>(inv_freq.size())}),
                           DType::kF32));
  return BlockRunner(backend, config, num_sequences, seqlen, seqs_per_step, std::move(workspace), std::move(cache),
                     std::move(uploader), std::move(rope));
}

absl::Status BlockRunner::ForEachStep(const std::function<absl::Status(int64_t, int32_t, const DeviceBatch&)>& body) {
  for (int32_t first = 0; first < num_sequences_; first += seqs_per_step_) {
    const int32_t seqs = std::min(seqs_per_step_, num_sequences_ - first);
    StepBatch step;
    for (int32_t s = 0; s < seqs; ++s) {
      step.AddSequence(placeholder_tokens_, 0, block_tables_[static_cast<size_t>(s)], StepBatch::Logits::kNone);
    }
    NIBBLE_ASSIGN_OR_RETURN(DeviceBatch batch, uploader_.Upload(step));
    NIBBLE_RETURN_IF_ERROR(body(static_cast<int64_t>(first) * seqlen_, seqs * seqlen_, batch));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> BlockRunner::Embed(const HostTensor& embedding,
                                                      const std::vector<std::vector<int32_t>>& tokens) {
  if (static_cast<int32_t>(tokens.size()) != num_sequences_) {
    return absl::InvalidArgumentError(
        absl::StrCat("calibration: ", tokens.size(), " sequences, expected ", num_sequences_));
  }
  NIBBLE_ASSIGN_OR_RETURN(DeviceTensor table, backend_->UploadTensor(embedding, backend_->activation_dtype()));
  std::vector<float> hidden(static_cast<size_t>(num_tokens() * config_.hidden_size));
  std::vector<int32_t> ids;
  for (const auto& sequence : tokens) {
    if (static_cast<int32_t>(sequence.size()) != seqlen_) {
      return absl::InvalidArgumentError(
          absl::StrCat("calibration: a sequence of ", sequence.size(), " tokens, expected ", seqlen_));
    }
    ids.insert(ids.end(), sequence.begin(), sequence.end());
  }
  NIBBLE_RETURN_IF_ERROR(ForEachStep([&](int64_t first_row, int32_t rows, const DeviceBatch& batch) -> absl::Status {
    NIBBLE_RETURN_IF_ERROR(backend_->CopyToDevice(ids.data() + first_row, batch.token_ids));
    const Tensor out = workspace_.hidden(rows);  // [T, D]
    NIBBLE_RETURN_IF_ERROR(backend_->Embedding(table.tensor, batch.token_ids, out));
    return Download(*backend_, out, hidden, first_row);
  }));
  return hidden;
}

absl::StatusOr<BlockCapture> BlockRunner::Run(const LayerWeights& layer, std::vector<float>& hidden) {
  BlockCapture capture;
  const int64_t d = config_.hidden_size;
  const int64_t widths[6] = {d, config_.q_size(), d, d, config_.intermediate_size, d};
  for (size_t p = 0; p < capture.points.size(); ++p)
    capture.points[p].resize(static_cast<size_t>(num_tokens() * widths[p]));
  NIBBLE_RETURN_IF_ERROR(ForEachStep([&](int64_t first_row, int32_t rows, const DeviceBatch& batch) -> absl::Status {
    const Tensor residual = workspace_.hidden(rows);  // [T, D]
    NIBBLE_RETURN_IF_ERROR(Upload(*backend_, hidden, first_row, residual));
    const BlockTracer tracer = [&](TracePoint point, const Tensor& seen) {
      return Download(*backend_, seen, capture.at(point), first_row);
    };
    NIBBLE_RETURN_IF_ERROR(NormBlockInput(*backend_, config_, layer, residual, workspace_));
    NIBBLE_RETURN_IF_ERROR(DecoderBlock(*backend_, config_, layer, /*next_norm=*/Tensor{}, rope_inv_freq_.tensor,
                                        residual, batch, cache_.layer(0), workspace_, &tracer));
    return Download(*backend_, residual, hidden, first_row);
  }));
  return capture;
}

absl::StatusOr<std::vector<float>> BlockRunner::Attention(const LayerWeights& layer, std::span<const float> normed) {
  std::vector<float> out(static_cast<size_t>(num_tokens() * config_.hidden_size));
  NIBBLE_RETURN_IF_ERROR(ForEachStep([&](int64_t first_row, int32_t rows, const DeviceBatch& batch) -> absl::Status {
    const Tensor input = workspace_.normed(rows);  // [T, D]
    const Tensor output = workspace_.delta(rows);  // [T, D]
    NIBBLE_RETURN_IF_ERROR(Upload(*backend_, normed, first_row, input));
    NIBBLE_RETURN_IF_ERROR(AttentionSubblock(*backend_, config_, layer, rope_inv_freq_.tensor, input, batch,
                                             cache_.layer(0), workspace_, output));
    return Download(*backend_, output, out, first_row);
  }));
  return out;
}

absl::StatusOr<std::vector<float>> BlockRunner::Mlp(const LayerWeights& layer, std::span<const float> normed) {
  std::vector<float> out(static_cast<size_t>(num_tokens() * config_.hidden_size));
  NIBBLE_RETURN_IF_ERROR(ForEachStep([&](int64_t first_row, int32_t rows, const DeviceBatch&) -> absl::Status {
    const Tensor input = workspace_.normed(rows);  // [T, D]
    const Tensor output = workspace_.delta(rows);  // [T, D]
    NIBBLE_RETURN_IF_ERROR(Upload(*backend_, normed, first_row, input));
    NIBBLE_RETURN_IF_ERROR(MlpSubblock(*backend_, layer, input, workspace_, output));
    return Download(*backend_, output, out, first_row);
  }));
  return out;
}

absl::StatusOr<std::vector<float>> BlockRunner::LinearToHidden(const LinearWeights& linear, std::span<const float> x,
                                                               int64_t in_features) {
  const bool from_attention = in_features == config_.q_size();
  if (!from_attention && in_features != config_.intermediate_size) {
    return absl::InvalidArgumentError(absl::StrCat("calibration: no workspace row of width ", in_features));
  }
  std::vector<float> out(static_cast<size_t>(num_tokens() * config_.hidden_size));
  NIBBLE_RETURN_IF_ERROR(ForEachStep([&](int64_t first_row, int32_t rows, const DeviceBatch&) -> absl::Status {
    const Tensor input = from_attention ? workspace_.attention(rows) : workspace_.act(rows);  // [T, in]
    const Tensor output = workspace_.delta(rows);                                             // [T, D]
    NIBBLE_RETURN_IF_ERROR(Upload(*backend_, x, first_row, input));
    NIBBLE_RETURN_IF_ERROR(backend_->Linear(linear, input, output));
    return Download(*backend_, output, out, first_row);
  }));
  return out;
}

}  // namespace nibble
