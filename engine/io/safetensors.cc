#include "engine/io/safetensors.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace nibble {
namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length must not make us
// parse gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr absl::string_view kMetadataKey = "__metadata__";

absl::Status FileError(const std::filesystem::path& path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", problem));
}

absl::Status TensorError(const std::filesystem::path& path, absl::string_view name, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path.string(), ": tensor \"", name, "\": ", problem));
}

// A JSON value that must be a non-negative integer.
std::optional<uint64_t> NonNegative(const json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;  // negative integers are number_integer only
  return value.get<uint64_t>();
}

struct ParsedEntry {
  DType dtype;
  Shape shape;
  uint64_t begin;
  uint64_t end;
};

absl::StatusOr<ParsedEntry> ParseEntry(const std::filesystem::path& path, const std::string& name, const json& info,
                                       uint64_t data_size) {
  if (!info.is_object()) return TensorError(path, name, "header entry is not an object");
  const auto dtype_it = info.find("dtype");
  if (dtype_it == info.end() || !dtype_it->is_string())
    return TensorError(path, name, "\"dtype\" is missing or not a string");
  const std::string dtype_name = dtype_it->get<std::string>();
  const absl::StatusOr<DType> dtype = ParseDType(dtype_name);
  if (!dtype.ok()) {
    return TensorError(
        path, name, absl::StrCat("unsupported dtype \"", dtype_name, "\" (supported: F32, F16, BF16, I32, I64, U8)"));
  }

  const auto shape_it = info.find("shape");
  if (shape_it == info.end() || !shape_it->is_array())
    return TensorError(path, name, "\"shape\" is missing or not a list");
  if (shape_it->size() > static_cast<size_t>(Shape::kMaxRank)) {
    return TensorError(path, name,
                       absl::StrCat("rank ", shape_it->size(), " is above the supported ", Shape::kMaxRank));
  }
  std::vector<int64_t> dims;
  uint64_t numel = 1;
  bool numel_overflows = false;
  for (const json& dim_value : *shape_it) {
    const std::optional<uint64_t> dim = NonNegative(dim_value);
    if (!dim || *dim > static_cast<uint64_t>(INT64_MAX)) {
      return TensorError(path, name, absl::StrCat("shape ", shape_it->dump(), " must hold non-negative integers"));
    }
    dims.push_back(static_cast<int64_t>(*dim));
    numel_overflows = numel_overflows || __builtin_mul_overflow(numel, *dim, &numel);
  }
  uint64_t bytes = 0;
  numel_overflows = numel_overflows || __builtin_mul_overflow(numel, DTypeSize(*dtype), &bytes);

  const auto offsets_it = info.find("data_offsets");
  if (offsets_it == info.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !NonNegative((*offsets_it)[0]) || !NonNegative((*offsets_it)[1])) {
    return TensorError(path, name, "\"data_offsets\" must be a list of two non-negative integers");
  }
  const uint64_t begin = *NonNegative((*offsets_it)[0]);
  const uint64_t end = *NonNegative((*offsets_it)[1]);
  const std::string offsets = absl::StrCat("data_offsets [", begin, ", ", end, "]");
  if (begin > end) return TensorError(path, name, absl::StrCat(offsets, " end before they begin"));
  if (end > data_size) {
    return TensorError(path, name, absl::StrCat(offsets, " run past the end of the data (", data_size, " bytes)"));
  }
  const Shape shape = Shape::FromRange(dims);
  if (numel_overflows || end - begin != bytes) {
    return TensorError(
        path, name,
        absl::StrCat(offsets, " span ", end - begin, " bytes but ", DTypeName(*dtype), " ", shape.ToString(), " needs ",
                     numel_overflows ? std::string("more than 2^64") : absl::StrCat(bytes)));
  }
  return ParsedEntry{*dtype, shape, begin, end};
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const std::filesystem::path& path, const json& value) {
  if (!value.is_object()) return FileError(path, "\"__metadata__\" must be an object of strings");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return FileError(path, absl::StrCat("\"__metadata__\" entry \"", key, "\" must be a string"));
    }
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

uint64_t ReadLittleEndian64(const std::byte* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint64_t>(bytes[i]);
  return value;
}

