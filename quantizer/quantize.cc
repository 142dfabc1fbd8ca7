#include "quantizer/quantize.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/base/parallel_for.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/model_weights.h"
#include "quantizer/block_checkpoint.h"
#include "quantizer/block_runner.h"
#include "quantizer/clip_search.h"
#include "quantizer/float_layer.h"

namespace nibble {
namespace {

// Multiplies input columns of `linear` by `scales`.
void ScaleColumns(FloatLinear& linear, std::span<const float> scales) {
  for (int64_t r = 0; r < linear.out_features; ++r) {
    for (int64_t c = 0; c < linear.in_features; ++c) linear.at(r, c) *= scales[static_cast<size_t>(c)];
  }
}
// Divides output rows (and bias) of `linear` by `scales`.
void DivideRows(FloatLinear& linear, std::span<const float> scales) {
  for (int64_t r = 0; r < linear.out_features; ++r) {
    const float s = scales[static_cast<size_t>(r)];
    for (int64_t c = 0; c < linear.in_features; ++c) linear.at(r, c) /= s;
    if (linear.bias) (*linear.bias)[static_cast<size_t>(r)] /= s;
  }
}
// Divides column c of x [rows, width] (or a norm weight [width]) by scales[c].
void DivideColumns(std::vector<float>& x, std::span<const float> scales) {
  const size_t width = scales.size();
  for (size_t i = 0; i < x.size(); ++i) x[i] /= scales[i % width];
}

absl::StatusOr<std::unique_ptr<LinearWeights>> UploadFused(Backend& backend, std::span<const FloatLinear* const> parts,
                                                           absl::string_view name) {
  std::vector<HostLinear> hosts;
  for (const FloatLinear* part : parts) hosts.push_back(part->ToHost());
  std::vector<const HostLinear*> pointers;
  for (const HostLinear& host : hosts) pointers.push_back(&host);
  NIBBLE_ASSIGN_OR_RETURN(HostLinear fused, ConcatOutputs(pointers, name));
  return backend.UploadLinear(fused);
}

// One block's AWQ: scale search and folding, clipping, against the full-precision capture.
class BlockAwq {
 public:
  BlockAwq(Backend& backend, BlockRunner& runner, ThreadPool& pool, const QuantizeOptions& options, int64_t index)
      : backend_(backend), runner_(runner), pool_(pool), options_(options), index_(index) {}

  absl::Status Run(FloatLayer& layer, LayerWeights& weights, BlockCapture& capture, LayerReport& report) {
    // 1. Search every group's scales against the unmodified block (awq.md §4, §5).
    NIBBLE_ASSIGN_OR_RETURN(ScaleChoice qkv, SearchQkv(layer, weights, capture));
    std::optional<ScaleChoice> vo;
    if (layer.v.out_features == layer.o.in_features) {
      NIBBLE_ASSIGN_OR_RETURN(vo, SearchO(layer, capture));
    }
    NIBBLE_ASSIGN_OR_RETURN(ScaleChoice gate_up, SearchGateUp(layer, weights, capture));
    NIBBLE_ASSIGN_OR_RETURN(ScaleChoice down, SearchDown(layer, capture));
    // 2. Fold them in: the previous op divides, the scaled layers' columns multiply, captured inputs divide.
    DivideColumns(layer.attention_norm, qkv.scales);
    for (FloatLinear* linear : {&layer.q, &layer.k, &layer.v}) ScaleColumns(*linear, qkv.scales);
    DivideColumns(capture.at(TracePoint::kAttentionInput), qkv.scales);
    if (vo) {
      DivideRows(layer.v, vo->scales);
      ScaleColumns(layer.o, vo->scales);
      DivideColumns(capture.at(TracePoint::kOInput), vo->scales);
    }
    DivideColumns(layer.mlp_norm, gate_up.scales);
    for (FloatLinear* linear : {&layer.gate, &layer.up}) ScaleColumns(*linear, gate_up.scales);
    DivideColumns(capture.at(TracePoint::kMlpInput), gate_up.scales);
    DivideRows(layer.up, down.scales);
    ScaleColumns(layer.down, down.scales);
    DivideColumns(capture.at(TracePoint::kDownInput), down.scales);
    report.scale_groups.push_back(Report("q,k,v", qkv));
    if (vo) report.scale_groups.push_back(Report("o", *vo));
    report.scale_groups.push_back(Report("gate,up", gate_up));
    report.scale_groups.push_back(Report("down", down));
    // 3. Clip v, o, gate, up, down on the scaled inputs (q and k are skipped: softmax amplifies their error).
    const std::pair<FloatLinear*, TracePoint> clipped[] = {{&layer.v, TracePoint::kAttentionInput},
                                                           {&layer.o, TracePoint::kOInput},
                                                           {&layer.gate, TracePoint::kMlpInput},
                                                           {&layer.up, TracePoint::kMlpInput},
                                                           {&layer.down, TracePoint::kDownInput}};
    for (const auto& [linear, point] : clipped) {
      report.clip_error +=
          ClipWeights(*linear, capture.at(point), options_.spec, pool_).mean_error / std::size(clipped);
    }
    return absl::OkStatus();
  }

