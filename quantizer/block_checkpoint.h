// Durable progress of a quantization: after each decoder block the block loop (quantize.h) saves what a
// resumed run needs to go on exactly as an uninterrupted one would, so that a quantizer killed at block 20 of
// 32 starts again at block 20 and publishes the same bytes.
//
// The checkpoint directory (a job's staging directory) holds:
//   block-<i>.safetensors  block i as quantized, under its Hugging Face names (engine/io/model_writer.h
//                          LayerTensors: packed AWQ Linears, or fake-quantized ones, norms as folded)
//   activations-<k>.f32    fp32 [N * T, hidden], the calibration activations entering block k = blocks done
//                          (AWQ only: the output of the full-precision pass of the last saved block)
//   progress.json          {"format": 1, "fingerprint": ..., "blocks": [{"report": ..., "file": ..., "bytes": ...,
//                          "sha256": ...}, ...], "activations": {"file": ..., "bytes": ..., "sha256": ...}}
// Save writes the new files first, then replaces progress.json atomically (a temporary file, fsync, rename,
// fsync of the directory), then removes the activations it no longer names: progress.json only ever names
// complete files, and a crash anywhere in a save leaves the previous checkpoint or the new one.
//
// Load verifies every file progress.json names (size and sha256) and the fingerprint (the caller's
// description of the job: options, source and calibration files; a checkpoint of another job, or of a source
// that has changed since, must not be resumed). Errors name the file; the caller then starts again (Reset).
//
// Threading: one thread at a time. The directory is the checkpoint's; ResumePoint tensors map its files and
// stay valid after the files are replaced or removed (the mappings hold them).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/host_model.h"
#include "engine/io/model_config.h"
#include "nlohmann/json.hpp"
#include "quantizer/layer_report.h"

namespace nibble {

// What a checkpoint gives back: the first `blocks_done` blocks, finished.
struct ResumePoint {
  int64_t blocks_done = 0;
  std::vector<HostLayer> layers;     // [blocks_done], as QuantizeResult holds them
  std::vector<LayerReport> reports;  // [blocks_done]
  std::vector<float> activations;    // fp32 [N * T, hidden]: block blocks_done's input (empty for RTN)
};

class BlockCheckpoint {
 public:
  // Creates `dir` when missing. `fingerprint` identifies the job (see above).
  static absl::StatusOr<BlockCheckpoint> Open(std::filesystem::path dir, nlohmann::json fingerprint);

  const std::filesystem::path& dir() const { return dir_; }

  // nullopt when nothing has been saved; the verified resume point otherwise (and Save goes on from it).
  // InvalidArgument / FailedPrecondition naming the file when the checkpoint is corrupt, incomplete or another
  // job's.
  absl::StatusOr<std::optional<ResumePoint>> Load(const ModelConfig& config);
  // Forgets what was saved (removes the directory's files): the job starts from block 0.
  absl::Status Reset();
  // After block report.index (which must be the next one): its tensors and report, and the next block's input
  // (empty for RTN).
  absl::Status Save(const ModelConfig& config, const HostLayer& layer, const LayerReport& report,
                    std::span<const float> activations);

 private:
  BlockCheckpoint(std::filesystem::path dir, nlohmann::json fingerprint)
      : dir_(std::move(dir)), fingerprint_(std::move(fingerprint)) {}
  absl::Status WriteProgress(const nlohmann::json& activations_entry);

  std::filesystem::path dir_;
  nlohmann::json fingerprint_;
  nlohmann::json blocks_ = nlohmann::json::array();  // progress.json's "blocks" so far
};

}  // namespace nibble
