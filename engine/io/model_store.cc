#include "engine/io/model_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/file_io.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

// A version directory's name: a positive decimal integer without leading zeros.
bool ParseVersion(const std::string& name, uint64_t* version) {
  if (name.empty() || name.size() > 19 || name[0] == '0') return false;
  if (!std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  return absl::SimpleAtoi(name, version);
}

}  // namespace

absl::Status ValidateModelName(absl::string_view name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat("model name ", QuotedPrefix(name), " must have 1 to 64 characters"));
  }
  if (name[0] == '.')
    return absl::InvalidArgumentError(absl::StrCat("model name ", QuotedPrefix(name), " starts with '.'"));
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("model name ", QuotedPrefix(name), " may only hold letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Sha256OfFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("sha256: cannot initialise OpenSSL's digest");
  }
  std::vector<char> buffer(size_t{1} << 20);
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (file.gcount() > 0 && EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(file.gcount())) != 1) {
      return absl::InternalError(absl::StrCat(path.string(), ": sha256 failed"));
    }
  }
  if (file.bad()) return absl::InternalError(absl::StrCat(path.string(), ": read error"));
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context.get(), digest.data(), &length) != 1) {
    return absl::InternalError(absl::StrCat(path.string(), ": sha256 failed"));
  }
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

absl::StatusOr<Manifest> ReadManifest(const std::filesystem::path& version_dir) {
  const std::filesystem::path path = version_dir / kManifestFileName;
  NIBBLE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  Manifest manifest;
  manifest.json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string where = path.string();
  if (manifest.json.is_discarded() || !manifest.json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not a JSON object"));
  }
  const auto version = manifest.json.find("format_version");
  if (version == manifest.json.end() || !version->is_number_integer() || *version != kManifestFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"format_version\" must be ", kManifestFormatVersion));
  }
  const auto files = manifest.json.find("files");
  if (files == manifest.json.end() || !files->is_array() || files->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"files\" must list the version's files"));
  }
  for (const nlohmann::json& entry : *files) {
    ManifestFile file;
    if (!entry.is_object() || !entry.contains("path") || !entry["path"].is_string() || !entry.contains("bytes") ||
        !entry["bytes"].is_number_unsigned() || !entry.contains("sha256") || !entry["sha256"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": each of \"files\" needs path, bytes and sha256"));
    }
    file.path = entry["path"].get<std::string>();
    file.bytes = entry["bytes"].get<uint64_t>();
    file.sha256 = entry["sha256"].get<std::string>();
    if (file.path.empty() || file.path.find('/') != std::string::npos || file.path == "." || file.path == ".." ||
        file.path == kManifestFileName) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": file \"", file.path, "\" is not a plain file name"));
    }
    manifest.files.push_back(std::move(file));
  }
  return manifest;
}

absl::StatusOr<Manifest> VerifyVersionDir(const std::filesystem::path& version_dir) {
  NIBBLE_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(version_dir));
  for (const ManifestFile& file : manifest.files) {
    const std::filesystem::path path = version_dir / file.path;
    std::error_code error;
    const uint64_t bytes = std::filesystem::file_size(path, error);
    if (error)
      return absl::FailedPreconditionError(absl::StrCat(path.string(), ": listed in the manifest but missing"));
    if (bytes != file.bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(path.string(), ": ", bytes, " bytes, the manifest says ", file.bytes, " (corrupt artifact)"));
    }
    NIBBLE_ASSIGN_OR_RETURN(std::string sha256, Sha256OfFile(path));
    if (sha256 != file.sha256) {
      return absl::FailedPreconditionError(absl::StrCat(
          path.string(), ": sha256 ", sha256, " differs from the manifest's ", file.sha256, " (corrupt artifact)"));
    }
  }
  return manifest;
}

absl::StatusOr<std::vector<std::string>> ModelStore::ListModels() const {
  std::vector<std::string> models;
  std::error_code error;
  if (!std::filesystem::is_directory(root_, error)) return models;
  for (const auto& entry : std::filesystem::directory_iterator(root_, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && ValidateModelName(name).ok()) models.push_back(name);
  }
  if (error) return absl::InternalError(absl::StrCat(root_.string(), ": ", error.message()));
  std::sort(models.begin(), models.end());
  return models;
}

absl::StatusOr<std::vector<uint64_t>> ModelStore::ListVersions(absl::string_view model) const {
  NIBBLE_RETURN_IF_ERROR(ValidateModelName(model));
  const std::filesystem::path dir = ModelDir(model);
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model \"", model, "\" is not in the store ", root_.string()));
  }
  std::vector<uint64_t> versions;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    uint64_t version = 0;
    if (entry.is_directory() && ParseVersion(entry.path().filename().string(), &version)) versions.push_back(version);
  }
  if (error) return absl::InternalError(absl::StrCat(dir.string(), ": ", error.message()));
  std::sort(versions.begin(), versions.end());
  return versions;
}

absl::StatusOr<uint64_t> ModelStore::LatestVersion(absl::string_view model) const {
  NIBBLE_ASSIGN_OR_RETURN(std::vector<uint64_t> versions, ListVersions(model));
  if (versions.empty()) return absl::NotFoundError(absl::StrCat("model \"", model, "\" has no complete version"));
  return versions.back();
}

std::filesystem::path ModelStore::VersionDir(absl::string_view model, uint64_t version) const {
  return ModelDir(model) / std::to_string(version);
}

absl::StatusOr<std::filesystem::path> ModelStore::Resolve(absl::string_view reference) const {
  const size_t colon = reference.rfind(':');
  const absl::string_view model = colon == absl::string_view::npos ? reference : reference.substr(0, colon);
  NIBBLE_RETURN_IF_ERROR(ValidateModelName(model));
  uint64_t version = 0;
  if (colon == absl::string_view::npos) {
    NIBBLE_ASSIGN_OR_RETURN(version, LatestVersion(model));
  } else if (!ParseVersion(std::string(reference.substr(colon + 1)), &version)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", reference, "\": the version must be a positive integer"));
  }
  const std::filesystem::path dir = VersionDir(model, version);
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model \"", model, "\" has no version ", version, " in ", root_.string()));
  }
  return dir;
}

}  // namespace nibble
