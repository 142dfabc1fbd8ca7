#include "quantizer/job.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_loader.h"
#include "engine/io/model_store.h"
#include "engine/io/model_writer.h"
#include "engine/runtime/model.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tools/documents.h"
#include "engine/tools/perplexity.h"
#include "quantizer/publisher.h"

namespace nibble {
namespace fs = std::filesystem;
namespace {

// Files of a model directory that are not weights or config: copied into the artifact as they are.
constexpr const char* kTokenizerFiles[] = {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                                           "special_tokens_map.json", "generation_config.json"};

absl::Status CopyTokenizerFiles(const fs::path& source_dir, const fs::path& dir) {
  for (const char* name : kTokenizerFiles) {
    if (!fs::exists(source_dir / name)) continue;
    NIBBLE_RETURN_IF_ERROR(CopyFileContents(source_dir / name, dir / name, /*sync=*/true));
  }
  return absl::OkStatus();
}

// The source's files with their sha256 (provenance in the manifest).
absl::StatusOr<nlohmann::json> SourceFiles(const fs::path& dir) {
  nlohmann::json files = nlohmann::json::array();
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const fs::path& path : paths) {
    NIBBLE_ASSIGN_OR_RETURN(std::string sha256, Sha256OfFile(path));
    files.push_back({{"path", path.filename().string()}, {"sha256", sha256}});
  }
  return files;
}

absl::StatusOr<PerplexityResult> EvaluatePerplexity(Backend& backend, const HostModel& model,
                                                    const std::vector<std::vector<int32_t>>& documents,
                                                    int32_t context) {
  ModelOptions options;
  options.max_step_tokens = std::max(context, 2048);
  options.max_seqs = 8;
  options.max_context = context;
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Model> loaded, Model::Create(backend, model, options));
  return Perplexity(*loaded, documents, context);
}

nlohmann::json LayerReports(const std::vector<LayerReport>& layers) {
  nlohmann::json reports = nlohmann::json::array();
  for (const LayerReport& layer : layers) {
    nlohmann::json groups = nlohmann::json::array();
    for (const ScaleGroupReport& group : layer.scale_groups) {
      groups.push_back({{"layers", group.layers},
                        {"formula", group.formula},
                        {"alpha", group.alpha},
                        {"loss", group.loss},
                        {"loss_rtn", group.loss_at_alpha0}});
    }
    reports.push_back({{"layer", layer.index},
                       {"scale_groups", groups},
                       {"clip_error", layer.clip_error},
                       {"output_mse", layer.output_mse},
                       {"seconds", layer.seconds}});
  }
  return reports;
}

// "block 3/32: 1.20 s, ETA 35 s, ...": the ETA assumes the remaining blocks take the mean of the blocks so far
// (`seconds_so_far`, this one included).
std::string BlockLine(const LayerReport& report, int64_t num_layers, double seconds_so_far) {
  const double eta = seconds_so_far / (report.index + 1) * (num_layers - report.index - 1);
  std::string line =
      absl::StrFormat("block %d/%d: %.2f s, ETA %.0f s", report.index + 1, num_layers, report.seconds, eta);
  for (const ScaleGroupReport& group : report.scale_groups) {
    absl::StrAppendFormat(&line, ", %s %s@%.2f loss %.3g (rtn %.3g)", group.layers, group.formula, group.alpha,
                          group.loss, group.loss_at_alpha0);
  }
  if (!report.scale_groups.empty()) absl::StrAppendFormat(&line, ", block output mse %.3g", report.output_mse);
  return line;
}

}  // namespace

