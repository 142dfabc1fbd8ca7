#include "engine/runtime/kv_cache.h"

#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/runtime/device_memory.h"

namespace nibble {

KvBlockPool::KvBlockPool(int32_t num_blocks, int32_t block_size) : num_blocks_(num_blocks), block_size_(block_size) {
  free_.resize(static_cast<size_t>(num_blocks));
  // Hand out low ids first (a stack popped from the back).
  std::iota(free_.rbegin(), free_.rend(), 0);
}

int32_t KvBlockPool::num_free() const {
  std::lock_guard lock(mutex_);
  return static_cast<int32_t>(free_.size());
}

double KvBlockPool::usage() const {
  if (num_blocks_ == 0) return 0.0;
  return 1.0 - static_cast<double>(num_free()) / num_blocks_;
}

absl::StatusOr<std::vector<int32_t>> KvBlockPool::Allocate(int32_t count) {
  std::lock_guard lock(mutex_);
  if (count < 0 || static_cast<size_t>(count) > free_.size()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("KV cache: ", count, " blocks wanted, ", free_.size(), " of ", num_blocks_, " free"));
  }
  std::vector<int32_t> blocks(free_.end() - count, free_.end());
  free_.resize(free_.size() - static_cast<size_t>(count));
  return blocks;
}

void KvBlockPool::Free(std::span<const int32_t> blocks) {
  std::lock_guard lock(mutex_);
  free_.insert(free_.end(), blocks.begin(), blocks.end());
}

absl::Status KvSequence::Reserve(int64_t tokens) {
  const int32_t needed = pool_->BlocksFor(tokens) - static_cast<int32_t>(blocks_.size());
  if (needed <= 0) return absl::OkStatus();
  NIBBLE_ASSIGN_OR_RETURN(std::vector<int32_t> more, pool_->Allocate(needed));
  blocks_.insert(blocks_.end(), more.begin(), more.end());
  return absl::OkStatus();
}

void KvSequence::Release() {
  if (pool_ && !blocks_.empty()) pool_->Free(blocks_);
  blocks_.clear();
}

size_t KvCache::BytesPerBlock(const ModelConfig& config, int64_t num_layers, int32_t block_size, DType dtype) {
  return 2 * static_cast<size_t>(num_layers) * static_cast<size_t>(block_size) * static_cast<size_t>(config.kv_size()) *
         DTypeSize(dtype);
}

absl::StatusOr<KvCache> KvCache::Create(DeviceMemory& memory, DType dtype, const ModelConfig& config,
                                        int64_t num_layers, int32_t num_blocks, int32_t block_size,
                                        int32_t pool_blocks) {
  if (num_blocks <= 0 || block_size <= 0 || num_layers <= 0 || pool_blocks > num_blocks) {
    return absl::InvalidArgumentError("KV cache: blocks, block size and layers must be positive");
  }
  KvCache cache;
  cache.pool_ = std::make_shared<KvBlockPool>(pool_blocks < 0 ? num_blocks : pool_blocks, block_size);
  NIBBLE_ASSIGN_OR_RETURN(cache.buffer_,
                          memory.Allocate(BytesPerBlock(config, num_layers, block_size, dtype) * num_blocks));
  const Shape shape{num_blocks, block_size, config.num_kv_heads, config.head_dim};
  const size_t half_layer_bytes = static_cast<size_t>(shape.numel()) * DTypeSize(dtype);
  auto* base = static_cast<char*>(cache.buffer_.data());
  for (int64_t l = 0; l < num_layers; ++l) {
    KvLayer layer;
    layer.k = Tensor{base + (2 * l) * half_layer_bytes, dtype, shape};
    layer.v = Tensor{base + (2 * l + 1) * half_layer_bytes, dtype, shape};
    cache.layers_.push_back(layer);
  }
  return cache;
}

}  // namespace nibble
