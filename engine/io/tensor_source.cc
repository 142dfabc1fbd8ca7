#include "engine/io/tensor_source.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace nibble {
namespace {

using nlohmann::json;

// A shard named in the index must be a plain file name inside the model directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

// weight_map of model.safetensors.index.json, shard file name -> the tensors it holds.
absl::StatusOr<std::map<std::string, std::vector<std::string>>> ReadIndex(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::stringstream text;
  text << stream.rdbuf();
  const json index = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a JSON object"));
  }
  const auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": \"weight_map\" is missing or not an object"));
  }
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string() || !IsPlainFileName(shard.get<std::string>())) {
      return absl::InvalidArgumentError(absl::StrCat(path.string(), ": tensor \"", name, "\" maps to ", shard.dump(),
                                                     ", which is not a file name in the model directory"));
    }
    shards[shard.get<std::string>()].push_back(name);
  }
  return shards;
}

}  // namespace

absl::StatusOr<TensorSource> TensorSource::Open(const std::filesystem::path& model_dir) {
  TensorSource source(model_dir.string());
  const std::filesystem::path index_path = model_dir / kSafetensorsIndexFileName;
  const std::filesystem::path single_path = model_dir / kSafetensorsFileName;
  std::error_code error;
  if (std::filesystem::exists(index_path, error)) {
    NIBBLE_ASSIGN_OR_RETURN(auto shards, ReadIndex(index_path));
    for (const auto& [shard_name, names] : shards) {
      NIBBLE_ASSIGN_OR_RETURN(SafetensorsFile shard, SafetensorsFile::Open(model_dir / shard_name));
      for (const std::string& name : names) {
        if (!shard.Has(name)) {
          return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": lists tensor \"", name, "\" in ",
                                                         shard_name, ", which does not hold it"));
        }
      }
      NIBBLE_RETURN_IF_ERROR(source.AddFile(shard, names));
    }
  } else if (std::filesystem::exists(single_path, error)) {
    NIBBLE_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(single_path));
    NIBBLE_RETURN_IF_ERROR(source.AddFile(file, file.names()));
  } else {
    return absl::NotFoundError(absl::StrCat(model_dir.string(), ": neither ", kSafetensorsFileName, " nor ",
                                            kSafetensorsIndexFileName, " found"));
  }
  return source;
}

absl::StatusOr<TensorSource> TensorSource::FromTensors(std::span<const NamedTensor> tensors, std::string origin) {
  TensorSource source(std::move(origin));
  for (const NamedTensor& named : tensors) {
    if (!source.tensors_.emplace(named.name, Located{named.tensor, source.origin_}).second) {
      return absl::InvalidArgumentError(absl::StrCat(source.origin_, ": tensor \"", named.name, "\" is given twice"));
    }
  }
  return source;
}

absl::Status TensorSource::AddFile(const SafetensorsFile& file, std::span<const std::string> names) {
  for (const std::string& name : names) {
    NIBBLE_ASSIGN_OR_RETURN(HostTensor tensor, file.Get(name));
    tensors_.insert_or_assign(name, Located{std::move(tensor), file.path().string()});
  }
  return absl::OkStatus();
}

absl::StatusOr<HostTensor> TensorSource::Get(absl::string_view name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) return absl::NotFoundError(absl::StrCat(origin_, ": no tensor \"", name, "\""));
  return it->second.tensor;
}

std::string TensorSource::FileOf(absl::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? origin_ : it->second.file;
}

std::vector<std::string> TensorSource::names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, located] : tensors_) names.push_back(name);
  return names;
}

}  // namespace nibble
