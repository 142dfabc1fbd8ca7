// Fuzzes the model store's manifest, nibble.json (engine/io/model_store.h), through ReadManifest and
// VerifyVersionDir on a version directory that holds the input as nibble.json and one small file, config.json.
#include <cstddef>
#include <cstdint>

#include "engine/io/model_store.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::filesystem::path dir = fuzz::ScratchDir() / "1";
  std::filesystem::create_directories(dir);
  fuzz::WriteOrDie(dir / "config.json", "{}\n");
  fuzz::WriteOrDie(dir / kManifestFileName, fuzz::AsText(data, size));
  absl::StatusOr<Manifest> manifest = ReadManifest(dir);
  if (!manifest.ok()) return 0;
  fuzz::Check(!manifest->files.empty(), "an accepted manifest lists no files");
  for (const ManifestFile& file : manifest->files) {
    fuzz::Check(!file.path.empty() && file.path.find('/') == std::string::npos && file.path != ".." &&
                    file.path != kManifestFileName,
                "an accepted manifest lists a path that is not a plain file name");
  }
  absl::StatusOr<Manifest> verified = VerifyVersionDir(dir);
  if (verified.ok()) {
    for (const ManifestFile& file : verified->files) fuzz::Check(file.path == "config.json", "verified a missing file");
  }
  return 0;
}