 private:
  std::string What(absl::string_view layers) const { return absl::StrCat("model.layers.", index_, " (", layers, ")"); }
  ScaleGroupReport Report(absl::string_view layers, const ScaleChoice& choice) const {
    return {std::string(layers), std::string(ScaleFormulaName(choice.formula)), choice.alpha, choice.loss,
            choice.loss_at_alpha0};
  }
  absl::StatusOr<ScaleChoice> Search(
      std::span<const FloatLinear* const> scaled, const std::vector<float>& input, const std::vector<float>& reference,
      absl::string_view what, const std::function<absl::StatusOr<std::vector<float>>(std::vector<FloatLinear>&)>& run) {
    const std::vector<float> xmean = ActivationMean(input, scaled.front()->in_features);
    const std::vector<float> wmean = WeightMean(scaled, options_.spec.group_size);
    return SearchScales(
        xmean, wmean, options_.scale_search,
        [&](const std::vector<float>& scales) -> absl::StatusOr<double> {
          std::vector<FloatLinear> candidates;
          for (const FloatLinear* linear : scaled)
            candidates.push_back(ScaledFakeQuantized(*linear, scales, options_.spec));
          NIBBLE_ASSIGN_OR_RETURN(std::vector<float> output, run(candidates));
          return MeanSquaredError(output, reference);
        },
        What(what));
  }

  // q, k, v after the input norm; loss on the attention sub-block's output.
  absl::StatusOr<ScaleChoice> SearchQkv(const FloatLayer& layer, LayerWeights& weights, const BlockCapture& capture) {
    const FloatLinear* scaled[] = {&layer.q, &layer.k, &layer.v};
    return Search(scaled, capture.at(TracePoint::kAttentionInput), capture.at(TracePoint::kAttentionOutput), "q,k,v",
                  [&](std::vector<FloatLinear>& candidates) -> absl::StatusOr<std::vector<float>> {
                    const FloatLinear* parts[] = {&candidates[0], &candidates[1], &candidates[2]};
                    NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<LinearWeights> qkv, UploadFused(backend_, parts, "qkv"));
                    std::swap(weights.qkv, qkv);
                    absl::StatusOr<std::vector<float>> output =
                        runner_.Attention(weights, capture.at(TracePoint::kAttentionInput));
                    std::swap(weights.qkv, qkv);
                    return output;
                  });
  }
  // o after v; loss on o's output.
  absl::StatusOr<ScaleChoice> SearchO(const FloatLayer& layer, const BlockCapture& capture) {
    const FloatLinear* scaled[] = {&layer.o};
    return SearchLinear(scaled, capture.at(TracePoint::kOInput), capture.at(TracePoint::kAttentionOutput), "o");
  }
  // gate, up after the post-attention norm; loss on the MLP sub-block's output.
  absl::StatusOr<ScaleChoice> SearchGateUp(const FloatLayer& layer, LayerWeights& weights,
                                           const BlockCapture& capture) {
    const FloatLinear* scaled[] = {&layer.gate, &layer.up};
    return Search(scaled, capture.at(TracePoint::kMlpInput), capture.at(TracePoint::kMlpOutput), "gate,up",
                  [&](std::vector<FloatLinear>& candidates) -> absl::StatusOr<std::vector<float>> {
                    const FloatLinear* parts[] = {&candidates[0], &candidates[1]};
                    NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<LinearWeights> gate_up,
                                            UploadFused(backend_, parts, "gate_up"));
                    std::swap(weights.gate_up, gate_up);
                    absl::StatusOr<std::vector<float>> output = runner_.Mlp(weights, capture.at(TracePoint::kMlpInput));
                    std::swap(weights.gate_up, gate_up);
                    return output;
                  });
  }
  // down after up; loss on down's output.
  absl::StatusOr<ScaleChoice> SearchDown(const FloatLayer& layer, const BlockCapture& capture) {
    const FloatLinear* scaled[] = {&layer.down};
    return SearchLinear(scaled, capture.at(TracePoint::kDownInput), capture.at(TracePoint::kMlpOutput), "down");
  }
  absl::StatusOr<ScaleChoice> SearchLinear(std::span<const FloatLinear* const> scaled, const std::vector<float>& input,
                                           const std::vector<float>& reference, absl::string_view what) {
    return Search(scaled, input, reference, what,
                  [&](std::vector<FloatLinear>& candidates) -> absl::StatusOr<std::vector<float>> {
                    NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<LinearWeights> linear,
                                            backend_.UploadLinear(candidates[0].ToHost()));
                    return runner_.LinearToHidden(*linear, input, candidates[0].in_features);
                  });
  }

  Backend& backend_;
  BlockRunner& runner_;
  ThreadPool& pool_;
  const QuantizeOptions& options_;
  int64_t index_;
};

