// The safetensors format (https://huggingface.co/docs/safetensors): a reader that memory-maps one file and a
// writer for single files and for Hugging Face-style shard sets.
//
// File layout: an 8-byte little-endian header length N, N bytes of JSON header
// ({"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}),
// then the data section, which the offsets index.
//
// Reader contract: Open validates the whole header (sizes, JSON, dtypes, shapes, offsets within the data,
// no overlaps) before any tensor is handed out, and names the file (and the tensor) in every error; bad
// input is a status, never a crash. Tensors are zero-copy views into the read-only mapping, whose owner they
// share: they stay valid after the SafetensorsFile is gone. A tensor whose data is not aligned for its dtype
// (files written by tools that do not pad) is copied into aligned memory instead. A SafetensorsFile is
// immutable after Open and may be read from any thread.
//
// Writer contract: tensors are laid out by decreasing element size (keeping every tensor aligned, as the
// reference writer does), the header is padded with spaces to a multiple of 8 bytes, and every write and
// close is checked; a failed write leaves no partial file behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/base/file_io.h"
#include "engine/io/host_model.h"

namespace nibble {

// Hugging Face's file names for a model's weights.
inline constexpr char kSafetensorsFileName[] = "model.safetensors";
inline constexpr char kSafetensorsIndexFileName[] = "model.safetensors.index.json";
// Shard size limit of transformers' save_pretrained.
inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000;

struct NamedTensor {
  std::string name;
  HostTensor tensor;
};

class SafetensorsFile {
 public:
  static absl::StatusOr<SafetensorsFile> Open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return mapping_->path(); }
  // Tensor names in the order of their data.
  const std::vector<std::string>& names() const { return names_; }
  bool Has(absl::string_view name) const { return entries_.find(name) != entries_.end(); }
  // A view of the tensor (NotFound naming the file when it is absent).
  absl::StatusOr<HostTensor> Get(absl::string_view name) const;
  // The header's "__metadata__" (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    uint64_t begin;  // byte offsets into the data section
    uint64_t end;
  };
  SafetensorsFile(std::shared_ptr<const MappedFile> mapping, uint64_t data_start);

  std::shared_ptr<const MappedFile> mapping_;
  uint64_t data_start_;  // file offset of the data section
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

// Writes one safetensors file. Names must be unique and non-empty; `metadata` (when not empty) becomes
// "__metadata__" (transformers wants {"format": "pt"} there). `sync`: fsync the file before closing it.
absl::Status WriteSafetensors(const std::filesystem::path& path, std::span<const NamedTensor> tensors,
                              const std::map<std::string, std::string>& metadata = {}, bool sync = false);

// Writes `tensors` into the existing directory `dir` the way transformers' save_pretrained does: one
// `model.safetensors` when they fit in `max_shard_bytes`, otherwise `model-00001-of-0000N.safetensors`, ...
// (tensors kept in order, a new shard started when the next tensor would overflow the current one; a tensor
// larger than the limit gets a shard of its own) plus `model.safetensors.index.json`
// ({"metadata": {"total_size": bytes}, "weight_map": {name: shard}}). Weight files of an earlier write
// (model.safetensors, its index, model-*-of-*.safetensors) are removed first, as save_pretrained does.
// Returns the files written.
absl::StatusOr<std::vector<std::filesystem::path>> WriteSafetensorsShards(
    const std::filesystem::path& dir, std::span<const NamedTensor> tensors,
    uint64_t max_shard_bytes = kDefaultMaxShardBytes, const std::map<std::string, std::string>& metadata = {},
    bool sync = false);

}  // namespace nibble
