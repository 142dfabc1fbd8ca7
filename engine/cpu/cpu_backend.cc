#include "engine/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/parallel_for.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

absl::Status CheckF32(absl::string_view op, absl::string_view name, const Tensor& tensor) {
  if (tensor.data == nullptr || tensor.dtype != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("cpu ", op, ": ", name, " must be a non-empty F32 tensor, got ",
                                                   DTypeName(tensor.dtype), " ", tensor.shape.ToString()));
  }
  return absl::OkStatus();
}

absl::Status CheckShape(absl::string_view op, absl::string_view name, const Tensor& tensor, int64_t rows,
                        int64_t cols) {
  if (tensor.rows() != rows || tensor.cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat("cpu ", op, ": ", name, " has shape ", tensor.shape.ToString(),
                                                   ", expected [", rows, ", ", cols, "]"));
  }
  return absl::OkStatus();
}

// A dense Linear: fp32 [out, in] row-major, as nn.Linear stores it.
class CpuDenseLinear : public LinearWeights {
 public:
  CpuDenseLinear(int64_t in, int64_t out, std::vector<float> weight, std::vector<float> bias)
      : LinearWeights(in, out), weight_(std::move(weight)), bias_(std::move(bias)) {}
  size_t bytes() const override { return (weight_.size() + bias_.size()) * sizeof(float); }

  // Fills row n of W (fp32 [in]) into `row` and returns it.
  const float* Row(int64_t n, std::vector<float>&) const { return weight_.data() + n * in_features(); }
  const std::vector<float>& bias() const { return bias_; }

 private:
  std::vector<float> weight_;
  std::vector<float> bias_;
};

// A 4-bit AWQ Linear kept in its packed GEMM layout and dequantized row by row on the fly.
class CpuAwqLinear : public LinearWeights {
 public:
  CpuAwqLinear(int64_t in, int64_t out, std::vector<uint8_t> codes, std::vector<uint8_t> zeros,
               std::vector<float> scales, int group_size, std::vector<float> bias)
      : LinearWeights(in, out),
        codes_(std::move(codes)),
        zeros_(std::move(zeros)),
        scales_(std::move(scales)),
        group_size_(group_size),
        bias_(std::move(bias)) {}
  // Packed codes take half a byte each; the unpacked copy here is for simplicity of the reference loops.
  size_t bytes() const override {
    return codes_.size() / 2 + zeros_.size() / 2 + scales_.size() * 2 + bias_.size() * sizeof(float);
  }

  // Dequantizes row n of W: w[k] = (q[n, k] - zero[g, n]) * scale[g, n] with g = k / group_size.
  const float* Row(int64_t n, std::vector<float>& row) const {
    const int64_t in = in_features();
    row.resize(static_cast<size_t>(in));
    for (int64_t k = 0; k < in; ++k) {
      const int64_t g = k / group_size_;
      const size_t gn = static_cast<size_t>(g * out_features() + n);
      row[k] = (static_cast<float>(codes_[n * in + k]) - static_cast<float>(zeros_[gn])) * scales_[gn];
    }
    return row.data();
  }
  const std::vector<float>& bias() const { return bias_; }

 private:
  std::vector<uint8_t> codes_;  // [out, in], transposed from the checkpoint for row-wise dequantization
  std::vector<uint8_t> zeros_;  // [groups, out]
  std::vector<float> scales_;   // [groups, out]
  int group_size_;
  std::vector<float> bias_;
};

