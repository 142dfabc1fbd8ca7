// Runs one decoder block of a model over the calibration set with the engine's own forward code
// (engine/runtime/forward.h: DecoderBlock, AttentionSubblock, MlpSubblock) on a backend: the full-precision pass that
// captures every Linear's input and each sub-block's output, and the module outputs the scale search
// compares against them. No model math lives here, only batching and copies.
//
// The calibration set is N sequences of T tokens, each starting at position 0 with its own KV blocks; steps
// run up to `max_step_tokens` tokens. Activations cross to the host as fp32 [N * T, width] arrays, converted
// from and to the backend's activation dtype at the boundary: on the CPU backend everything is fp32; on CUDA
// the block runs in fp16 with fp32 accumulation (as AutoAWQ calibrates), and the losses the search compares
// are reduced on the host in fp32. One thread at a time; the backend must outlive the runner.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/model_config.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/forward.h"
#include "engine/runtime/kv_cache.h"
#include "engine/runtime/model_weights.h"
#include "engine/runtime/workspace.h"

namespace nibble {

// Everything a block's full-precision pass shows, fp32 [N * T, width] per TracePoint.
struct BlockCapture {
  std::array<std::vector<float>, 6> points;
  std::vector<float>& at(TracePoint point) { return points[static_cast<size_t>(point)]; }
  const std::vector<float>& at(TracePoint point) const { return points[static_cast<size_t>(point)]; }
};

class BlockRunner {
 public:
  static absl::StatusOr<BlockRunner> Create(Backend& backend, const ModelConfig& config, int32_t num_sequences,
                                            int32_t seqlen, int32_t max_step_tokens = 2048);
  int64_t num_tokens() const { return static_cast<int64_t>(num_sequences_) * seqlen_; }

  // The embeddings of the calibration tokens ([N][T] ids): fp32 [N * T, D], decoder block 0's input.
  absl::StatusOr<std::vector<float>> Embed(const HostTensor& embedding,
                                           const std::vector<std::vector<int32_t>>& tokens);
  // Runs the block on `hidden` [N * T, D] in place (leaving its output, the next block's input) and returns
  // what it saw.
  absl::StatusOr<BlockCapture> Run(const LayerWeights& layer, std::vector<float>& hidden);
  // The attention sub-block's output [N * T, D] for its normed input `normed` [N * T, D].
  absl::StatusOr<std::vector<float>> Attention(const LayerWeights& layer, std::span<const float> normed);
  // The MLP sub-block's output [N * T, D] for its normed input [N * T, D].
  absl::StatusOr<std::vector<float>> Mlp(const LayerWeights& layer, std::span<const float> normed);
  // A Linear into the hidden size (o or down): x [N * T, in] -> [N * T, D].
  absl::StatusOr<std::vector<float>> LinearToHidden(const LinearWeights& linear, std::span<const float> x,
                                                    int64_t in_features);

 private:
  BlockRunner(Backend& backend, const ModelConfig& config, int32_t num_sequences, int32_t seqlen, int32_t seqs_per_step,
              Workspace workspace, KvCache cache, BatchUploader uploader, DeviceTensor rope_inv_freq);
  // Calls body(first_row, rows, device batch) for each step of up to seqs_per_step_ sequences.
  absl::Status ForEachStep(const std::function<absl::Status(int64_t, int32_t, const DeviceBatch&)>& body);

  Backend* backend_;
  ModelConfig config_;
  int32_t num_sequences_;
  int32_t seqlen_;
  int32_t seqs_per_step_;
  Workspace workspace_;
  KvCache cache_;
  BatchUploader uploader_;
  DeviceTensor rope_inv_freq_;
  std::vector<std::vector<int32_t>> block_tables_;  // [seqs_per_step] fixed KV blocks, reused by every step
  std::vector<int32_t> placeholder_tokens_;         // [T] ids for steps that do not embed
};

}  // namespace nibble
