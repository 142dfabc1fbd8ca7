// Fuzzes the safetensors reader (engine/io/safetensors.h): the input is the whole file. Whatever Open accepts
// must hand out every tensor it lists, each view readable to its last byte.
#include <cstddef>
#include <cstdint>

#include "engine/io/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::filesystem::path path = fuzz::ScratchDir() / kSafetensorsFileName;
  fuzz::WriteOrDie(path, fuzz::AsText(data, size));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  for (const std::string& name : file->names()) {
    fuzz::Check(file->Has(name), "a listed tensor is not there");
    absl::StatusOr<HostTensor> tensor = file->Get(name);
    fuzz::Check(tensor.ok(), "a listed tensor cannot be read");
    fuzz::TouchBytes(*tensor);
  }
  fuzz::Check(!file->Get("__metadata__").ok(), "the metadata key reads as a tensor");
  return 0;
}
