// Tensors: a shape, a non-owning view (Tensor) and an owning allocation (Buffer).
//
// A Tensor is a dense, row-major view into one backend's memory: host memory for the CPU backend, device
// memory for the CUDA backend. It never owns what it points at; whoever made the view keeps the memory
// alive (a Buffer, a memory-mapped file, a std::vector). Views are cheap to copy and safe to share
// between threads as long as nobody writes the memory they see.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "engine/base/dtype.h"

namespace nibble {

// Up to four dimensions, outermost first. Small and allocation-free (it sits on hot paths).
class Shape {
 public:
  static constexpr int kMaxRank = 4;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  template <typename Range>
  static Shape FromRange(const Range& dims) {
    Shape shape;
    for (auto dim : dims) shape.dims_[shape.rank_++] = static_cast<int64_t>(dim);
    return shape;
  }

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t numel() const;
  bool operator==(const Shape& other) const;
  std::string ToString() const;  // "[4096, 11008]"

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;

  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  // Rows and columns of a 2-D view (rows = product of all but the last dimension).
  int64_t rows() const;
  int64_t cols() const { return shape.rank() == 0 ? 1 : shape[shape.rank() - 1]; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // A view of rows [begin, begin + count) of this tensor seen as 2-D [rows, cols].
  Tensor Rows(int64_t begin, int64_t count) const;
  // The same memory seen with another shape of the same number of elements.
  Tensor Reshaped(Shape new_shape) const;
};

// An owning allocation in one backend's memory, released by the deleter the backend gave it.
// Move-only; destroying it frees the memory.
class Buffer {
 public:
  using Release = std::function<void(void*)>;
  Buffer() = default;
  Buffer(void* data, size_t bytes, Release release);
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  // A view of the first shape.numel() elements as `dtype`. The caller checks the buffer is large enough
  // (View does too, in debug builds).
  Tensor View(DType dtype, Shape shape) const;

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Release release_;
};

}  // namespace nibble
