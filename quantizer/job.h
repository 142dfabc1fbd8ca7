// A whole quantization job, as `nibble quantize` (and later the quantizer service) runs it: load the source
// model, read the calibration text, quantize (quantizer/quantize.h), evaluate perplexity before and after on
// an evaluation text, and either publish the artifact into the model store (quantizer/publisher.h) or, for
// fake-quant evaluation (any bits), only report the figures.
//
// The artifact is evaluated as published: it is written into the staging directory, loaded back by the
// engine's reader and measured there, and the figures go into its nibble.json. One thread; the backend is the
// caller's and only used during the call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

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
};

struct QuantizeJobResult {
  std::optional<uint64_t> version;          // published version (packed jobs)
  std::filesystem::path version_dir;        // its directory
  std::optional<double> source_perplexity;  // on eval_text
  std::optional<double> quantized_perplexity;
  int64_t eval_tokens = 0;  // predicted tokens of each perplexity
  nlohmann::json manifest;  // what nibble.json holds beyond the file list
};

// Progress lines for people: "block 3/32: ..." and the evaluation steps.
using JobLog = std::function<void(const std::string& line)>;

absl::StatusOr<QuantizeJobResult> RunQuantizeJob(Backend& backend, const QuantizeJobSpec& spec, const JobLog& log);

}  // namespace nibble
