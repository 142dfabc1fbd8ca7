// What the fuzz targets share (tests/fuzz/README.md): a scratch directory into which a target writes its input
// as the file(s) its parser reads by path, splitting an input into parts, reading every byte of a tensor view,
// and a check that aborts (which libFuzzer reports as a crash, with the input).
//
// libFuzzer calls LLVMFuzzerTestOneInput on one thread, one input at a time, and gives it no context: the
// scratch directory is therefore one per process (made under $TMPDIR on first use, removed at exit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/io/host_model.h"

namespace nibble::fuzz {

// The process's scratch directory.
const std::filesystem::path& ScratchDir();

// Makes `path` hold exactly `bytes` (aborts when it cannot: then the machine, not the input, is at fault).
void WriteOrDie(const std::filesystem::path& path, absl::string_view bytes);
// Removes `path` when it exists, so that a part absent from this input leaves no file of an earlier one.
void RemoveIfPresent(const std::filesystem::path& path);

// `input` split at its first `max_parts - 1` NUL bytes (JSON text holds no raw NUL, so NUL separates the
// files and strings a target reads): at least one part, at most `max_parts`.
std::vector<absl::string_view> SplitOnNul(absl::string_view input, size_t max_parts);

// Reads every byte of the tensor's data (so that ASan sees a view that runs past its buffer) and returns
// their sum.
uint64_t TouchBytes(const HostTensor& tensor);

// Aborts with `what` when `condition` is false: a broken promise of the parser, reported as a crash.
void Check(bool condition, absl::string_view what);

inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace nibble::fuzz
