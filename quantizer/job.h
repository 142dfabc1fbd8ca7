// A whole quantization job, as `nibble quantize` and nibble-quantizer run it: load the source
// model, read the calibration text, quantize (quantizer/quantize.h), evaluate perplexity before and after on
// an evaluation text, and either publish the artifact into the model store (quantizer/publisher.h) or, for
// fake-quant evaluation (any bits), only report the figures.
//
// The artifact is evaluated as published: it is written into the staging directory, loaded back by the
// engine's reader and measured there, and the figures go into its nibble.json. One thread; the backend is the
// caller's and only used during the call.
//
// With a checkpoint directory the job saves each finished block there and a rerun of the same spec resumes
// after the last one saved (a checkpoint that does not verify, or that another spec made, is logged and the
// job starts again from block 0); the published bytes are those of an uninterrupted run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/runtime/backend.h"
#include "nlohmann/json.hpp"
#include "quantizer/calibration.h"
#include "quantizer/quantize.h"

namespace nibble {

struct QuantizeJobSpec {
  std::filesystem::path model_dir;                 // Hugging Face directory of the 16/32-bit source
  std::filesystem::path calibration_path;          // text or JSONL (required for AWQ)
  CalibrationOptions calibration;                  // separator, n_samples, seqlen (0: min(512, model context))
  std::optional<std::filesystem::path> eval_text;  // perplexity before/after on this text (same separator)
  int32_t eval_context = 512;                      // perplexity window
  QuantizeOptions quantize;                        // method, bits, group size, scale search, pack
  std::filesystem::path store_root;                // where to publish (when quantize.pack)
  std::string model_name;                          // store model name (when quantize.pack)
  // Where each finished block is saved (quantizer/block_checkpoint.h) and a rerun of the same job resumes
  // from; nullopt: no checkpoints.
  std::optional<std::filesystem::path> checkpoint_dir;
  // Recorded in nibble.json as "job". A rerun of a job that already published (the process died between the
  // rename into the store and its caller learning of it) finds that version and returns it instead of
  // publishing a second one. Empty: none.
  std::string job_id;
};

struct QuantizeJobResult {
  std::optional<uint64_t> version;          // published version (packed jobs)
  std::filesystem::path version_dir;        // its directory
  std::optional<double> source_perplexity;  // on eval_text
  std::optional<double> quantized_perplexity;
  int64_t eval_tokens = 0;  // predicted tokens of each perplexity
  nlohmann::json manifest;  // what nibble.json holds beyond the file list
};

enum class JobPhase { kLoading, kCalibrating, kSearching, kWriting, kEvaluating, kPublishing };
absl::string_view JobPhaseName(JobPhase phase);  // "loading", ..., "publishing"

// Where a job stands, as its hooks hear it.
struct JobProgress {
  JobPhase phase = JobPhase::kLoading;
  int64_t blocks_done = 0;
  int64_t blocks_total = 0;                   // 0 until the source is loaded
  std::optional<int64_t> resumed_from_block;  // the block this run started at, when it resumed a checkpoint
  std::vector<LayerReport> resumed_blocks;    // then the reports of the blocks before it, from the checkpoint
  const LayerReport* block = nullptr;         // the block just finished (valid during the call), else null
  double seconds_per_block = 0;               // mean over the blocks done in this run
  double eta_seconds = 0;                     // the remaining blocks at that mean
  // Device memory in use above what was in use when the job started, at most so far (sampled at each event;
  // the device's count, so another process's allocations on the same GPU count too).
  uint64_t peak_device_bytes = 0;
};

// Progress lines for people: "block 3/32: ..." and the evaluation steps.
using JobLog = std::function<void(const std::string& line)>;

// How a caller follows and stops a job; every member may be empty. They run on the job's thread.
struct JobHooks {
  JobLog log;
  std::function<void(const JobProgress&)> progress;  // at each phase and after each block
  std::function<absl::Status()> keep_going;          // before each phase and block; non-OK ends the job with it
};

absl::StatusOr<QuantizeJobResult> RunQuantizeJob(Backend& backend, const QuantizeJobSpec& spec, const JobHooks& hooks);

}  // namespace nibble
