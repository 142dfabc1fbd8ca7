#include "service/quantizer_server/job_spec.h"

#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_config.h"
#include "engine/io/model_store.h"

namespace nibble::quantizer_server {
namespace fs = std::filesystem;
namespace {

constexpr uint32_t kMaxSamples = 4096;
constexpr uint32_t kMinSeqlen = 16;
constexpr size_t kMaxSeparatorBytes = 256;
constexpr size_t kMaxPathBytes = 4096;

absl::Status FieldError(absl::StatusCode code, absl::string_view field, absl::string_view message) {
  return absl::Status(code, absl::StrCat("spec.", field, ": ", message));
}
absl::Status Invalid(absl::string_view field, absl::string_view message) {
  return FieldError(absl::StatusCode::kInvalidArgument, field, message);
}

bool Inside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

// `text` (a client path) resolved with symbolic links followed, which must lie inside a source root and exist
// as a directory (`directory`) or a regular file.
absl::StatusOr<fs::path> ResolvePath(absl::string_view field, const std::string& text, bool directory,
                                     const JobSpecContext& context) {
  if (text.empty()) return Invalid(field, "required");
  if (text.size() > kMaxPathBytes || text.find('\0') != std::string::npos) {
    return Invalid(field, absl::StrCat("not a usable path: ", QuotedPrefix(text)));
  }
  std::error_code error;
  const fs::path resolved = fs::weakly_canonical(fs::absolute(fs::path(text)), error);
  if (error) return Invalid(field, absl::StrCat(QuotedPrefix(text), ": ", error.message()));
  bool inside = false;
  for (const fs::path& root : context.source_roots) inside = inside || Inside(resolved, root);
  if (!inside) {
    std::vector<std::string> roots;
    for (const fs::path& root : context.source_roots) roots.push_back(root.string());
    return FieldError(absl::StatusCode::kPermissionDenied, field,
                      absl::StrCat(QuotedPrefix(resolved.string()), " is outside the source roots (",
                                   absl::StrJoin(roots, ", "), ")"));
  }
  const fs::file_status status = fs::status(resolved, error);
  if (error || !fs::exists(status)) {
    return FieldError(absl::StatusCode::kNotFound, field,
                      absl::StrCat(QuotedPrefix(resolved.string()), " does not exist"));
  }
  if (directory ? !fs::is_directory(status) : !fs::is_regular_file(status)) {
    return Invalid(field,
                   absl::StrCat(QuotedPrefix(resolved.string()), " is not a ", directory ? "directory" : "file"));
  }
  return resolved;
}

absl::StatusOr<QuantMethod> Method(v1::QuantMethod method) {
  switch (method) {
    case v1::QUANT_METHOD_UNSPECIFIED:
    case v1::QUANT_METHOD_AWQ:
      return QuantMethod::kAwq;
    case v1::QUANT_METHOD_RTN:
      return QuantMethod::kRtn;
    default:
      return Invalid("method", absl::StrCat(static_cast<int>(method), " is not a method (AWQ 1, RTN 2)"));
  }
}

absl::StatusOr<ScaleSearchMode> ScaleSearch(v1::ScaleSearch mode) {
  switch (mode) {
    case v1::SCALE_SEARCH_UNSPECIFIED:
    case v1::SCALE_SEARCH_BOTH:
      return ScaleSearchMode::kBoth;
    case v1::SCALE_SEARCH_ACT:
      return ScaleSearchMode::kActivation;
    case v1::SCALE_SEARCH_DUO:
      return ScaleSearchMode::kDuo;
    default:
      return Invalid("scale_search",
                     absl::StrCat(static_cast<int>(mode), " is not a scale search (ACT 1, DUO 2, BOTH 3)"));
  }
}

// The model's widths and context against the group size and seqlen.
absl::Status CheckAgainstModel(const ModelConfig& config, const QuantizeJobSpec& spec, bool seqlen_given) {
  if (config.awq) return Invalid("source_model", "is already quantized (config.json has a quantization_config)");
  const int group_size = spec.quantize.spec.group_size;
  for (const auto& [name, in] : {std::pair<const char*, int64_t>{"hidden_size", config.hidden_size},
                                 {"the attention width (num_heads x head_dim)", config.q_size()},
                                 {"intermediate_size", config.intermediate_size}}) {
    if (group_size > in) {
      return Invalid("group_size", absl::StrCat(group_size, " exceeds the model's ", name, " (", in,
                                                "): this model can use group sizes up to ", in));
    }
  }
  if (seqlen_given && spec.calibration.seqlen > config.max_position_embeddings) {
    return Invalid("seqlen", absl::StrCat(spec.calibration.seqlen, " exceeds the model's context (",
                                          config.max_position_embeddings, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizeJobSpec> ResolveJobSpec(const v1::JobSpec& spec, const JobSpecContext& context,
                                               const std::string& job_id) {
  QuantizeJobSpec job;
  // 1. Numbers and enums.
  NIBBLE_ASSIGN_OR_RETURN(job.quantize.method, Method(spec.method()));
  NIBBLE_ASSIGN_OR_RETURN(job.quantize.scale_search, ScaleSearch(spec.scale_search()));
  const bool awq = job.quantize.method == QuantMethod::kAwq;
  if (spec.has_bits() && spec.bits() != 4) {
    return Invalid("bits", absl::StrCat(spec.bits(), ": artifacts are 4-bit (AutoAWQ GEMM)"));
  }
  const uint32_t group_size = spec.has_group_size() ? spec.group_size() : 128;
  if (group_size != 32 && group_size != 64 && group_size != 128) {
    return Invalid("group_size", absl::StrCat(group_size, " is not 32, 64 or 128"));
  }
  job.quantize.spec.group_size = static_cast<int>(group_size);
  if (spec.has_n_samples() && (spec.n_samples() < 1 || spec.n_samples() > kMaxSamples)) {
    return Invalid("n_samples", absl::StrCat(spec.n_samples(), " is outside 1..", kMaxSamples));
  }
  job.calibration.n_samples = static_cast<int32_t>(spec.has_n_samples() ? spec.n_samples() : 128);
  if (spec.has_seqlen() && (spec.seqlen() < kMinSeqlen || spec.seqlen() > (1u << 20))) {
    return Invalid("seqlen", absl::StrCat(spec.seqlen(), " is outside ", kMinSeqlen, "..the model's context"));
  }
  job.calibration.seqlen = static_cast<int32_t>(spec.has_seqlen() ? spec.seqlen() : 0);
  if (spec.separator().size() > kMaxSeparatorBytes) {
    return Invalid("separator", absl::StrCat(spec.separator().size(), " bytes; at most ", kMaxSeparatorBytes));
  }
  job.calibration.separator = spec.separator();
  // 2. The model name.
  if (absl::Status name = ValidateModelName(spec.name()); !name.ok()) return Invalid("name", name.message());
  job.model_name = spec.name();
  // 3. Paths, confined to the source roots.
  NIBBLE_ASSIGN_OR_RETURN(job.model_dir, ResolvePath("source_model", spec.source_model(), /*directory=*/true, context));
  if (awq) {
    NIBBLE_ASSIGN_OR_RETURN(job.calibration_path,
                            ResolvePath("calibration_file", spec.calibration_file(), /*directory=*/false, context));
    job.calibration.jsonl = job.calibration_path.extension() == ".jsonl";
  } else if (!spec.calibration_file().empty()) {
    return Invalid("calibration_file", "RTN takes no calibration");
  }
  if (!spec.eval_text().empty()) {
    NIBBLE_ASSIGN_OR_RETURN(job.eval_text, ResolvePath("eval_text", spec.eval_text(), /*directory=*/false, context));
  }
  // 4. The source model's config.
  absl::StatusOr<ModelConfig> config = ReadModelConfig(job.model_dir);
  if (!config.ok()) return Invalid("source_model", config.status().message());
  NIBBLE_RETURN_IF_ERROR(CheckAgainstModel(*config, job, spec.has_seqlen()));

  job.store_root = context.store_root;
  job.checkpoint_dir = context.checkpoints_root / job_id;
  job.job_id = job_id;
  return job;
}

}  // namespace nibble::quantizer_server
