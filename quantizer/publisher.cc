#include "quantizer/publisher.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "engine/base/version.h"

namespace nibble {
namespace fs = std::filesystem;
namespace {

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "host";
  std::string host(name);
  // Keep the staging name parseable: the host part holds no '-'-free guarantee, so map it to [A-Za-z0-9.].
  for (char& c : host) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.')) c = '_';
  }
  return host;
}

// The staged files, sorted by name (nibble.json excluded); InvalidArgument on anything that is not a plain file.
absl::StatusOr<std::vector<fs::path>> StagedFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (!entry.is_regular_file()) {
      return absl::InvalidArgumentError(
          absl::StrCat(entry.path().string(), ": a published version holds only plain files"));
    }
    if (entry.path().filename() != kManifestFileName) files.push_back(entry.path());
  }
  if (error) return absl::InternalError(absl::StrCat(dir.string(), ": cannot list: ", error.message()));
  std::sort(files.begin(), files.end());
  return files;
}

std::string NowUtc() { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()); }

}  // namespace

absl::StatusOr<StagingVersion> StagingVersion::Begin(const ModelStore& store, absl::string_view model) {
  NIBBLE_RETURN_IF_ERROR(ValidateModelName(model));
  const fs::path model_dir = store.ModelDir(model);
  std::error_code error;
  fs::create_directories(model_dir, error);
  if (error) return absl::InternalError(absl::StrCat(model_dir.string(), ": cannot create: ", error.message()));
  std::random_device random;
  const std::string name =
      absl::StrCat(kStagingPrefix, HostName(), "-", getpid(), "-", absl::Hex(random(), absl::kZeroPad8));
  fs::path dir = model_dir / name;
  if (!fs::create_directory(dir, error) || error) {
    return absl::InternalError(absl::StrCat(
        dir.string(), ": cannot create the staging directory: ", error ? error.message() : "it already exists"));
  }
  return StagingVersion(store, std::string(model), std::move(dir));
}

StagingVersion::StagingVersion(StagingVersion&& other) noexcept
    : store_(other.store_), model_(std::move(other.model_)), dir_(std::move(other.dir_)) {
  other.dir_.clear();
}

StagingVersion::~StagingVersion() { Remove(); }

void StagingVersion::Remove() {
  if (dir_.empty()) return;
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
  dir_.clear();
}

absl::StatusOr<uint64_t> StagingVersion::Commit(const nlohmann::json& manifest_fields) {
  if (dir_.empty()) return absl::FailedPreconditionError("this staging version was already committed or removed");
  absl::StatusOr<uint64_t> version = CommitOrFail(manifest_fields);
  if (!version.ok()) {
    const std::string staging = dir_.string();
    Remove();
    return absl::Status(version.status().code(),
                        absl::StrCat("publishing ", model_, " failed, nothing was published (staging directory ",
                                     staging, " removed): ", version.status().message()));
  }
  dir_.clear();
  return version;
}

absl::StatusOr<uint64_t> StagingVersion::CommitOrFail(const nlohmann::json& manifest_fields) {
  if (!manifest_fields.is_object()) return absl::InvalidArgumentError("manifest fields must be a JSON object");
  // 1. Every staged file: flushed to disk, then hashed from disk.
  NIBBLE_ASSIGN_OR_RETURN(std::vector<fs::path> files, StagedFiles(dir_));
  if (files.empty()) return absl::InvalidArgumentError(absl::StrCat(dir_.string(), ": nothing to publish"));
  nlohmann::json manifest = manifest_fields;
  manifest["format_version"] = kManifestFormatVersion;
  manifest["created"] = NowUtc();
  manifest["tool_version"] = absl::StrCat("nibble ", kNibbleVersion);
  nlohmann::json listed = nlohmann::json::array();
  for (const fs::path& file : files) {
    NIBBLE_RETURN_IF_ERROR(SyncPath(file, /*directory=*/false));
    NIBBLE_ASSIGN_OR_RETURN(std::string sha256, Sha256OfFile(file));
    listed.push_back({{"path", file.filename().string()}, {"bytes", fs::file_size(file)}, {"sha256", sha256}});
  }
  manifest["files"] = std::move(listed);
  // 2. The manifest, then the directory entry of every file.
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(dir_ / kManifestFileName, manifest.dump(2) + "\n", /*sync=*/true));
  NIBBLE_RETURN_IF_ERROR(SyncPath(dir_, /*directory=*/true));
  // 3. What is on disk is what the manifest says (the same check readers make before serving).
  NIBBLE_RETURN_IF_ERROR(VerifyVersionDir(dir_).status());
  // 4. Rename to the next free number; a concurrent publisher that took it makes the rename fail with EEXIST.
  const fs::path model_dir = store_.ModelDir(model_);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    absl::StatusOr<uint64_t> latest = store_.LatestVersion(model_);
    if (!latest.ok() && !absl::IsNotFound(latest.status())) return latest.status();
    const uint64_t version = latest.ok() ? *latest + 1 : 1;
    const fs::path target = store_.VersionDir(model_, version);
    if (renameat2(AT_FDCWD, dir_.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) {
      NIBBLE_RETURN_IF_ERROR(SyncPath(model_dir, /*directory=*/true));
      return version;
    }
    if (errno != EEXIST && errno != ENOTEMPTY) {
      return absl::InternalError(
          absl::StrCat("cannot rename ", dir_.string(), " to ", target.string(), ": ", std::strerror(errno)));
    }
  }
  return absl::AbortedError(absl::StrCat(model_dir.string(), ": no free version number after 1000 attempts"));
}