// y[t, n] = sum_k x[t, k] * W[n, k] (+ b[n]), summed in order of k as run.c's matmul does.
//
// Tokens go 32 at a time: x is first copied into tiles transposed to [k][32 tokens], so that for each k eight
// 4-lane multiply-adds (eight independent addition chains, held in registers) advance 32 sums. Each lane is
// still one token's sum in order of k with separate multiplies and adds, so results are bitwise those of
// run.c's scalar loop; the tiles only keep the FPU busy instead of waiting on one addition chain. Tokens past
// the last full tile take the scalar loop.
template <typename LinearT>
void MatMul(ThreadPool& pool, const LinearT& linear, const Tensor& x, const Tensor& y) {
  using Lanes = float __attribute__((vector_size(16)));  // 4 floats: one SSE register
  constexpr int64_t kChains = 8;
  constexpr int64_t kTile = 4 * kChains;
  const int64_t tokens = x.rows();
  const int64_t in = linear.in_features();
  const int64_t out = linear.out_features();
  const float* xs = x.as<float>();
  float* ys = y.as<float>();
  const std::vector<float>& bias = linear.bias();
  const int64_t full_tiles = tokens / kTile;
  std::vector<Lanes> tiles(static_cast<size_t>(full_tiles * in * kChains));  // [tile][k][chain] -> 4 tokens
  for (int64_t tile = 0; tile < full_tiles; ++tile) {
    for (int64_t k = 0; k < in; ++k) {
      for (int64_t i = 0; i < kTile; ++i)
        tiles[(tile * in + k) * kChains + i / 4][i % 4] = xs[(tile * kTile + i) * in + k];
    }
  }
  // Output columns in parallel: each y element is one thread's sum in order of k.
  pool.ParallelFor(out, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, tokens * in)),
                   [&](int64_t begin, int64_t end) {
                     std::vector<float> scratch;
                     for (int64_t n = begin; n < end; ++n) {
                       const float* w = linear.Row(n, scratch);
                       const float b = bias.empty() ? 0.0f : bias[n];
                       for (int64_t tile = 0; tile < full_tiles; ++tile) {
                         const Lanes* xt = tiles.data() + tile * in * kChains;
                         Lanes s0 = {}, s1 = {}, s2 = {}, s3 = {}, s4 = {}, s5 = {}, s6 = {}, s7 = {};
                         for (int64_t k = 0; k < in; ++k, xt += kChains) {
                           const float wk = w[k];
                           s0 += wk * xt[0];
                           s1 += wk * xt[1];
                           s2 += wk * xt[2];
                           s3 += wk * xt[3];
                           s4 += wk * xt[4];
                           s5 += wk * xt[5];
                           s6 += wk * xt[6];
                           s7 += wk * xt[7];
                         }
                         const Lanes sums[kChains] = {s0, s1, s2, s3, s4, s5, s6, s7};
                         for (int64_t i = 0; i < kTile; ++i) {
                           const float sum = sums[i / 4][i % 4];
                           ys[(tile * kTile + i) * out + n] = bias.empty() ? sum : sum + b;
                         }
                       }
                       for (int64_t t = full_tiles * kTile; t < tokens; ++t) {
                         const float* xt = xs + t * in;
                         float sum = 0.0f;
                         for (int64_t k = 0; k < in; ++k) sum += w[k] * xt[k];
                         ys[t * out + n] = bias.empty() ? sum : sum + b;
                       }
                     }
                   });
}

