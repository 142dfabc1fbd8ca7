#include "tests/support/shared_data.h"

#include <cstdlib>
#include <random>

namespace nibble::testing {

std::optional<std::filesystem::path> SharedDir() {
  const char* env = std::getenv("NIBBLE_SHARED");
  const std::filesystem::path dir = env != nullptr && *env != '\0' ? env : NIBBLE_SHARED_DEFAULT;
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) return std::nullopt;
  return std::filesystem::absolute(dir);
}

std::optional<std::filesystem::path> SharedFile(const std::string& relative) {
  const auto dir = SharedDir();
  if (!dir) return std::nullopt;
  std::error_code error;
  const std::filesystem::path file = *dir / relative;
  if (!std::filesystem::exists(file, error)) return std::nullopt;
  return file;
}

TempDir::TempDir() {
  std::random_device random;
  const std::filesystem::path base = std::filesystem::temp_directory_path();
  for (;;) {
    path_ = base / ("nibble-test-" + std::to_string(random()));
    if (std::filesystem::create_directory(path_)) break;
  }
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

}  // namespace nibble::testing