absl::StatusOr<uint64_t> PublishDirectory(const ModelStore& store, absl::string_view model, const fs::path& source_dir,
                                          const nlohmann::json& manifest_fields) {
  if (!fs::is_directory(source_dir)) {
    return absl::NotFoundError(absl::StrCat(source_dir.string(), ": not a directory"));
  }
  NIBBLE_ASSIGN_OR_RETURN(StagingVersion staging, StagingVersion::Begin(store, model));
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(source_dir, error)) {
    if (!entry.is_regular_file() || entry.path().filename() == kManifestFileName) continue;
    const absl::Status written = CopyFileContents(entry.path(), staging.dir() / entry.path().filename(), /*sync=*/true);
    if (!written.ok()) {
      return absl::Status(written.code(), absl::StrCat("publishing ", model, " failed, nothing was published (staging ",
                                                       "directory removed): ", written.message()));
    }
  }
  if (error) return absl::InternalError(absl::StrCat(source_dir.string(), ": cannot list: ", error.message()));
  nlohmann::json fields = manifest_fields;
  if (!fields.contains("source")) fields["source"] = {{"path", fs::absolute(source_dir).string()}};
  return staging.Commit(fields);
}

absl::StatusOr<int> RemoveStaleStaging(const ModelStore& store, std::chrono::seconds foreign_age) {
  NIBBLE_ASSIGN_OR_RETURN(std::vector<std::string> models, store.ListModels());
  const std::string host = HostName();
  int removed = 0;
  for (const std::string& model : models) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(store.ModelDir(model), error)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_directory() || !absl::StartsWith(name, kStagingPrefix)) continue;
      // .staging-<host>-<pid>-<nonce>
      const std::vector<std::string> parts = absl::StrSplit(name.substr(sizeof(kStagingPrefix) - 1), '-');
      int pid = 0;
      bool stale;
      if (parts.size() == 3 && parts[0] == host && absl::SimpleAtoi(parts[1], &pid) && pid > 0) {
        stale = kill(pid, 0) != 0 && errno == ESRCH;
      } else {
        const auto age = fs::file_time_type::clock::now() - fs::last_write_time(entry.path(), error);
        stale = !error && age > foreign_age;
      }
      if (!stale) continue;
      fs::remove_all(entry.path(), error);
      if (error) return absl::InternalError(absl::StrCat(entry.path().string(), ": cannot remove: ", error.message()));
      ++removed;
    }
  }
  return removed;
}

absl::StatusOr<std::optional<uint64_t>> FindVersionOfJob(const ModelStore& store, absl::string_view model,
                                                         absl::string_view job_id) {
  if (!fs::exists(store.ModelDir(model))) return std::nullopt;
  NIBBLE_ASSIGN_OR_RETURN(std::vector<uint64_t> versions, store.ListVersions(model));
  for (auto version = versions.rbegin(); version != versions.rend(); ++version) {
    absl::StatusOr<Manifest> manifest = ReadManifest(store.VersionDir(model, *version));
    if (!manifest.ok()) continue;
    // Any nibble.json may sit in the store: a "job" that is not a string is no job (json::value would throw).
    const auto job = manifest->json.find("job");
    if (job != manifest->json.end() && job->is_string() && job->get<std::string>() == job_id) return *version;
  }
  return std::nullopt;
}

}  // namespace nibble