class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }
  MemoryUsage memory_usage() const override { return {}; }

  absl::StatusOr<Buffer> Allocate(size_t bytes) override {
    void* data = ::operator new (std::max<size_t>(bytes, 1), std::align_val_t{64}, std::nothrow);
    if (data == nullptr) return absl::ResourceExhaustedError(absl::StrCat("cpu: cannot allocate ", bytes, " bytes"));
    return Buffer(data, bytes, [](void* p) { ::operator delete (p, std::align_val_t{64}); });
  }
  absl::Status CopyToDevice(const void* host, const Tensor& dst) override {
    std::memcpy(dst.data, host, dst.bytes());
    return absl::OkStatus();
  }
  absl::Status CopyToHost(const Tensor& src, void* host) override {
    std::memcpy(host, src.data, src.bytes());
    return absl::OkStatus();
  }
  absl::Status Synchronize() override { return absl::OkStatus(); }

  absl::StatusOr<std::unique_ptr<LinearWeights>> UploadLinear(const HostLinear& linear) override {
    const int64_t in = linear.in_features;
    const int64_t out = linear.out_features;
    std::vector<float> bias = linear.bias ? linear.bias->ToFloats() : std::vector<float>{};
    if (const auto* awq = std::get_if<AwqWeight>(&linear.weight)) {
      const int64_t groups = (in + awq->group_size - 1) / awq->group_size;
      const std::vector<uint8_t> codes_in_out = UnpackAwqNibbles(awq->qweight, in, out, &pool_);
      std::vector<uint8_t> codes(codes_in_out.size());
      for (int64_t k = 0; k < in; ++k) {
        for (int64_t n = 0; n < out; ++n) codes[n * in + k] = codes_in_out[k * out + n];
      }
      return std::make_unique<CpuAwqLinear>(in, out, std::move(codes),
                                            UnpackAwqNibbles(awq->qzeros, groups, out, &pool_), awq->scales.ToFloats(),
                                            awq->group_size, std::move(bias));
    }
    return std::make_unique<CpuDenseLinear>(in, out, std::get<HostTensor>(linear.weight).ToFloats(), std::move(bias));
  }

  absl::StatusOr<DeviceTensor> UploadTensor(const HostTensor& tensor, DType dtype) override {
    if (!IsFloat(tensor.dtype) || dtype != DType::kF32) {
      return absl::InvalidArgumentError("cpu UploadTensor: float tensors into F32 only");
    }
    DeviceTensor result;
    NIBBLE_ASSIGN_OR_RETURN(result.buffer, Allocate(static_cast<size_t>(tensor.numel()) * sizeof(float)));
    result.tensor = result.buffer.View(DType::kF32, tensor.shape);
    ConvertToFloat(tensor.dtype, tensor.data, {result.tensor.as<float>(), static_cast<size_t>(tensor.numel())});
    return result;
  }

  absl::Status Embedding(const Tensor& table, const Tensor& token_ids, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckF32("Embedding", "table", table));
    NIBBLE_RETURN_IF_ERROR(CheckF32("Embedding", "out", out));
    NIBBLE_RETURN_IF_ERROR(CheckShape("Embedding", "out", out, token_ids.numel(), table.cols()));
    const int64_t dim = table.cols();
    for (int64_t t = 0; t < token_ids.numel(); ++t) {
      const int32_t id = token_ids.as<int32_t>()[t];
      if (id < 0 || id >= table.rows()) {
        return absl::InvalidArgumentError(absl::StrCat("cpu Embedding: token id ", id, " outside the vocabulary"));
      }
      std::memcpy(out.as<float>() + t * dim, table.as<float>() + id * dim, dim * sizeof(float));
    }
    return absl::OkStatus();
  }

  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckF32("RmsNorm", "x", x));
    NIBBLE_RETURN_IF_ERROR(CheckShape("RmsNorm", "out", out, x.rows(), x.cols()));
    NIBBLE_RETURN_IF_ERROR(CheckShape("RmsNorm", "weight", weight, 1, x.cols()));
    for (int64_t t = 0; t < x.rows(); ++t)
      NormRow(x.as<float>() + t * x.cols(), weight, eps, out.as<float>() + t * x.cols());
    return absl::OkStatus();
  }

  absl::Status AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                          const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckF32("AddRmsNorm", "residual", residual));
    NIBBLE_RETURN_IF_ERROR(CheckShape("AddRmsNorm", "delta", delta, residual.rows(), residual.cols()));
    const int64_t dim = residual.cols();
    for (int64_t i = 0; i < residual.numel(); ++i) residual.as<float>()[i] += delta.as<float>()[i];
    if (out.data == nullptr) return absl::OkStatus();
    NIBBLE_RETURN_IF_ERROR(CheckShape("AddRmsNorm", "out", out, residual.rows(), dim));
    NIBBLE_RETURN_IF_ERROR(CheckShape("AddRmsNorm", "weight", weight, 1, dim));
    for (int64_t t = 0; t < residual.rows(); ++t) {
      NormRow(residual.as<float>() + t * dim, weight, eps, out.as<float>() + t * dim);
    }
    return absl::OkStatus();
  }

  absl::Status Linear(const LinearWeights& weights, const Tensor& x, const Tensor& y) override {
    NIBBLE_RETURN_IF_ERROR(CheckF32("Linear", "x", x));
    NIBBLE_RETURN_IF_ERROR(CheckF32("Linear", "y", y));
    NIBBLE_RETURN_IF_ERROR(CheckShape("Linear", "x", x, x.rows(), weights.in_features()));
    NIBBLE_RETURN_IF_ERROR(CheckShape("Linear", "y", y, x.rows(), weights.out_features()));
    if (const auto* dense = dynamic_cast<const CpuDenseLinear*>(&weights)) {
      MatMul(pool_, *dense, x, y);
    } else if (const auto* awq = dynamic_cast<const CpuAwqLinear*>(&weights)) {
      MatMul(pool_, *awq, x, y);
    } else {
      return absl::InvalidArgumentError("cpu Linear: weights were not uploaded by the CPU backend");
    }
    return absl::OkStatus();
  }

  absl::Status Attention(const Tensor& qkv, const Tensor& inv_freq, const KvLayer& cache, const DeviceBatch& batch,
                         const AttentionShape& shape, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(Rope(qkv, batch.positions, inv_freq, shape));
    return AttendWithCache(qkv, cache, batch, shape, out);
  }

  absl::Status SiluMul(const Tensor& gate_up, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckF32("SiluMul", "gate_up", gate_up));
    const int64_t f = out.cols();
    NIBBLE_RETURN_IF_ERROR(CheckShape("SiluMul", "gate_up", gate_up, out.rows(), 2 * f));
    for (int64_t t = 0; t < out.rows(); ++t) {
      const float* gate = gate_up.as<float>() + t * 2 * f;
      const float* up = gate + f;
      float* o = out.as<float>() + t * f;
      for (int64_t i = 0; i < f; ++i) {
        float value = gate[i];
        value *= 1.0f / (1.0f + std::exp(-value));
        o[i] = value * up[i];
      }
    }
    return absl::OkStatus();
  }

  absl::Status GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckF32("GatherRows", "x", x));
    NIBBLE_RETURN_IF_ERROR(CheckShape("GatherRows", "out", out, rows.numel(), x.cols()));
    for (int64_t r = 0; r < rows.numel(); ++r) {
      const int32_t row = rows.as<int32_t>()[r];
      if (row < 0 || row >= x.rows()) return absl::InvalidArgumentError("cpu GatherRows: row out of range");
      std::memcpy(out.as<float>() + r * x.cols(), x.as<float>() + row * x.cols(), x.cols() * sizeof(float));
    }
    return absl::OkStatus();
  }

  absl::Status Sample(const Tensor& logits, std::span<const SamplingRequest> requests,
                      std::span<SampledToken> out) override {
    NIBBLE_RETURN_IF_ERROR(CheckF32("Sample", "logits", logits));
    if (static_cast<int64_t>(requests.size()) != logits.rows() || out.size() != requests.size()) {
      return absl::InvalidArgumentError("cpu Sample: one request and one output per logits row");
    }
    for (size_t r = 0; r < requests.size(); ++r) {
      std::span<float> row(logits.as<float>() + r * logits.cols(), static_cast<size_t>(logits.cols()));
      out[r] = SampleFromLogits(row, requests[r]);
    }
    return absl::OkStatus();
  }

 private:
  // Rotate-half RoPE in place on the q and k heads of qkv (run.c's rotation, pairs half a head apart).
  absl::Status Rope(const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq, const AttentionShape& shape) {
    NIBBLE_RETURN_IF_ERROR(CheckF32("Rope", "qkv", qkv));
    const int64_t width = static_cast<int64_t>(shape.num_heads + 2 * shape.num_kv_heads) * shape.head_dim;
    NIBBLE_RETURN_IF_ERROR(CheckShape("Rope", "qkv", qkv, positions.numel(), width));
    const int half = shape.head_dim / 2;
    const int rotated_heads = shape.num_heads + shape.num_kv_heads;  // q heads, then k heads
    for (int64_t t = 0; t < qkv.rows(); ++t) {
      const float position = static_cast<float>(positions.as<int32_t>()[t]);
      float* row = qkv.as<float>() + t * width;
      for (int i = 0; i < half; ++i) {
        const float angle = position * inv_freq.as<float>()[i];
        const float cos = std::cos(angle);
        const float sin = std::sin(angle);
        for (int h = 0; h < rotated_heads; ++h) {
          float* head = row + h * shape.head_dim;
          const float x0 = head[i];
          const float x1 = head[i + half];
          head[i] = x0 * cos - x1 * sin;
          head[i + half] = x0 * sin + x1 * cos;
        }
      }
    }
    return absl::OkStatus();
  }

  // Stores k and v of every token in the cache, then attends (run.c's loop order).
  absl::Status AttendWithCache(const Tensor& qkv, const KvLayer& cache, const DeviceBatch& batch,
                               const AttentionShape& shape, const Tensor& out) {
    NIBBLE_RETURN_IF_ERROR(CheckF32("Attention", "qkv", qkv));
    NIBBLE_RETURN_IF_ERROR(CheckF32("Attention", "k cache", cache.k));
    const int dh = shape.head_dim;
    const int64_t width = static_cast<int64_t>(shape.num_heads + 2 * shape.num_kv_heads) * dh;
    NIBBLE_RETURN_IF_ERROR(CheckShape("Attention", "qkv", qkv, batch.num_tokens, width));
    NIBBLE_RETURN_IF_ERROR(CheckShape("Attention", "out", out, batch.num_tokens, int64_t{shape.num_heads} * dh));
    const int64_t block_size = cache.k.shape[1];
    const int64_t kv_width = int64_t{shape.num_kv_heads} * dh;
    const int32_t* seq_starts = batch.seq_starts.as<int32_t>();
    const int32_t* positions = batch.positions.as<int32_t>();
    const int32_t* tables = batch.block_tables.as<int32_t>();
    const int64_t table_width = batch.block_tables.cols();
    // Address of token `pos` of sequence b in a cache tensor [blocks, block_size, K, Dh].
    auto slot = [&](const Tensor& c, int32_t b, int32_t pos) {
      const int32_t block = tables[b * table_width + pos / block_size];
      return c.as<float>() + (block * block_size + pos % block_size) * kv_width;
    };

    // 1. Write every new token's k and v into its sequence's blocks.
    for (int32_t b = 0; b < batch.num_seqs; ++b) {
      for (int32_t t = seq_starts[b]; t < seq_starts[b + 1]; ++t) {
        const float* row = qkv.as<float>() + t * width;
        std::memcpy(slot(cache.k, b, positions[t]), row + int64_t{shape.num_heads} * dh, kv_width * sizeof(float));
        std::memcpy(slot(cache.v, b, positions[t]), row + int64_t{shape.num_heads} * dh + kv_width,
                    kv_width * sizeof(float));
      }
    }
    // 2. Each token attends to its sequence's positions first..position (run.c's loop order), first = 0 or,
    //    with a sliding window W, position - W + 1 (backend.h). Tokens run in parallel; each output row is one
    //    thread's work in that order, so results do not depend on threads.
    const int group = shape.num_heads / shape.num_kv_heads;
    const float scale = std::sqrt(static_cast<float>(dh));
    std::vector<int32_t> sequence_of(static_cast<size_t>(batch.num_tokens));
    for (int32_t b = 0; b < batch.num_seqs; ++b) {
      std::fill(sequence_of.begin() + seq_starts[b], sequence_of.begin() + seq_starts[b + 1], b);
    }
    pool_.ParallelFor(batch.num_tokens, 8, [&](int64_t begin, int64_t end) {
      std::vector<float> scores;  // of positions first..pos, at index p - first
      std::vector<int64_t> rows;  // cache row of each position first..pos (block lookups hoisted out of the heads)
      for (int64_t t = begin; t < end; ++t) {
        const int32_t b = sequence_of[static_cast<size_t>(t)];
        const int32_t pos = positions[t];
        const int32_t first = shape.sliding_window > 0 ? std::max(0, pos - shape.sliding_window + 1) : 0;
        const size_t keys = static_cast<size_t>(pos - first) + 1;
        scores.resize(keys);
        rows.resize(keys);
        for (int32_t p = first; p <= pos; ++p) {
          rows[p - first] =
              (int64_t{tables[b * table_width + p / block_size]} * block_size + p % block_size) * kv_width;
        }
        for (int h = 0; h < shape.num_heads; ++h) {
          const float* q = qkv.as<float>() + t * width + h * dh;
          const int64_t head_offset = int64_t{h / group} * dh;
          const float* key_rows = cache.k.as<float>() + head_offset;
          const float* values = cache.v.as<float>() + head_offset;
          for (size_t j = 0; j < keys; ++j) {
            const float* k = key_rows + rows[j];
            float score = 0.0f;
            for (int i = 0; i < dh; ++i) score += q[i] * k[i];
            scores[j] = score / scale;
          }
          Softmax(scores);
          float* o = out.as<float>() + t * out.cols() + h * dh;
          std::memset(o, 0, dh * sizeof(float));
          for (size_t j = 0; j < keys; ++j) {
            const float* v = values + rows[j];
            for (int i = 0; i < dh; ++i) o[i] += scores[j] * v[i];
          }
        }
      }
    });
    return absl::OkStatus();
  }

  // run.c's rmsnorm: o[j] = weight[j] * (x[j] / sqrt(mean(x^2) + eps)).
  static void NormRow(const float* x, const Tensor& weight, float eps, float* out) {
    const int64_t dim = weight.numel();
    float ss = 0.0f;
    for (int64_t j = 0; j < dim; ++j) ss += x[j] * x[j];
    ss /= static_cast<float>(dim);
    ss += eps;
    ss = 1.0f / std::sqrt(ss);
    for (int64_t j = 0; j < dim; ++j) out[j] = weight.as<float>()[j] * (ss * x[j]);
  }

  // run.c's softmax, in place.
  static void Softmax(std::vector<float>& x) {
    float max = x[0];
    for (float value : x) max = std::max(max, value);
    float sum = 0.0f;
    for (float& value : x) {
      value = std::exp(value - max);
      sum += value;
    }
    for (float& value : x) value /= sum;
  }

  ThreadPool pool_;  // the matmul, attention and weight unpacking run on it
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend() { return std::make_unique<CpuBackend>(); }

}  // namespace nibble
