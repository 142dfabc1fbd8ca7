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
#include "quantizer/block_checkpoint.h"
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

// The regular files of a model directory, sorted.
std::vector<fs::path> RegularFiles(const fs::path& dir) {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// The source's files with their sha256 (provenance in the manifest).
absl::StatusOr<nlohmann::json> SourceFiles(const fs::path& dir) {
  nlohmann::json files = nlohmann::json::array();
  for (const fs::path& path : RegularFiles(dir)) {
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
  for (const LayerReport& layer : layers) reports.push_back(LayerReportJson(layer));
  return reports;
}

// What identifies a job to its checkpoint: the options and the source and calibration files as they are
// (sizes and modification times; hashing a 14 GB source at every start would cost minutes).
absl::StatusOr<nlohmann::json> Fingerprint(const QuantizeJobSpec& spec) {
  auto file_entry = [](const fs::path& path) -> absl::StatusOr<nlohmann::json> {
    std::error_code error;
    const uint64_t bytes = fs::file_size(path, error);
    const auto modified = fs::last_write_time(path, error);
    if (error) return absl::NotFoundError(absl::StrCat(path.string(), ": ", error.message()));
    return nlohmann::json{
        {"path", fs::absolute(path).string()}, {"bytes", bytes}, {"modified", modified.time_since_epoch().count()}};
  };
  const QuantizeOptions& options = spec.quantize;
  nlohmann::json fingerprint = {{"method", QuantMethodName(options.method)},
                                {"bits", options.spec.bits},
                                {"group_size", options.spec.group_size},
                                {"scale_search", ScaleSearchModeName(options.scale_search)},
                                {"pack", options.pack},
                                {"separator", spec.calibration.separator},
                                {"jsonl", spec.calibration.jsonl},
                                {"n_samples", spec.calibration.n_samples},
                                {"seqlen", spec.calibration.seqlen},
                                {"max_document_tokens", spec.calibration.max_document_tokens}};
  for (const fs::path& path : RegularFiles(spec.model_dir)) {
    NIBBLE_ASSIGN_OR_RETURN(nlohmann::json entry, file_entry(path));
    fingerprint["source"].push_back(std::move(entry));
  }
  if (options.method == QuantMethod::kAwq) {
    NIBBLE_ASSIGN_OR_RETURN(fingerprint["calibration"], file_entry(spec.calibration_path));
  }
  return fingerprint;
}

// Follows a job's progress for its hooks: the phase, the blocks, the time per block, the device memory.
class ProgressTracker {
 public:
  ProgressTracker(Backend& backend, const JobHooks& hooks)
      : backend_(backend), hooks_(hooks), used_at_start_(backend.memory_usage().used_bytes) {}

  absl::Status Enter(JobPhase phase) {
    if (hooks_.keep_going) NIBBLE_RETURN_IF_ERROR(hooks_.keep_going());
    progress_.phase = phase;
    Publish(nullptr);
    return absl::OkStatus();
  }
  void Started(int64_t blocks_total, const ResumePoint* resume) {
    progress_.blocks_total = blocks_total;
    if (resume == nullptr) return;
    progress_.blocks_done = resume->blocks_done;
    progress_.resumed_from_block = resume->blocks_done;
    progress_.resumed_blocks = resume->reports;
  }
  void BlockDone(const LayerReport& report) {
    seconds_ += report.seconds;
    ++blocks_this_run_;
    progress_.blocks_done = report.index + 1;
    progress_.seconds_per_block = seconds_ / blocks_this_run_;
    progress_.eta_seconds = progress_.seconds_per_block * (progress_.blocks_total - progress_.blocks_done);
    Publish(&report);
  }
  const JobProgress& progress() const { return progress_; }

 private:
  void Publish(const LayerReport* block) {
    const size_t used = backend_.memory_usage().used_bytes;
    progress_.peak_device_bytes =
        std::max<uint64_t>(progress_.peak_device_bytes, used > used_at_start_ ? used - used_at_start_ : 0);
    progress_.block = block;
    if (hooks_.progress) hooks_.progress(progress_);
    progress_.block = nullptr;
  }

  Backend& backend_;
  const JobHooks& hooks_;
  const size_t used_at_start_;  // the device's memory in use when the job started (other processes' included)
  JobProgress progress_;
  double seconds_ = 0;
  int64_t blocks_this_run_ = 0;
};

// The checkpoint of a job that has a directory for one, and what it holds (nullopt: start at block 0).
struct Checkpoint {
  std::optional<BlockCheckpoint> store;
  std::optional<ResumePoint> resume;
};
absl::StatusOr<Checkpoint> OpenCheckpoint(const QuantizeJobSpec& spec, const ModelConfig& config, const JobLog& log) {
  Checkpoint checkpoint;
  if (!spec.checkpoint_dir) return checkpoint;
  NIBBLE_ASSIGN_OR_RETURN(nlohmann::json fingerprint, Fingerprint(spec));
  NIBBLE_ASSIGN_OR_RETURN(BlockCheckpoint opened, BlockCheckpoint::Open(*spec.checkpoint_dir, std::move(fingerprint)));
  checkpoint.store.emplace(std::move(opened));
  absl::StatusOr<std::optional<ResumePoint>> loaded = checkpoint.store->Load(QuantizedConfig(config, spec.quantize));
  if (!loaded.ok()) {
    log(absl::StrCat("checkpoint not usable, starting again from block 1: ", loaded.status().message()));
    NIBBLE_RETURN_IF_ERROR(checkpoint.store->Reset());
  } else if (*loaded && (*loaded)->blocks_done > 0) {
    checkpoint.resume = std::move(**loaded);
    log(absl::StrCat("resuming from checkpoint ", spec.checkpoint_dir->string(), ": ", checkpoint.resume->blocks_done,
                     " blocks done"));
  }
  return checkpoint;
}

// "block 3/32: 1.20 s, ETA 35 s, ...".
std::string BlockLine(const LayerReport& report, int64_t num_layers, double eta_seconds) {
  std::string line =
      absl::StrFormat("block %d/%d: %.2f s, ETA %.0f s", report.index + 1, num_layers, report.seconds, eta_seconds);
  for (const ScaleGroupReport& group : report.scale_groups) {
    absl::StrAppendFormat(&line, ", %s %s@%.2f loss %.3g (rtn %.3g)", group.layers, group.formula, group.alpha,
                          group.loss, group.loss_at_alpha0);
  }
  if (!report.scale_groups.empty()) absl::StrAppendFormat(&line, ", block output mse %.3g", report.output_mse);
  return line;
}

}  // namespace

absl::string_view JobPhaseName(JobPhase phase) {
  switch (phase) {
    case JobPhase::kLoading:
      return "loading";
    case JobPhase::kCalibrating:
      return "calibrating";
    case JobPhase::kSearching:
      return "searching";
    case JobPhase::kWriting:
      return "writing";
    case JobPhase::kEvaluating:
      return "evaluating";
    case JobPhase::kPublishing:
      return "publishing";
  }
  return "unknown";
}

absl::StatusOr<QuantizeJobResult> RunQuantizeJob(Backend& backend, const QuantizeJobSpec& spec, const JobHooks& hooks) {
  const QuantizeOptions& options = spec.quantize;
  const JobLog log = hooks.log ? hooks.log : [](const std::string&) {};
  ProgressTracker tracker(backend, hooks);
  if (options.pack) NIBBLE_RETURN_IF_ERROR(ValidateModelName(spec.model_name));
  // 0. A job that already published (its process died before it could say so) is done.
  if (options.pack && !spec.job_id.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(std::optional<uint64_t> published,
                            FindVersionOfJob(ModelStore(spec.store_root), spec.model_name, spec.job_id));
    if (published) {
      QuantizeJobResult result;
      result.version = published;
      result.version_dir = ModelStore(spec.store_root).VersionDir(spec.model_name, *published);
      NIBBLE_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(result.version_dir));
      result.manifest = manifest.json;
      log(absl::StrCat("job ", spec.job_id, " already published ", result.version_dir.string()));
      return result;
    }
  }
  // 1. The source model and its tokenizer.
  NIBBLE_RETURN_IF_ERROR(tracker.Enter(JobPhase::kLoading));
  NIBBLE_ASSIGN_OR_RETURN(HostModel source, LoadHostModel(spec.model_dir));
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(spec.model_dir));
  log(absl::StrCat("source ", spec.model_dir.string(), ": ", source.layers.size(), " blocks, hidden ",
                   source.config.hidden_size));
  NIBBLE_ASSIGN_OR_RETURN(Checkpoint checkpoint, OpenCheckpoint(spec, source.config, log));
  tracker.Started(static_cast<int64_t>(source.layers.size()), checkpoint.resume ? &*checkpoint.resume : nullptr);

  // 2. Calibration (AWQ).
  NIBBLE_RETURN_IF_ERROR(tracker.Enter(JobPhase::kCalibrating));
  nlohmann::json manifest;
  if (!spec.job_id.empty()) manifest["job"] = spec.job_id;
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
  NIBBLE_RETURN_IF_ERROR(tracker.Enter(JobPhase::kSearching));
  QuantizeHooks quantize_hooks;
  quantize_hooks.resume = checkpoint.resume ? &*checkpoint.resume : nullptr;
  quantize_hooks.checkpoint = checkpoint.store ? &*checkpoint.store : nullptr;
  quantize_hooks.keep_going = hooks.keep_going;
  quantize_hooks.progress = [&](const LayerReport& report, int64_t num_layers) {
    tracker.BlockDone(report);
    log(BlockLine(report, num_layers, tracker.progress().eta_seconds));
  };
  NIBBLE_ASSIGN_OR_RETURN(
      QuantizeResult quantized,
      QuantizeModel(backend, source, calibration ? &*calibration : nullptr, options, quantize_hooks));
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
    NIBBLE_RETURN_IF_ERROR(tracker.Enter(JobPhase::kWriting));
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
    NIBBLE_RETURN_IF_ERROR(tracker.Enter(JobPhase::kEvaluating));
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
    NIBBLE_RETURN_IF_ERROR(tracker.Enter(JobPhase::kPublishing));
    NIBBLE_ASSIGN_OR_RETURN(result.version, staging->Commit(manifest));
    result.version_dir = ModelStore(spec.store_root).VersionDir(spec.model_name, *result.version);
    log(absl::StrCat("published ", result.version_dir.string()));
  }
  result.manifest = std::move(manifest);
  return result;
}

}  // namespace nibble
