#include "quantizer/block_checkpoint.h"

#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_loader.h"
#include "engine/io/model_store.h"
#include "engine/io/model_writer.h"
#include "engine/io/safetensors.h"
#include "engine/io/tensor_source.h"

namespace nibble {
namespace fs = std::filesystem;
namespace {

constexpr int kFormat = 1;
constexpr char kProgressFile[] = "progress.json";

std::string BlockFileName(int64_t index) { return absl::StrCat("block-", index, ".safetensors"); }
// The calibration activations entering block `index`.
std::string ActivationsFileName(int64_t index) { return absl::StrCat("activations-", index, ".f32"); }

// `path` exists with `bytes` bytes and `sha256` (FailedPrecondition naming it otherwise).
absl::Status VerifyFile(const fs::path& path, uint64_t bytes, const std::string& sha256) {
  std::error_code error;
  const uint64_t size = fs::file_size(path, error);
  if (error) return absl::FailedPreconditionError(absl::StrCat(path.string(), ": missing (", error.message(), ")"));
  if (size != bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(path.string(), ": ", size, " bytes, the checkpoint says ", bytes));
  }
  NIBBLE_ASSIGN_OR_RETURN(std::string actual, Sha256OfFile(path));
  if (actual != sha256) return absl::FailedPreconditionError(absl::StrCat(path.string(), ": sha256 mismatch"));
  return absl::OkStatus();
}

// {"bytes", "sha256"} of a file just written.
absl::StatusOr<nlohmann::json> FileEntry(const fs::path& path) {
  std::error_code error;
  const uint64_t bytes = fs::file_size(path, error);
  if (error) return absl::InternalError(absl::StrCat(path.string(), ": ", error.message()));
  NIBBLE_ASSIGN_OR_RETURN(std::string sha256, Sha256OfFile(path));
  return nlohmann::json{{"bytes", bytes}, {"sha256", sha256}};
}

absl::StatusOr<HostLayer> LoadBlock(const ModelConfig& config, const fs::path& path, int64_t index) {
  NIBBLE_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path));
  std::vector<NamedTensor> tensors;
  for (const std::string& name : file.names()) {
    NIBBLE_ASSIGN_OR_RETURN(HostTensor tensor, file.Get(name));
    tensors.push_back({name, std::move(tensor)});
  }
  NIBBLE_ASSIGN_OR_RETURN(TensorSource source, TensorSource::FromTensors(tensors, path.string()));
  return AssembleHostLayer(config, source, index, "the job's model config");
}

absl::StatusOr<std::vector<float>> LoadActivations(const fs::path& path, const nlohmann::json& entry) {
  NIBBLE_RETURN_IF_ERROR(VerifyFile(path, entry.at("bytes").get<uint64_t>(), entry.at("sha256").get<std::string>()));
  NIBBLE_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapped, MappedFile::Open(path));
  if (mapped->size() % sizeof(float) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(path.string(), ": not a whole number of fp32 values"));
  }
  std::vector<float> values(mapped->size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), mapped->data(), mapped->size());
  return values;
}

}  // namespace

absl::StatusOr<BlockCheckpoint> BlockCheckpoint::Open(fs::path dir, nlohmann::json fingerprint) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat(dir.string(), ": cannot create: ", error.message()));
  return BlockCheckpoint(std::move(dir), std::move(fingerprint));
}

