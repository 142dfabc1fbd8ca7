// The model store, write side (../shared/docs/design.md, "The model store"; the read side is
// engine/io/model_store.h). A version is published atomically:
//   1. StagingVersion::Begin makes <root>/<model>/.staging-<host>-<pid>-<nonce>/, which the caller fills;
//   2. Commit writes nibble.json (the caller's fields plus every file's size and sha256, the creation time and
//      the tool version), fsyncs every file and the directory, verifies the checksums against what is on disk,
//      then renames the directory to <root>/<model>/<N>/ with N = highest version + 1. The rename refuses to
//      replace an existing directory (renameat2 RENAME_NOREPLACE), so two publishers, in one process or many,
//      never give out the same number: the loser takes the next one.
// A crash before the rename leaves only the staging directory, which readers ignore and
// RemoveStaleStaging (run when a quantizer starts) deletes. A StagingVersion destroyed without a successful
// Commit removes its directory.
//
// Threading: a StagingVersion is used by one thread; distinct StagingVersions (and processes) may publish into
// the same model concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/io/model_store.h"
#include "nlohmann/json.hpp"

namespace nibble {

inline constexpr char kStagingPrefix[] = ".staging-";

class StagingVersion {
 public:
  // Validates the model name and creates the model and staging directories.
  static absl::StatusOr<StagingVersion> Begin(const ModelStore& store, absl::string_view model);
  StagingVersion(StagingVersion&& other) noexcept;
  StagingVersion& operator=(StagingVersion&& other) = delete;
  StagingVersion(const StagingVersion&) = delete;
  StagingVersion& operator=(const StagingVersion&) = delete;
  ~StagingVersion();  // removes the staging directory unless committed

  // Where the caller writes the version's files (flat: no subdirectories).
  const std::filesystem::path& dir() const { return dir_; }

  // Publishes the staged files with `manifest_fields` (an object; "format_version", "files", "created" and
  // "tool_version" are filled in here) and returns the version number. On failure the staging directory is
  // removed and the error says what failed and that nothing was published.
  absl::StatusOr<uint64_t> Commit(const nlohmann::json& manifest_fields);

 private:
  StagingVersion(ModelStore store, std::string model, std::filesystem::path dir)
      : store_(std::move(store)), model_(std::move(model)), dir_(std::move(dir)) {}
  absl::StatusOr<uint64_t> CommitOrFail(const nlohmann::json& manifest_fields);
  void Remove();

  ModelStore store_;
  std::string model_;
  std::filesystem::path dir_;  // empty once committed or moved from
};

// Copies the regular files of a Hugging Face model directory (config.json, safetensors, tokenizer files)
// into a new version of `model` and publishes it: how an unquantized model enters the store.
absl::StatusOr<uint64_t> PublishDirectory(const ModelStore& store, absl::string_view model,
                                          const std::filesystem::path& source_dir,
                                          const nlohmann::json& manifest_fields);

// The version of `model` whose nibble.json says it was published by `job_id` ("job"), if any (a model without
// a directory has none). Versions whose manifest cannot be read are skipped.
absl::StatusOr<std::optional<uint64_t>> FindVersionOfJob(const ModelStore& store, absl::string_view model,
                                                         absl::string_view job_id);

// Deletes the staging directories of every model whose publisher is gone: those made on this host by a
// process that no longer exists, and those of other hosts older than `foreign_age`. Returns how many it removed.
absl::StatusOr<int> RemoveStaleStaging(const ModelStore& store,
                                       std::chrono::seconds foreign_age = std::chrono::hours(24));

}  // namespace nibble