// The quantized block: packed AWQ Linears, or dense fake-quantized ones.
HostLayer QuantizedLayer(const FloatLayer& layer, const QuantizeOptions& options, ThreadPool& pool) {
  auto quantize = [&](const FloatLinear& linear) {
    if (!options.pack) {
      FloatLinear fake = linear;
      FakeQuantize(fake.weight, fake.out_features, fake.in_features, options.spec, &pool);
      return fake.ToHost();
    }
    HostLinear host = linear.ToHost();
    host.weight = PackAwq(linear.weight, linear.out_features, linear.in_features, options.spec, &pool);
    return host;
  };
  HostLayer host = layer.ToHost();
  host.q = quantize(layer.q);
  host.k = quantize(layer.k);
  host.v = quantize(layer.v);
  host.o = quantize(layer.o);
  host.gate = quantize(layer.gate);
  host.up = quantize(layer.up);
  host.down = quantize(layer.down);
  return host;
}

absl::Status ValidateOptions(const HostModel& source, const CalibrationSet* calibration,
                             const QuantizeOptions& options) {
  NIBBLE_RETURN_IF_ERROR(ValidateQuantSpec(options.spec, "quantize"));
  if (options.pack && options.spec.bits != 4) {
    return absl::InvalidArgumentError(absl::StrCat("quantize: artifacts are 4-bit (AutoAWQ GEMM); bits ",
                                                   options.spec.bits, " is for fake-quant evaluation only"));
  }
  if (options.method == QuantMethod::kAwq && (calibration == nullptr || calibration->blocks.empty())) {
    return absl::InvalidArgumentError("quantize: AWQ needs calibration data");
  }
  const ModelConfig& config = source.config;
  for (int64_t in : {config.hidden_size, config.q_size(), config.intermediate_size}) {
    if (options.spec.group_size > in) {
      return absl::InvalidArgumentError(absl::StrCat("quantize: group size ", options.spec.group_size,
                                                     " exceeds a Linear's in_features (", in,
                                                     "); this model can use group sizes up to ", in));
    }
  }
  return absl::OkStatus();
}

}  // namespace

ModelConfig QuantizedConfig(const ModelConfig& source, const QuantizeOptions& options) {
  ModelConfig config = source;
  if (options.pack) config.awq = AwqConfig{options.spec.bits, options.spec.group_size, true, "gemm"};
  return config;
}

absl::string_view QuantMethodName(QuantMethod method) { return method == QuantMethod::kAwq ? "awq" : "rtn"; }

absl::StatusOr<QuantMethod> ParseQuantMethod(absl::string_view name) {
  if (name == "awq") return QuantMethod::kAwq;
  if (name == "rtn") return QuantMethod::kRtn;
  return absl::InvalidArgumentError(absl::StrCat("method \"", name, "\" must be awq or rtn"));
}