absl::StatusOr<QuantizeJobResult> RunQuantizeJob(Backend& backend, const QuantizeJobSpec& spec, const JobLog& log) {
  const QuantizeOptions& options = spec.quantize;
  if (options.pack) NIBBLE_RETURN_IF_ERROR(ValidateModelName(spec.model_name));
  // 1. The source model and its tokenizer.
  NIBBLE_ASSIGN_OR_RETURN(HostModel source, LoadHostModel(spec.model_dir));
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(spec.model_dir));
  log(absl::StrCat("source ", spec.model_dir.string(), ": ", source.layers.size(), " blocks, hidden ",
                   source.config.hidden_size));

  // 2. Calibration (AWQ).
  nlohmann::json manifest;
  std::optional<CalibrationSet> calibration;
  if (options.method == QuantMethod::kAwq) {
    CalibrationOptions calibration_options = spec.calibration;
    if (calibration_options.seqlen == 0) {
      calibration_options.seqlen = static_cast<int32_t>(std::min<int64_t>(512, source.config.max_position_embeddings));
    }
    NIBBLE_ASSIGN_OR_RETURN(calibration, LoadCalibration(spec.calibration_path, *tokenizer, calibration_options));
    log(absl::StrCat("calibration ", spec.calibration_path.string(), ": ", calibration->documents_used, " of ",
                     calibration->documents, " documents, ", calibration->tokens_used, " tokens, ",
                     calibration->blocks.size(), " blocks of ", calibration_options.seqlen));
    manifest["calibration"] = {{"path", fs::absolute(spec.calibration_path).string()},
                               {"sha256", calibration->source_sha256},
                               {"separator", calibration_options.separator},
                               {"n_samples", calibration_options.n_samples},
                               {"seqlen", calibration_options.seqlen},
                               {"documents_used", calibration->documents_used},
                               {"blocks", calibration->blocks.size()}};
  }

  // 3. Quantize, block by block.
  NIBBLE_ASSIGN_OR_RETURN(
      QuantizeResult quantized,
      QuantizeModel(backend, source, calibration ? &*calibration : nullptr, options,
                    [&, seconds_so_far = 0.0](const LayerReport& report, int64_t num_layers) mutable {
                      seconds_so_far += report.seconds;
                      log(BlockLine(report, num_layers, seconds_so_far));
                    }));
  manifest["quantization"] = {{"method", QuantMethodName(options.method)},
                              {"bits", options.spec.bits},
                              {"group_size", options.spec.group_size},
                              {"zero_point", true},
                              {"version", "gemm"}};
  if (options.method == QuantMethod::kAwq) {
    manifest["quantization"]["scale_search"] = ScaleSearchModeName(options.scale_search);
  }
  manifest["layers"] = LayerReports(quantized.layers);
  NIBBLE_ASSIGN_OR_RETURN(nlohmann::json source_files, SourceFiles(spec.model_dir));
  manifest["source"] = {{"path", fs::absolute(spec.model_dir).string()}, {"files", source_files}};

  // 4. Write the artifact into a staging version (packed jobs); the model to evaluate is what was written.
  QuantizeJobResult result;
  std::optional<StagingVersion> staging;
  HostModel evaluated = quantized.model;
  if (options.pack) {
    NIBBLE_ASSIGN_OR_RETURN(StagingVersion begun, StagingVersion::Begin(ModelStore(spec.store_root), spec.model_name));
    staging.emplace(std::move(begun));
    ModelWriteOptions write_options;
    write_options.sync = true;
    NIBBLE_RETURN_IF_ERROR(WriteHostModel(staging->dir(), quantized.model, write_options).status());
    NIBBLE_RETURN_IF_ERROR(CopyTokenizerFiles(spec.model_dir, staging->dir()));
    NIBBLE_ASSIGN_OR_RETURN(evaluated, LoadHostModel(staging->dir()));
  }

  // 5. Quality: perplexity of the source and of the quantized model on the evaluation text.
  if (spec.eval_text) {
    NIBBLE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(*spec.eval_text));
    NIBBLE_ASSIGN_OR_RETURN(auto documents,
                            TokenizeDocuments(*tokenizer, SplitDocuments(text, spec.calibration.separator)));
    NIBBLE_ASSIGN_OR_RETURN(PerplexityResult before, EvaluatePerplexity(backend, source, documents, spec.eval_context));
    NIBBLE_ASSIGN_OR_RETURN(PerplexityResult after,
                            EvaluatePerplexity(backend, evaluated, documents, spec.eval_context));
    result.source_perplexity = before.perplexity;
    result.quantized_perplexity = after.perplexity;
    result.eval_tokens = after.predicted_tokens;
    NIBBLE_ASSIGN_OR_RETURN(std::string eval_sha256, Sha256OfFile(*spec.eval_text));
    manifest["quality"] = {{"eval_text", fs::absolute(*spec.eval_text).string()},
                           {"eval_sha256", eval_sha256},
                           {"context", spec.eval_context},
                           {"predicted_tokens", after.predicted_tokens},
                           {"perplexity_source", before.perplexity},
                           {"perplexity_quantized", after.perplexity},
                           {"note", "token-level perplexity"}};
    log(absl::StrFormat("perplexity on %s (%d tokens): source %.4f, quantized %.4f (%+.2f%%)", spec.eval_text->string(),
                        after.predicted_tokens, before.perplexity, after.perplexity,
                        100.0 * (after.perplexity / before.perplexity - 1.0)));
  }

  // 6. Publish.
  if (staging) {
    NIBBLE_ASSIGN_OR_RETURN(result.version, staging->Commit(manifest));
    result.version_dir = ModelStore(spec.store_root).VersionDir(spec.model_name, *result.version);
    log(absl::StrCat("published ", result.version_dir.string()));
  }
  result.manifest = std::move(manifest);
  return result;
}

}  // namespace nibble
