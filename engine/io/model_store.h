// The model store, read side: a directory tree <root>/<model>/<version>/ (../shared/docs/design.md, "The
// model store"). A version directory is a Hugging Face model directory plus nibble.json, the manifest, which
// lists every other file with its size and sha256. Versions are positive integers; anything else under a
// model directory (staging directories, stray files) is ignored. A version is complete once its directory
// exists under its number: publishers write elsewhere and rename (quantizer/publisher.h).
//
// Model names are 1..64 characters of [A-Za-z0-9._-], not starting with '.': nothing outside the root is
// ever read. ModelStore is a value; its methods only read the file system and are safe from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace nibble {

inline constexpr char kManifestFileName[] = "nibble.json";
inline constexpr int kManifestFormatVersion = 1;

// InvalidArgument naming the problem when `name` is not a valid model name.
absl::Status ValidateModelName(absl::string_view name);

struct ManifestFile {
  std::string path;  // relative to the version directory, no separators
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex
};

struct Manifest {
  nlohmann::json json;  // the whole document (quantization parameters, quality figures, provenance)
  std::vector<ManifestFile> files;
};

// Lowercase hex sha256 of a file's contents (NotFound / Internal naming the file).
absl::StatusOr<std::string> Sha256OfFile(const std::filesystem::path& path);
// Parses nibble.json of a version directory (InvalidArgument naming the file and field when malformed).
absl::StatusOr<Manifest> ReadManifest(const std::filesystem::path& version_dir);
// Checks that every file the manifest lists exists with its size and sha256: FailedPrecondition naming the
// first file that does not (a corrupt or tampered artifact).
absl::StatusOr<Manifest> VerifyVersionDir(const std::filesystem::path& version_dir);

class ModelStore {
 public:
  explicit ModelStore(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }

  // Model directories with valid names, sorted (an absent root is an empty store).
  absl::StatusOr<std::vector<std::string>> ListModels() const;
  // Complete versions of `model`, ascending (NotFound when the model has no directory).
  absl::StatusOr<std::vector<uint64_t>> ListVersions(absl::string_view model) const;
  // The highest complete version (NotFound when there is none).
  absl::StatusOr<uint64_t> LatestVersion(absl::string_view model) const;
  std::filesystem::path ModelDir(absl::string_view model) const { return root_ / std::string(model); }
  std::filesystem::path VersionDir(absl::string_view model, uint64_t version) const;

  // "NAME" (its latest version) or "NAME:N" -> the version directory, validated and existing.
  absl::StatusOr<std::filesystem::path> Resolve(absl::string_view reference) const;

 private:
  std::filesystem::path root_;
};

}  // namespace nibble
