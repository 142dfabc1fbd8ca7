// The tensors of a Hugging Face model directory, by name: one `model.safetensors`, or the shards listed in
// `model.safetensors.index.json` ({"weight_map": {tensor name: shard file name}}), which wins when both exist.
//
// Open validates every file (see safetensors.h) and the index (shard names are plain file names in the
// directory; every tensor the index lists is in its shard) before returning. Tensors are zero-copy views
// sharing ownership of their file's mapping, so they outlive the TensorSource. Also built from tensors
// already in memory (FromTensors), so code that checks a set of tensors - the model loader - runs the same
// checks on what a writer is about to write. Immutable after construction; safe to read from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/io/host_model.h"
#include "engine/io/safetensors.h"

namespace nibble {

class TensorSource {
 public:
  static absl::StatusOr<TensorSource> Open(const std::filesystem::path& model_dir);
  // Tensors in memory; `origin` stands for the file in messages. Duplicate names are InvalidArgument.
  static absl::StatusOr<TensorSource> FromTensors(std::span<const NamedTensor> tensors, std::string origin);

  // The model directory (or the in-memory origin).
  const std::string& origin() const { return origin_; }
  bool Has(absl::string_view name) const { return tensors_.find(name) != tensors_.end(); }
  // NotFound naming the tensor and the directory when absent.
  absl::StatusOr<HostTensor> Get(absl::string_view name) const;
  // The file holding `name` (the origin when it is absent or in memory), for messages.
  std::string FileOf(absl::string_view name) const;
  // All tensor names, sorted.
  std::vector<std::string> names() const;

 private:
  struct Located {
    HostTensor tensor;
    std::string file;
  };
  explicit TensorSource(std::string origin) : origin_(std::move(origin)) {}
  absl::Status AddFile(const SafetensorsFile& file, std::span<const std::string> names);

  std::string origin_;
  std::map<std::string, Located, std::less<>> tensors_;
};

}  // namespace nibble