void AppendLittleEndian64(uint64_t value, std::string& out) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// Names must be unique, non-empty and not the metadata key; data must be present.
absl::Status CheckTensorsToWrite(const std::filesystem::path& where, std::span<const NamedTensor> tensors) {
  std::set<absl::string_view> seen;
  for (const NamedTensor& named : tensors) {
    if (named.name.empty() || named.name == kMetadataKey) {
      return FileError(where, absl::StrCat("cannot write a tensor named \"", named.name, "\""));
    }
    if (!seen.insert(named.name).second)
      return FileError(where, absl::StrCat("tensor \"", named.name, "\" is given twice"));
    for (int i = 0; i < named.tensor.shape.rank(); ++i) {
      if (named.tensor.shape[i] < 0) {
        return TensorError(where, named.name, absl::StrCat("negative dimension in ", named.tensor.shape.ToString()));
      }
    }
    if (named.tensor.data == nullptr && named.tensor.bytes() > 0) return TensorError(where, named.name, "has no data");
  }
  return absl::OkStatus();
}

// The header JSON, padded with spaces so the data section starts at a multiple of 8, for `tensors` laid out
// in `order`.
absl::StatusOr<std::string> EncodeHeader(const std::filesystem::path& path, std::span<const NamedTensor> tensors,
                                         std::span<const size_t> order,
                                         const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  uint64_t offset = 0;
  for (size_t index : order) {
    const HostTensor& tensor = tensors[index].tensor;
    std::vector<int64_t> dims;
    for (int i = 0; i < tensor.shape.rank(); ++i) dims.push_back(tensor.shape[i]);
    header[tensors[index].name] = {{"dtype", std::string(DTypeName(tensor.dtype))},
                                   {"shape", dims},
                                   {"data_offsets", {offset, offset + tensor.bytes()}}};
    offset += tensor.bytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& error) {  // names or metadata that are not valid UTF-8
    return FileError(path, absl::StrCat("cannot encode the header: ", error.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// transformers' shard names: model-00001-of-00002.safetensors.
bool IsShardFileName(const std::string& name) {
  constexpr absl::string_view kPattern = "model-#####-of-#####.safetensors";
  if (name.size() != kPattern.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const bool matches =
        kPattern[i] == '#' ? std::isdigit(static_cast<unsigned char>(name[i])) != 0 : name[i] == kPattern[i];
    if (!matches) return false;
  }
  return true;
}

// Removes the weight files an earlier write may have left in `dir` (as save_pretrained does), so that no
// reader ever sees old and new weights mixed.
absl::Status RemoveStaleWeights(const std::filesystem::path& dir) {
  std::error_code error;
  std::vector<std::filesystem::path> stale;
  for (auto it = std::filesystem::directory_iterator(dir, error); !error && it != std::filesystem::directory_iterator();
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name == kSafetensorsFileName || name == kSafetensorsIndexFileName || IsShardFileName(name)) {
      stale.push_back(it->path());
    }
  }
  if (error) return absl::InternalError(absl::StrCat(dir.string(), ": cannot list the directory: ", error.message()));
  for (const std::filesystem::path& path : stale) {
    if (!std::filesystem::remove(path, error) && error) {
      return absl::InternalError(absl::StrCat(path.string(), ": cannot remove the old weights: ", error.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

SafetensorsFile::SafetensorsFile(std::shared_ptr<const MappedFile> mapping, uint64_t data_start)
    : mapping_(std::move(mapping)), data_start_(data_start) {}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::filesystem::path& path) {
  NIBBLE_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  const uint64_t file_size = mapping->size();
  if (file_size < 8) {
    return FileError(path, absl::StrCat("the file is ", file_size, " bytes, too short for the 8-byte header length"));
  }
  const uint64_t header_size = ReadLittleEndian64(mapping->data());
  if (header_size > kMaxHeaderBytes) {
    return FileError(path, absl::StrCat("header length ", header_size, " is above the ", kMaxHeaderBytes,
                                        "-byte limit (not a safetensors file, or a corrupt one)"));
  }
  if (header_size > file_size - 8) {
    return FileError(
        path, absl::StrCat("header length ", header_size, " runs past the end of the file (", file_size, " bytes)"));
  }
  const auto* header_text = reinterpret_cast<const char*>(mapping->data() + 8);
  const json header = json::parse(header_text, header_text + header_size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return FileError(path, "the header is not valid JSON");
  if (!header.is_object()) return FileError(path, "the header is not a JSON object");

  SafetensorsFile file(mapping, 8 + header_size);
  const uint64_t data_size = file_size - file.data_start_;
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      NIBBLE_ASSIGN_OR_RETURN(file.metadata_, ParseMetadata(path, info));
      continue;
    }
    NIBBLE_ASSIGN_OR_RETURN(ParsedEntry entry, ParseEntry(path, name, info, data_size));
    file.entries_.emplace(name, Entry{entry.dtype, entry.shape, entry.begin, entry.end});
    file.names_.push_back(name);
  }

  std::sort(file.names_.begin(), file.names_.end(), [&](const std::string& a, const std::string& b) {
    const Entry& x = file.entries_.at(a);
    const Entry& y = file.entries_.at(b);
    return std::tie(x.begin, x.end, a) < std::tie(y.begin, y.end, b);
  });
  const std::string* previous = nullptr;  // the non-empty tensor ending last so far
  for (const std::string& name : file.names_) {
    const Entry& entry = file.entries_.at(name);
    if (entry.begin == entry.end) continue;
    if (previous != nullptr && entry.begin < file.entries_.at(*previous).end) {
      const Entry& other = file.entries_.at(*previous);
      return TensorError(path, name,
                         absl::StrCat("data_offsets [", entry.begin, ", ", entry.end, "] overlap those of tensor \"",
                                      *previous, "\" [", other.begin, ", ", other.end, "]"));
    }
    previous = &name;
  }
  return file;
}

absl::StatusOr<HostTensor> SafetensorsFile::Get(absl::string_view name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat(path().string(), ": no tensor \"", name, "\""));
  }
  const Entry& entry = it->second;
  const std::byte* data = mapping_->data() + data_start_ + entry.begin;
  if (reinterpret_cast<uintptr_t>(data) % DTypeSize(entry.dtype) != 0) {
    std::vector<std::byte> copy(data, data + (entry.end - entry.begin));
    return HostTensor::FromBytes(std::move(copy), entry.dtype, entry.shape);
  }
  HostTensor tensor;
  tensor.dtype = entry.dtype;
  tensor.shape = entry.shape;
  tensor.data = data;
  tensor.owner = mapping_;
  return tensor;
}

absl::Status WriteSafetensors(const std::filesystem::path& path, std::span<const NamedTensor> tensors,
                              const std::map<std::string, std::string>& metadata, bool sync) {
  NIBBLE_RETURN_IF_ERROR(CheckTensorsToWrite(path, tensors));
  // Larger elements first: every tensor then starts at a multiple of its element size.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return DTypeSize(tensors[a].tensor.dtype) > DTypeSize(tensors[b].tensor.dtype);
  });
  NIBBLE_ASSIGN_OR_RETURN(std::string header, EncodeHeader(path, tensors, order, metadata));
  std::string prefix;
  AppendLittleEndian64(header.size(), prefix);

  NIBBLE_ASSIGN_OR_RETURN(FileWriter writer, FileWriter::Create(path));
  NIBBLE_RETURN_IF_ERROR(writer.Write(prefix));
  NIBBLE_RETURN_IF_ERROR(writer.Write(header));
  for (size_t index : order) {
    const HostTensor& tensor = tensors[index].tensor;
    NIBBLE_RETURN_IF_ERROR(writer.Write(tensor.data, tensor.bytes()));
  }
  return writer.Close(sync);
}

absl::StatusOr<std::vector<std::filesystem::path>> WriteSafetensorsShards(
    const std::filesystem::path& dir, std::span<const NamedTensor> tensors, uint64_t max_shard_bytes,
    const std::map<std::string, std::string>& metadata, bool sync) {
  if (max_shard_bytes == 0) return FileError(dir, "the shard size limit must be positive");
  NIBBLE_RETURN_IF_ERROR(CheckTensorsToWrite(dir, tensors));

  // Consecutive runs of tensors, each within the limit (or a single oversized tensor).
  std::vector<std::span<const NamedTensor>> shards;
  uint64_t total_bytes = 0;
  size_t shard_begin = 0;
  uint64_t shard_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t bytes = tensors[i].tensor.bytes();
    if (i > shard_begin && shard_bytes + bytes > max_shard_bytes) {
      shards.push_back(tensors.subspan(shard_begin, i - shard_begin));
      shard_begin = i;
      shard_bytes = 0;
    }
    shard_bytes += bytes;
    total_bytes += bytes;
  }
  shards.push_back(tensors.subspan(shard_begin));
  NIBBLE_RETURN_IF_ERROR(RemoveStaleWeights(dir));

  if (shards.size() == 1) {
    const std::filesystem::path path = dir / kSafetensorsFileName;
    NIBBLE_RETURN_IF_ERROR(WriteSafetensors(path, tensors, metadata, sync));
    return std::vector<std::filesystem::path>{path};
  }
  std::vector<std::filesystem::path> written;
  json weight_map = json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string file_name = absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, shards.size());
    written.push_back(dir / file_name);
    NIBBLE_RETURN_IF_ERROR(WriteSafetensors(written.back(), shards[s], metadata, sync));
    for (const NamedTensor& named : shards[s]) weight_map[named.name] = file_name;
  }
  const json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
  written.push_back(dir / kSafetensorsIndexFileName);
  // The names were encoded once already (in the shard headers), so dump cannot fail on them here.
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(written.back(), index.dump(2) + "\n", sync));
  return written;
}

}  // namespace nibble
