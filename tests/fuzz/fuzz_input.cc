#include "tests/fuzz/fuzz_input.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>

namespace nibble::fuzz {
namespace {

// Owns the directory; removes it when the process exits normally.
class ScratchDirectory {
 public:
  ScratchDirectory() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/nibble-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("nibble fuzz: mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~ScratchDirectory() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

const std::filesystem::path& ScratchDir() {
  static const ScratchDirectory directory;
  return directory.path();
}

void WriteOrDie(const std::filesystem::path& path, absl::string_view bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) {
    std::fprintf(stderr, "nibble fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

void RemoveIfPresent(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::remove(path, error);
}

std::vector<absl::string_view> SplitOnNul(absl::string_view input, size_t max_parts) {
  std::vector<absl::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t nul = input.find('\0');
    if (nul == absl::string_view::npos) break;
    parts.push_back(input.substr(0, nul));
    input.remove_prefix(nul + 1);
  }
  parts.push_back(input);
  return parts;
}

uint64_t TouchBytes(const HostTensor& tensor) {
  uint64_t sum = 0;
  const size_t bytes = tensor.bytes();
  Check(bytes == 0 || tensor.data != nullptr, "a non-empty tensor has no data");
  for (size_t i = 0; i < bytes; ++i) sum += static_cast<uint8_t>(tensor.data[i]);
  return sum;
}

void Check(bool condition, absl::string_view what) {
  if (condition) return;
  std::fprintf(stderr, "nibble fuzz: check failed: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace nibble::fuzz