absl::StatusOr<std::optional<ResumePoint>> BlockCheckpoint::Load(const ModelConfig& config) {
  const fs::path progress_path = dir_ / kProgressFile;
  if (!fs::exists(progress_path)) return std::nullopt;
  NIBBLE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(progress_path));
  ResumePoint resume;
  nlohmann::json blocks;
  try {
    const nlohmann::json progress = nlohmann::json::parse(text);
    if (progress.at("format").get<int>() != kFormat) {
      return absl::FailedPreconditionError(absl::StrCat(progress_path.string(), ": format ",
                                                        progress.at("format").dump(), ", this build reads ", kFormat));
    }
    if (progress.at("fingerprint") != fingerprint_) {
      return absl::FailedPreconditionError(absl::StrCat(
          progress_path.string(), ": saved by another job, or its source or calibration files have changed since"));
    }
    blocks = progress.at("blocks");
    for (const nlohmann::json& block : blocks) {
      const int64_t index = resume.blocks_done;
      const fs::path path = dir_ / block.at("file").get<std::string>();
      if (path.filename() != BlockFileName(index)) {
        return absl::FailedPreconditionError(
            absl::StrCat(progress_path.string(), ": block ", index, " is in ", path.filename().string()));
      }
      NIBBLE_RETURN_IF_ERROR(
          VerifyFile(path, block.at("bytes").get<uint64_t>(), block.at("sha256").get<std::string>()));
      NIBBLE_ASSIGN_OR_RETURN(HostLayer layer, LoadBlock(config, path, index));
      NIBBLE_ASSIGN_OR_RETURN(LayerReport report, LayerReportFromJson(block.at("report")));
      resume.layers.push_back(std::move(layer));
      resume.reports.push_back(std::move(report));
      ++resume.blocks_done;
    }
    if (const nlohmann::json& activations = progress.at("activations"); !activations.is_null()) {
      const std::string file = activations.at("file").get<std::string>();
      if (file != ActivationsFileName(resume.blocks_done)) {
        return absl::FailedPreconditionError(
            absl::StrCat(progress_path.string(), ": the input of block ", resume.blocks_done, " is in ", file));
      }
      NIBBLE_ASSIGN_OR_RETURN(resume.activations, LoadActivations(dir_ / file, activations));
    }
  } catch (const nlohmann::json::exception& error) {
    return absl::InvalidArgumentError(absl::StrCat(progress_path.string(), ": ", error.what()));
  }
  blocks_ = std::move(blocks);
  return resume;
}

absl::Status BlockCheckpoint::Reset() {
  std::error_code error;
  fs::remove_all(dir_, error);
  if (!error) fs::create_directories(dir_, error);
  if (error) return absl::InternalError(absl::StrCat(dir_.string(), ": cannot reset: ", error.message()));
  blocks_ = nlohmann::json::array();
  return absl::OkStatus();
}

absl::Status BlockCheckpoint::Save(const ModelConfig& config, const HostLayer& layer, const LayerReport& report,
                                   std::span<const float> activations) {
  if (report.index != static_cast<int64_t>(blocks_.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_.string(), ": block ", report.index, " saved after ", blocks_.size(), " blocks"));
  }
  // 1. The block's tensors, then the activations, each complete on disk before progress.json names it.
  const std::string file = BlockFileName(report.index);
  NIBBLE_RETURN_IF_ERROR(WriteSafetensors(dir_ / file, LayerTensors(config, layer, report.index), {}, /*sync=*/true));
  NIBBLE_ASSIGN_OR_RETURN(nlohmann::json block, FileEntry(dir_ / file));
  block["file"] = file;
  block["report"] = LayerReportJson(report);
  nlohmann::json activations_entry = nullptr;
  const fs::path activations_path = dir_ / ActivationsFileName(report.index + 1);
  if (!activations.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(FileWriter writer, FileWriter::Create(activations_path));
    NIBBLE_RETURN_IF_ERROR(writer.Write(activations.data(), activations.size_bytes()));
    NIBBLE_RETURN_IF_ERROR(writer.Close(/*sync=*/true));
    NIBBLE_ASSIGN_OR_RETURN(activations_entry, FileEntry(activations_path));
    activations_entry["file"] = activations_path.filename().string();
  }
  // 2. progress.json, atomically; then the previous block's activations are no longer named and go.
  blocks_.push_back(std::move(block));
  if (absl::Status written = WriteProgress(activations_entry); !written.ok()) {
    blocks_.erase(blocks_.size() - 1);
    return written;
  }
  std::error_code ignored;
  fs::remove(dir_ / ActivationsFileName(report.index), ignored);
  return absl::OkStatus();
}

absl::Status BlockCheckpoint::WriteProgress(const nlohmann::json& activations_entry) {
  const nlohmann::json progress = {
      {"format", kFormat}, {"fingerprint", fingerprint_}, {"blocks", blocks_}, {"activations", activations_entry}};
  return ReplaceFileDurably(dir_ / kProgressFile, progress.dump(1));
}

}  // namespace nibble
