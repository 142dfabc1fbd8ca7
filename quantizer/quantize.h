// The quantizer's block loop (../shared/docs/awq.md §3): for each decoder block in order, the full-precision
// pass over the calibration set (its output is the next block's input), the scale search for the four Llama
// scale groups and their folding, the clipping search, then the group quantizer. RTN skips calibration and
// quantizes every Linear as it is. Embeddings, norms and lm_head stay as they are.
//
// The block math runs on `backend` through the engine's forward code (quantizer/block_runner.h). Only one
// block's fp32 weights and the calibration activations are held at a time. One thread; the backend is the
// caller's and only used during the call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/io/host_model.h"
#include "engine/runtime/backend.h"
#include "quantizer/calibration.h"
#include "quantizer/group_quantizer.h"
#include "quantizer/layer_report.h"
#include "quantizer/scale_search.h"

namespace nibble {

enum class QuantMethod { kAwq, kRtn };
absl::string_view QuantMethodName(QuantMethod method);  // "awq", "rtn"
absl::StatusOr<QuantMethod> ParseQuantMethod(absl::string_view name);

struct QuantizeOptions {
  QuantMethod method = QuantMethod::kAwq;
  QuantSpec spec;                                         // bits 4 (3 only when !pack), group size 128
  ScaleSearchMode scale_search = ScaleSearchMode::kBoth;  // AWQ only
  bool pack = true;  // true: AutoAWQ GEMM Linears (an artifact); false: dense fp32 fake-quant (evaluation)
};

struct QuantizeResult {
  HostModel model;  // config.awq set when packed
  std::vector<LayerReport> layers;
};

// The config of `source` once quantized with `options`: config.awq set (AutoAWQ GEMM, zero point) for an
// artifact, unchanged for fake-quant evaluation.
ModelConfig QuantizedConfig(const ModelConfig& source, const QuantizeOptions& options);

// Called after each block with its report.
using LayerProgress = std::function<void(const LayerReport& report, int64_t num_layers)>;

class BlockCheckpoint;  // quantizer/block_checkpoint.h
struct ResumePoint;

// How a caller follows, interrupts and resumes the block loop; every member may be empty.
struct QuantizeHooks {
  LayerProgress progress;                    // after each block done in this call
  const ResumePoint* resume = nullptr;       // blocks finished by an earlier run: the loop starts after them
  BlockCheckpoint* checkpoint = nullptr;     // each finished block is saved here before `progress` hears of it
  std::function<absl::Status()> keep_going;  // asked before each block; a non-OK status (Cancelled) ends the call
};

// `calibration` is required for AWQ and unused by RTN. InvalidArgument naming the tensor for NaN/inf weights,
// naming the option for an unsupported spec (group size the model cannot use, bits other than 4 for an
// artifact) or an already-quantized source, and a resume point that does not fit the model or calibration.
// A run resumed from a checkpoint returns the same model as an uninterrupted one.
absl::StatusOr<QuantizeResult> QuantizeModel(Backend& backend, const HostModel& source,
                                             const CalibrationSet* calibration, const QuantizeOptions& options,
                                             const QuantizeHooks& hooks = {});

}  // namespace nibble
