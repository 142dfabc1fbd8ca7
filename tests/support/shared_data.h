// Test helpers: locating ../shared, temporary directories.
//
// Tests find shared material (models, data) through the NIBBLE_SHARED environment variable, falling back to
// the `shared` folder beside the source tree; where it is absent they skip with a message saying so.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace nibble::testing {

// The shared folder, or nullopt when it does not exist.
std::optional<std::filesystem::path> SharedDir();

// SharedDir() / relative, or nullopt when that file does not exist.
std::optional<std::filesystem::path> SharedFile(const std::string& relative);

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace nibble::testing

// Skips the current test (with the reason) when a shared file is missing; otherwise binds it to `var`.
#define NIBBLE_REQUIRE_SHARED(var, relative)                                                             \
  const auto var##_optional = ::nibble::testing::SharedFile(relative);                                   \
  if (!var##_optional) GTEST_SKIP() << "shared file " << (relative) << " not found (set NIBBLE_SHARED)"; \
  const std::filesystem::path var = *var##_optional
