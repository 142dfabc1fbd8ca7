#include "engine/base/tensor.h"

#include <cassert>
#include <utility>

#include "absl/strings/str_join.h"

namespace nibble {

Shape::Shape(std::initializer_list<int64_t> dims) {
  assert(dims.size() <= kMaxRank);
  for (int64_t dim : dims) dims_[rank_++] = dim;
}

int64_t Shape::numel() const {
  int64_t count = 1;
  for (int i = 0; i < rank_; ++i) count *= dims_[i];
  return count;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i) {
    if (dims_[i] != other.dims_[i]) return false;
  }
  return true;
}

std::string Shape::ToString() const { return "[" + absl::StrJoin(dims_.begin(), dims_.begin() + rank_, ", ") + "]"; }

int64_t Tensor::rows() const {
  int64_t count = 1;
  for (int i = 0; i + 1 < shape.rank(); ++i) count *= shape[i];
  return count;
}

Tensor Tensor::Rows(int64_t begin, int64_t count) const {
  Tensor view = *this;
  view.data = static_cast<char*>(data) + static_cast<size_t>(begin * cols()) * DTypeSize(dtype);
  view.shape = Shape{count, cols()};
  return view;
}

Tensor Tensor::Reshaped(Shape new_shape) const {
  assert(new_shape.numel() == numel());
  Tensor view = *this;
  view.shape = new_shape;
  return view;
}

Buffer::Buffer(void* data, size_t bytes, Release release) : data_(data), bytes_(bytes), release_(std::move(release)) {}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      release_(std::move(other.release_)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr && release_) release_(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    release_ = std::move(other.release_);
  }
  return *this;
}

Buffer::~Buffer() {
  if (data_ != nullptr && release_) release_(data_);
}

Tensor Buffer::View(DType dtype, Shape shape) const {
  Tensor view{data_, dtype, shape};
  assert(view.bytes() <= bytes_);
  return view;
}

}  // namespace nibble