absl::StatusOr<QuantizeResult> QuantizeModel(Backend& backend, const HostModel& source,
                                             const CalibrationSet* calibration, const QuantizeOptions& options,
                                             const QuantizeHooks& hooks) {
  NIBBLE_RETURN_IF_ERROR(ValidateOptions(source, calibration, options));
  // Every block's weights are checked (finite, not yet quantized) before any work starts.
  for (size_t l = 0; l < source.layers.size(); ++l) {
    NIBBLE_RETURN_IF_ERROR(ToFloatLayer(source.layers[l], static_cast<int64_t>(l)).status());
  }
  const ModelConfig& config = source.config;
  const int64_t num_layers = static_cast<int64_t>(source.layers.size());
  QuantizeResult result;
  result.model = source;
  result.model.config = QuantizedConfig(config, options);

  // 1. Where to start: after the blocks a resumed run finished, else at block 0.
  const int64_t first_block = hooks.resume ? hooks.resume->blocks_done : 0;
  if (first_block > num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: the resume point has ", first_block, " blocks; the model has ", num_layers));
  }
  for (int64_t l = 0; l < first_block; ++l) {
    result.model.layers[static_cast<size_t>(l)] = hooks.resume->layers[static_cast<size_t>(l)];
    result.layers.push_back(hooks.resume->reports[static_cast<size_t>(l)]);
  }

  // 2. AWQ: the block runner and block first_block's input hidden [N * T, D]: the calibration embeddings, or
  // the activations the resume point saved.
  std::optional<BlockRunner> runner;
  std::vector<float> hidden;
  if (options.method == QuantMethod::kAwq) {
    NIBBLE_RETURN_IF_ERROR(CheckFinite(source.embedding, "model.embed_tokens.weight"));
    NIBBLE_RETURN_IF_ERROR(CheckFinite(source.final_norm, "model.norm.weight"));
    NIBBLE_RETURN_IF_ERROR(CheckFinite(source.lm_head, "lm_head.weight"));
    NIBBLE_ASSIGN_OR_RETURN(runner,
                            BlockRunner::Create(backend, config, static_cast<int32_t>(calibration->blocks.size()),
                                                static_cast<int32_t>(calibration->blocks.front().size())));
    if (first_block == 0) {
      NIBBLE_ASSIGN_OR_RETURN(hidden, runner->Embed(source.embedding, calibration->blocks));
    } else if (first_block < num_layers) {
      hidden = hooks.resume->activations;
      if (static_cast<int64_t>(hidden.size()) != runner->num_tokens() * config.hidden_size) {
        return absl::InvalidArgumentError(absl::StrCat("quantize: the resume point's activations hold ", hidden.size(),
                                                       " values; the calibration set needs ",
                                                       runner->num_tokens() * config.hidden_size));
      }
    }
  }

  // 3. Each remaining block in order.
  ThreadPool pool;  // the clip search runs on it
  for (int64_t l = first_block; l < num_layers; ++l) {
    if (hooks.keep_going) NIBBLE_RETURN_IF_ERROR(hooks.keep_going());
    const auto start = std::chrono::steady_clock::now();
    LayerReport report;
    report.index = l;
    NIBBLE_ASSIGN_OR_RETURN(FloatLayer layer, ToFloatLayer(source.layers[static_cast<size_t>(l)], l));
    if (options.method == QuantMethod::kAwq) {
      // a. The full-precision pass: capture every Linear's input; its output is the next block's input.
      const std::vector<float> block_input = hidden;
      NIBBLE_ASSIGN_OR_RETURN(LayerWeights weights,
                              UploadLayer(backend, source.layers[static_cast<size_t>(l)], absl::StrCat("layer ", l)));
      NIBBLE_ASSIGN_OR_RETURN(BlockCapture capture, runner->Run(weights, hidden));
      // b, c. Scale search and folding, clipping.
      NIBBLE_RETURN_IF_ERROR(BlockAwq(backend, *runner, pool, options, l).Run(layer, weights, capture, report));
      // The block's output error once quantized, on the same inputs.
      QuantizeOptions fake = options;
      fake.pack = false;
      NIBBLE_ASSIGN_OR_RETURN(LayerWeights quantized,
                              UploadLayer(backend, QuantizedLayer(layer, fake, pool), absl::StrCat("layer ", l)));
      std::vector<float> output = block_input;
      NIBBLE_RETURN_IF_ERROR(runner->Run(quantized, output).status());
      report.output_mse = MeanSquaredError(output, hidden);
    }
    // d. Quantize (and pack) the block's Linears; save them with the next block's input.
    HostLayer& quantized_layer = result.model.layers[static_cast<size_t>(l)];
    quantized_layer = QuantizedLayer(layer, options, pool);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (hooks.checkpoint) {
      const bool last = l + 1 == num_layers;
      NIBBLE_RETURN_IF_ERROR(hooks.checkpoint->Save(result.model.config, quantized_layer, report,
                                                    last ? std::span<const float>() : std::span<const float>(hidden)));
    }
    if (hooks.progress) hooks.progress(report, num_layers);
    result.layers.push_back(std::move(report));
  }
  return result;
}

}  // namespace nibble
