// The paged KV cache: fixed-size blocks of keys and values, handed to sequences as they grow and returned
// the moment they end.
//
// KvBlockPool hands out block ids; it is thread-safe (the engine thread allocates, the metrics thread
// reads usage). KvSequence is one sequence's list of blocks, returned to the pool when it is destroyed or
// Release()d: owned by whoever owns the sequence (one thread). KvCache is the storage in backend memory,
// per layer K and V of shape [num_blocks, block_size, num_kv_heads, head_dim] in the activation dtype.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/tensor.h"
#include "engine/io/model_config.h"

namespace nibble {

class DeviceMemory;

class KvBlockPool {
 public:
  KvBlockPool(int32_t num_blocks, int32_t block_size);
  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  int32_t num_free() const;
  int32_t BlocksFor(int64_t tokens) const { return static_cast<int32_t>((tokens + block_size_ - 1) / block_size_); }
  // Fraction of blocks in use, 0..1.
  double usage() const;
  // Takes `count` blocks, or none and ResourceExhausted when fewer are free.
  absl::StatusOr<std::vector<int32_t>> Allocate(int32_t count);
  void Free(std::span<const int32_t> blocks);

 private:
  const int32_t num_blocks_;
  const int32_t block_size_;
  mutable std::mutex mutex_;
  std::vector<int32_t> free_;  // stack of free block ids
};

class KvSequence {
 public:
  explicit KvSequence(std::shared_ptr<KvBlockPool> pool) : pool_(std::move(pool)) {}
  KvSequence(KvSequence&&) = default;
  KvSequence& operator=(KvSequence&&) = default;
  ~KvSequence() { Release(); }

  // Makes room for `tokens` tokens in total, taking blocks as needed (ResourceExhausted if the pool is dry;
  // then nothing is taken).
  absl::Status Reserve(int64_t tokens);
  void Release();
  std::span<const int32_t> blocks() const { return blocks_; }

 private:
  std::shared_ptr<KvBlockPool> pool_;
  std::vector<int32_t> blocks_;
};

// K and V of one layer: [num_blocks, block_size, num_kv_heads, head_dim].
struct KvLayer {
  Tensor k;
  Tensor v;
};

class KvCache {
 public:
  // Allocates `num_blocks` blocks of `block_size` tokens for `num_layers` layers of `config`'s KV shape. The
  // pool hands out the first `pool_blocks` of them (all when negative); the rest are the owner's to use.
  static absl::StatusOr<KvCache> Create(DeviceMemory& memory, DType dtype, const ModelConfig& config,
                                        int64_t num_layers, int32_t num_blocks, int32_t block_size,
                                        int32_t pool_blocks = -1);
  // Bytes one block takes across all layers (K and V), to size the cache from free memory.
  static size_t BytesPerBlock(const ModelConfig& config, int64_t num_layers, int32_t block_size, DType dtype);

  const std::shared_ptr<KvBlockPool>& pool() const { return pool_; }
  const KvLayer& layer(int64_t index) const { return layers_[static_cast<size_t>(index)]; }
  size_t bytes() const { return buffer_.bytes(); }

 private:
  std::shared_ptr<KvBlockPool> pool_;
  Buffer buffer_;
  std::vector<KvLayer> layers_;
};

}  // namespace nibble
