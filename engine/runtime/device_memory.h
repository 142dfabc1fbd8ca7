// A backend's memory: owning allocations and copies between host and backend memory. The part of the Backend
// interface (backend.h) that the KV cache and the batch uploader need, so that they can sit below it.
//
// Contract: the same as Backend's (backend.h): one thread at a time; copies are queued in order with the
// backend's ops; CopyToHost and Synchronize wait for queued work; errors are statuses, nothing throws.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/tensor.h"

namespace nibble {

struct MemoryUsage {
  size_t used_bytes = 0;
  size_t total_bytes = 0;
};

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // Device memory in use and in total (the CPU backend reports 0/0).
  virtual MemoryUsage memory_usage() const = 0;
  virtual absl::StatusOr<Buffer> Allocate(size_t bytes) = 0;
  // Copies dst.bytes() bytes from host memory into the backend tensor `dst`.
  virtual absl::Status CopyToDevice(const void* host, const Tensor& dst) = 0;
  // Copies src.bytes() bytes of the backend tensor `src` into host memory; waits for queued work.
  virtual absl::Status CopyToHost(const Tensor& src, void* host) = 0;
  // Waits for queued work and reports any asynchronous failure.
  virtual absl::Status Synchronize() = 0;
};

}  // namespace nibble
