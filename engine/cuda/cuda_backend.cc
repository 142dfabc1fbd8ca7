#include "engine/cuda/cuda_backend.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/parallel_for.h"
#include "engine/base/status_macros.h"
#include "engine/cuda/attention_kernels.h"
#include "engine/cuda/cublas_library.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/elementwise_kernels.h"
#include "engine/cuda/norm_kernels.h"
#include "engine/cuda/sampling_kernels.h"
#include "engine/cuda/w4a16_kernels.h"
#include "engine/cuda/w4a16_layout.h"

namespace nibble {
namespace {

using cuda::CudaStatus;

absl::Status CheckTensor(absl::string_view op, absl::string_view name, const Tensor& tensor, DType dtype, int64_t rows,
                         int64_t cols) {
  if (tensor.data == nullptr || tensor.dtype != dtype || tensor.rows() != rows || tensor.cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat("cuda ", op, ": ", name, " is ", DTypeName(tensor.dtype), " ",
                                                   tensor.shape.ToString(), ", expected ", DTypeName(dtype), " [", rows,
                                                   ", ", cols, "]"));
  }
  return absl::OkStatus();
}

// fp16 bits of a float tensor of any float dtype.
std::vector<uint16_t> ToHalfBits(const HostTensor& tensor) {
  std::vector<uint16_t> bits(static_cast<size_t>(tensor.numel()));
  if (tensor.dtype == DType::kF16) {
    std::copy_n(reinterpret_cast<const uint16_t*>(tensor.data), bits.size(), bits.begin());
  } else {
    const std::vector<float> values = tensor.ToFloats();
    ConvertFromFloat(values, DType::kF16, bits.data());
  }
  return bits;
}

// Device memory that grows on demand, at least doubling each time; growing is refused while a graph is being
// captured. An outgrown buffer is kept, not freed, for the backend's lifetime: graphs captured before the growth
// hold its address and are still replayed (a decode step of a short context replays the graph captured before a
// longer context grew the attention partials), and doubling bounds what is kept to the current buffer's size.
// New memory is zeroed on the backend's stream (split-K and attention counters start at zero), so the zeroing
// is ordered before every kernel that uses it.
class Scratch {
 public:
  template <typename T>
  absl::StatusOr<T*> Get(Backend& backend, cudaStream_t stream, size_t count, bool capturing, absl::string_view what) {
    const size_t bytes = std::max<size_t>(count * sizeof(T), 1);
    if (bytes > buffer_.bytes()) {
      if (capturing) return absl::FailedPreconditionError(absl::StrCat(what, ": scratch must grow during a capture"));
      const size_t grown = std::max(bytes, 2 * buffer_.bytes());
      NIBBLE_ASSIGN_OR_RETURN(Buffer bigger, backend.Allocate(grown));
      NIBBLE_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(bigger.data(), 0, grown, stream), what));
      if (buffer_.data() != nullptr) outgrown_.push_back(std::move(buffer_));
      buffer_ = std::move(bigger);
    }
    return static_cast<T*>(buffer_.data());
  }

 private:
  Buffer buffer_;
  std::vector<Buffer> outgrown_;  // still referenced by captured graphs
};

class CudaDenseLinear : public LinearWeights {
 public:
  CudaDenseLinear(int64_t in, int64_t out, Buffer weight, Buffer bias)
      : LinearWeights(in, out), weight_(std::move(weight)), bias_(std::move(bias)) {}
  size_t bytes() const override { return weight_.bytes() + bias_.bytes(); }
  const half* weight() const { return static_cast<const half*>(weight_.data()); }  // [out, in]
  const float* bias() const { return static_cast<const float*>(bias_.data()); }    // [out] or null

 private:
  Buffer weight_;
  Buffer bias_;
};

class CudaW4Linear : public LinearWeights {
 public:
  CudaW4Linear(int64_t in, int64_t out, Buffer codes, Buffer scales, Buffer zeros, Buffer bias, bool tiled,
               int group_size)
      : LinearWeights(in, out),
        codes_(std::move(codes)),
        scales_(std::move(scales)),
        zeros_(std::move(zeros)),
        bias_(std::move(bias)) {
    device_.codes = static_cast<const uint32_t*>(codes_.data());
    device_.scales = static_cast<const half*>(scales_.data());
    device_.zeros = static_cast<const uint32_t*>(zeros_.data());
    device_.n = out;
    device_.k = in;
    device_.group_size = group_size;
    device_.tiled = tiled;
  }
  size_t bytes() const override { return codes_.bytes() + scales_.bytes() + zeros_.bytes() + bias_.bytes(); }
  const cuda::W4DeviceWeights& device() const { return device_; }
  const float* bias() const { return static_cast<const float*>(bias_.data()); }

 private:
  Buffer codes_;
  Buffer scales_;
  Buffer zeros_;
  Buffer bias_;
  cuda::W4DeviceWeights device_;
};

class CudaGraph : public CapturedWork {
 public:
  CudaGraph(cudaGraph_t graph, cudaGraphExec_t exec) : graph_(graph), exec_(exec) {}
  ~CudaGraph() override {
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  cudaGraph_t graph_;
  cudaGraphExec_t exec_;
};

class CudaBackend : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<Backend>> Create(int device) {
    auto backend = std::unique_ptr<CudaBackend>(new CudaBackend(device));
    NIBBLE_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "cudaSetDevice"));
    cudaDeviceProp properties{};
    NIBBLE_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties"));
    backend->sm_count_ = properties.multiProcessorCount;
    backend->device_name_ = properties.name;
    NIBBLE_RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&backend->stream_, cudaStreamNonBlocking), "stream"));
    NIBBLE_ASSIGN_OR_RETURN(backend->cublas_library_, cuda::CublasLibrary::Open());
    const cuda::CublasLibrary& cublas = *backend->cublas_library_;
    NIBBLE_RETURN_IF_ERROR(cublas.Check(cublas.create(&backend->cublas_), "cublasCreate"));
    NIBBLE_RETURN_IF_ERROR(cublas.Check(cublas.set_stream(backend->cublas_, backend->stream_), "cublasSetStream"));
    // A fixed cuBLAS workspace keeps its calls capturable in CUDA graphs.
    NIBBLE_ASSIGN_OR_RETURN(backend->cublas_workspace_, backend->Allocate(kCublasWorkspaceBytes));
    NIBBLE_RETURN_IF_ERROR(
        cublas.Check(cublas.set_workspace(backend->cublas_, backend->cublas_workspace_.data(), kCublasWorkspaceBytes),
                     "cublasSetWorkspace"));
    return std::unique_ptr<Backend>(std::move(backend));
  }

  ~CudaBackend() override {
    if (cublas_ != nullptr) cublas_library_->destroy(cublas_);
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  std::string name() const override { return absl::StrCat("cuda:", device_, " (", device_name_, ")"); }
  DType activation_dtype() const override { return DType::kF16; }
  MemoryUsage memory_usage() const override {
    size_t free = 0;
    size_t total = 0;
    if (cudaSetDevice(device_) != cudaSuccess || cudaMemGetInfo(&free, &total) != cudaSuccess) return {};
    return {total - free, total};
  }

  absl::StatusOr<Buffer> Allocate(size_t bytes) override {
    void* data = nullptr;
    const cudaError_t error = cudaMalloc(&data, std::max<size_t>(bytes, 1));
    if (error != cudaSuccess) {
      cudaGetLastError();
      return absl::ResourceExhaustedError(
          absl::StrCat("cuda:", device_, ": cannot allocate ", bytes, " bytes: ", cudaGetErrorString(error)));
    }
    return Buffer(data, bytes, [](void* p) { cudaFree(p); });
  }
  absl::Status CopyToDevice(const void* host, const Tensor& dst) override {
    return CudaStatus(cudaMemcpyAsync(dst.data, host, dst.bytes(), cudaMemcpyHostToDevice, stream_), "copy to GPU");
  }
  absl::Status CopyToHost(const Tensor& src, void* host) override {
    NIBBLE_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpyAsync(host, src.data, src.bytes(), cudaMemcpyDeviceToHost, stream_), "copy to host"));
    return Synchronize();
  }
  absl::Status Synchronize() override { return CudaStatus(cudaStreamSynchronize(stream_), "GPU step"); }

  bool SupportsCapture() const override { return true; }
  absl::Status BeginCapture() override {
    // Thread-local mode: other threads' CUDA calls (a metrics scrape asking for memory) stay legal.
    NIBBLE_RETURN_IF_ERROR(CudaStatus(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "capture"));
    capturing_ = true;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<CapturedWork>> EndCapture() override {
    capturing_ = false;
    cudaGraph_t graph = nullptr;
    NIBBLE_RETURN_IF_ERROR(CudaStatus(cudaStreamEndCapture(stream_, &graph), "end capture"));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t error = cudaGraphInstantiate(&exec, graph, 0);
    if (error != cudaSuccess) {
      cudaGraphDestroy(graph);
      return CudaStatus(error, "instantiate captured step");
    }
    return std::make_unique<CudaGraph>(graph, exec);
  }
  absl::Status Replay(const CapturedWork& work) override {
    const auto* graph = dynamic_cast<const CudaGraph*>(&work);
    if (graph == nullptr) return absl::InvalidArgumentError("cuda Replay: work was not captured by a CUDA backend");
    return CudaStatus(cudaGraphLaunch(graph->exec(), stream_), "replay captured step");
  }
  uint64_t CaptureKey(const DeviceBatch& batch) const override {
    // The decode attention grid has one block column per kDecodePartition positions of the longest context.
    return static_cast<uint64_t>((batch.max_context + cuda::kDecodePartition - 1) / cuda::kDecodePartition);
  }

  absl::StatusOr<std::unique_ptr<LinearWeights>> UploadLinear(const HostLinear& linear) override {
    const int64_t in = linear.in_features;
    const int64_t out = linear.out_features;
    Buffer bias;
    if (linear.bias) {
      NIBBLE_ASSIGN_OR_RETURN(bias, UploadFloats(linear.bias->ToFloats()));
    }
    if (const auto* awq = std::get_if<AwqWeight>(&linear.weight)) {
      NIBBLE_ASSIGN_OR_RETURN(cuda::W4Weights w, cuda::RepackAwq(*awq, in, out, repack_pool_));
      NIBBLE_ASSIGN_OR_RETURN(Buffer codes, UploadBytes(w.codes.data(), w.codes.size() * sizeof(uint32_t)));
      NIBBLE_ASSIGN_OR_RETURN(Buffer scales, UploadBytes(w.scales.data(), w.scales.size() * sizeof(uint16_t)));
      NIBBLE_ASSIGN_OR_RETURN(Buffer zeros, UploadBytes(w.zeros.data(), w.zeros.size() * sizeof(uint32_t)));
      // Size the scratch this Linear needs now, so that steps never allocate: the split-K workspace for up
      // to 32 tokens, and the fp16 copy of W the prefill path multiplies with cuBLAS.
      NIBBLE_RETURN_IF_ERROR(
          split_workspace_.Get<float>(*this, stream_, 32 * out, false, "split-K workspace").status());
      NIBBLE_RETURN_IF_ERROR(
          split_counters_.Get<int>(*this, stream_, out / cuda::kTileRows + 1, false, "split-K counters").status());
      NIBBLE_RETURN_IF_ERROR(dequantized_.Get<half>(*this, stream_, in * out, false, "dequantized weights").status());
      return std::make_unique<CudaW4Linear>(in, out, std::move(codes), std::move(scales), std::move(zeros),
                                            std::move(bias), w.tiled, w.group_size);
    }
    const std::vector<uint16_t> bits = ToHalfBits(std::get<HostTensor>(linear.weight));
    NIBBLE_ASSIGN_OR_RETURN(Buffer weight, UploadBytes(bits.data(), bits.size() * sizeof(uint16_t)));
    return std::make_unique<CudaDenseLinear>(in, out, std::move(weight), std::move(bias));
  }

  absl::StatusOr<DeviceTensor> UploadTensor(const HostTensor& tensor, DType dtype) override {
    if (!IsFloat(tensor.dtype) || (dtype != DType::kF16 && dtype != DType::kF32)) {
      return absl::InvalidArgumentError("cuda UploadTensor: float tensors into F16 or F32 only");
    }
    DeviceTensor result;
    if (dtype == DType::kF16) {
      const std::vector<uint16_t> bits = ToHalfBits(tensor);
      NIBBLE_ASSIGN_OR_RETURN(result.buffer, UploadBytes(bits.data(), bits.size() * sizeof(uint16_t)));
    } else {
      NIBBLE_ASSIGN_OR_RETURN(result.buffer, UploadFloats(tensor.ToFloats()));
    }
    result.tensor = result.buffer.View(dtype, tensor.shape);
    return result;
  }

  absl::Status Embedding(const Tensor& table, const Tensor& token_ids, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckTensor("Embedding", "out", out, DType::kF16, token_ids.numel(), table.cols()));
    return cuda::LaunchEmbedding(table.as<half>(), token_ids.as<int>(), token_ids.numel(), table.rows(), table.cols(),
                                 out.as<half>(), stream_);
  }

  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckTensor("RmsNorm", "x", x, DType::kF16, x.rows(), weight.numel()));
    NIBBLE_RETURN_IF_ERROR(CheckTensor("RmsNorm", "out", out, DType::kF16, x.rows(), x.cols()));
    return cuda::LaunchRmsNorm(x.as<half>(), weight.as<half>(), eps, x.rows(), x.cols(), out.as<half>(), stream_);
  }

  absl::Status AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                          const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckTensor("AddRmsNorm", "delta", delta, DType::kF16, residual.rows(), residual.cols()));
    if (out.data != nullptr) {
      NIBBLE_RETURN_IF_ERROR(CheckTensor("AddRmsNorm", "out", out, DType::kF16, residual.rows(), residual.cols()));
      NIBBLE_RETURN_IF_ERROR(CheckTensor("AddRmsNorm", "weight", weight, DType::kF16, 1, residual.cols()));
    }
    return cuda::LaunchAddRmsNorm(residual.as<half>(), delta.as<half>(), out.data ? weight.as<half>() : nullptr, eps,
                                  residual.rows(), residual.cols(), out.as<half>(), stream_);
  }

  absl::Status Linear(const LinearWeights& weights, const Tensor& x, const Tensor& y) override {
    const int64_t m = x.rows();
    NIBBLE_RETURN_IF_ERROR(CheckTensor("Linear", "x", x, DType::kF16, m, weights.in_features()));
    if (y.dtype != DType::kF16 && y.dtype != DType::kF32) {
      return absl::InvalidArgumentError("cuda Linear: y must be F16 or F32");
    }
    NIBBLE_RETURN_IF_ERROR(CheckTensor("Linear", "y", y, y.dtype, m, weights.out_features()));
    if (const auto* dense = dynamic_cast<const CudaDenseLinear*>(&weights)) {
      NIBBLE_RETURN_IF_ERROR(Gemm(dense->weight(), x, y));
      return AddBias(dense->bias(), y);
    }
    const auto* w4 = dynamic_cast<const CudaW4Linear*>(&weights);
    if (w4 == nullptr) return absl::InvalidArgumentError("cuda Linear: weights were not uploaded by a CUDA backend");
    if (y.dtype != DType::kF16) return absl::InvalidArgumentError("cuda Linear: 4-bit weights produce F16 only");
    const cuda::W4DeviceWeights& w = w4->device();
    if (w.tiled && m <= 32) {
      const cuda::W4MmaPlan plan = cuda::PlanW4Mma(m, w.n, w.k, sm_count_);
      NIBBLE_ASSIGN_OR_RETURN(float* workspace,
                              split_workspace_.Get<float>(*this, stream_, 32 * w.n, capturing_, "split-K"));
      NIBBLE_ASSIGN_OR_RETURN(
          int* counters, split_counters_.Get<int>(*this, stream_, w.n / cuda::kTileRows + 1, capturing_, "split-K"));
      return cuda::LaunchW4Mma(w, x.as<half>(), m, w4->bias(), y.as<half>(), plan, workspace, counters, stream_);
    }
    if (!w.tiled && m <= 32) return cuda::LaunchW4Generic(w, x.as<half>(), m, w4->bias(), y.as<half>(), stream_);
    // Prefill: dequantize W to fp16 once per call, then one cuBLAS GEMM.
    NIBBLE_ASSIGN_OR_RETURN(half * dequantized,
                            dequantized_.Get<half>(*this, stream_, w.n * w.k, capturing_, "dequantized weights"));
    NIBBLE_RETURN_IF_ERROR(cuda::LaunchW4Dequantize(w, dequantized, stream_));
    NIBBLE_RETURN_IF_ERROR(Gemm(dequantized, x, y));
    return AddBias(w4->bias(), y);
  }

  absl::Status Attention(const Tensor& qkv, const Tensor& inv_freq, const KvLayer& cache, const DeviceBatch& batch,
                         const AttentionShape& shape, const Tensor& out) override {
    const int64_t width = static_cast<int64_t>(shape.num_heads + 2 * shape.num_kv_heads) * shape.head_dim;
    NIBBLE_RETURN_IF_ERROR(CheckTensor("Attention", "qkv", qkv, DType::kF16, batch.num_tokens, width));
    NIBBLE_RETURN_IF_ERROR(
        CheckTensor("Attention", "out", out, DType::kF16, batch.num_tokens, int64_t{shape.num_heads} * shape.head_dim));
    if (cache.k.dtype != DType::kF16) return absl::InvalidArgumentError("cuda Attention: the KV cache must be F16");
    cuda::AttentionArgs args;
    args.qkv = qkv.as<half>();
    args.k_cache = cache.k.as<half>();
    args.v_cache = cache.v.as<half>();
    args.inv_freq = inv_freq.as<float>();
    args.positions = batch.positions.as<int>();
    args.seq_starts = batch.seq_starts.as<int>();
    args.context_lens = batch.context_lens.as<int>();
    args.block_tables = batch.block_tables.as<int>();
    args.out = out.as<half>();
    args.num_tokens = batch.num_tokens;
    args.num_seqs = batch.num_seqs;
    args.num_heads = shape.num_heads;
    args.num_kv_heads = shape.num_kv_heads;
    args.head_dim = shape.head_dim;
    args.block_size = static_cast<int>(cache.k.shape[1]);
    args.table_width = static_cast<int>(batch.block_tables.cols());
    args.max_context = batch.max_context;
    args.max_new_tokens = batch.max_new_tokens;
    args.sliding_window = shape.sliding_window;
    NIBBLE_RETURN_IF_ERROR(cuda::LaunchRopeStore(args, stream_));
    if (batch.max_new_tokens > 1 && cuda::PrefillAttentionSupports(shape.head_dim)) {
      return cuda::LaunchAttentionPrefill(args, stream_);
    }
    NIBBLE_ASSIGN_OR_RETURN(float* partials,
                            attention_partials_.Get<float>(*this, stream_, cuda::AttentionDecodeWorkspaceFloats(args),
                                                           capturing_, "attention partials"));
    NIBBLE_ASSIGN_OR_RETURN(
        int* counters, attention_counters_.Get<int>(*this, stream_, cuda::AttentionDecodeCounters(args), capturing_,
                                                    "attention counters"));
    return cuda::LaunchAttentionDecode(args, partials, counters, stream_);
  }

  absl::Status SiluMul(const Tensor& gate_up, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckTensor("SiluMul", "gate_up", gate_up, DType::kF16, out.rows(), 2 * out.cols()));
    return cuda::LaunchSiluMul(gate_up.as<half>(), out.rows(), out.cols(), out.as<half>(), stream_);
  }

  absl::Status GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) override {
    NIBBLE_RETURN_IF_ERROR(CheckTensor("GatherRows", "out", out, x.dtype, rows.numel(), x.cols()));
    return cuda::LaunchGatherRows(x.data, rows.as<int>(), rows.numel(), x.cols(), static_cast<int>(DTypeSize(x.dtype)),
                                  out.data, stream_);
  }

  absl::Status Sample(const Tensor& logits, std::span<const SamplingRequest> requests,
                      std::span<SampledToken> out) override {
    const int rows = static_cast<int>(logits.rows());
    const int vocab = static_cast<int>(logits.cols());
    NIBBLE_RETURN_IF_ERROR(CheckTensor("Sample", "logits", logits, DType::kF32, rows, vocab));
    if (static_cast<int>(requests.size()) != rows || out.size() != requests.size()) {
      return absl::InvalidArgumentError("cuda Sample: one request and one output per logits row");
    }
    // Per-row parameters and the distinct seen tokens of each row (with their counts), in one upload.
    std::vector<cuda::SamplingRow> params(rows);
    std::vector<cuda::PenaltyEntry> penalties;
    for (int r = 0; r < rows; ++r) {
      const SamplingParams& p = *requests[r].params;
      params[r] = {p.temperature,
                   p.top_p,
                   p.min_p,
                   p.repetition_penalty,
                   p.presence_penalty,
                   p.frequency_penalty,
                   p.top_k,
                   std::min(p.num_logprobs, kMaxLogprobs),
                   p.seed,
                   requests[r].step,
                   static_cast<int>(penalties.size()),
                   0};
      const bool penalised = p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
      if (penalised) {
        std::map<int32_t, cuda::PenaltyEntry> seen;
        for (int32_t token : requests[r].prompt_tokens) {
          if (token >= 0 && token < vocab)
            seen.try_emplace(token, cuda::PenaltyEntry{token, 0, 0}).first->second.in_prompt = 1;
        }
        for (int32_t token : requests[r].output_tokens) {
          if (token >= 0 && token < vocab)
            ++seen.try_emplace(token, cuda::PenaltyEntry{token, 0, 0}).first->second.output_count;
        }
        for (const auto& [token, entry] : seen) penalties.push_back(entry);
      }
      params[r].penalty_end = static_cast<int>(penalties.size());
    }
    const size_t params_bytes = params.size() * sizeof(cuda::SamplingRow);
    const size_t penalty_bytes = penalties.size() * sizeof(cuda::PenaltyEntry);
    NIBBLE_ASSIGN_OR_RETURN(
        char* staging, sampling_inputs_.Get<char>(*this, stream_, params_bytes + penalty_bytes, false, "sampling"));
    NIBBLE_RETURN_IF_ERROR(CudaStatus(
        cudaMemcpyAsync(staging, params.data(), params_bytes, cudaMemcpyHostToDevice, stream_), "sampling upload"));
    if (penalty_bytes > 0) {
      NIBBLE_RETURN_IF_ERROR(CudaStatus(
          cudaMemcpyAsync(staging + params_bytes, penalties.data(), penalty_bytes, cudaMemcpyHostToDevice, stream_),
          "sampling upload"));
    }
    NIBBLE_ASSIGN_OR_RETURN(
        float* work, sampling_work_.Get<float>(*this, stream_, static_cast<size_t>(rows) * vocab, false, "sampling"));
    NIBBLE_ASSIGN_OR_RETURN(cuda::SampledRow * results,
                            sampling_results_.Get<cuda::SampledRow>(*this, stream_, rows, false, "sampling"));
    NIBBLE_RETURN_IF_ERROR(
        cuda::LaunchSample(logits.as<float>(), work, rows, vocab, reinterpret_cast<const cuda::SamplingRow*>(staging),
                           reinterpret_cast<const cuda::PenaltyEntry*>(staging + params_bytes), results, stream_));
    std::vector<cuda::SampledRow> host(rows);
    NIBBLE_RETURN_IF_ERROR(CudaStatus(
        cudaMemcpyAsync(host.data(), results, rows * sizeof(cuda::SampledRow), cudaMemcpyDeviceToHost, stream_),
        "sampling results"));
    NIBBLE_RETURN_IF_ERROR(Synchronize());
    for (int r = 0; r < rows; ++r) {
      out[r].token = host[r].token;
      out[r].logprob = host[r].logprob;
      out[r].top_logprobs.clear();
      for (int n = 0; n < params[r].num_logprobs; ++n) {
        out[r].top_logprobs.emplace_back(host[r].top_tokens[n], host[r].top_logprobs[n]);
      }
    }
    return absl::OkStatus();
  }

 private:
  static constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

  explicit CudaBackend(int device) : device_(device) {}

  absl::StatusOr<Buffer> UploadBytes(const void* data, size_t bytes) {
    NIBBLE_ASSIGN_OR_RETURN(Buffer buffer, Allocate(bytes));
    // On stream_, then waited for: a plain cudaMemcpy runs on the legacy default stream, which the
    // non-blocking stream_ does not wait for, and from pageable memory it may return before its DMA has landed
    // (a kernel queued right after could see the old contents, or have its output overwritten).
    NIBBLE_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpyAsync(buffer.data(), data, bytes, cudaMemcpyHostToDevice, stream_), "upload to GPU"));
    NIBBLE_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream_), "upload to GPU"));
    return buffer;
  }
  absl::StatusOr<Buffer> UploadFloats(const std::vector<float>& values) {
    return UploadBytes(values.data(), values.size() * sizeof(float));
  }

  // y [M, N] = x [M, K] W^T with W fp16 [N, K] row-major: in cuBLAS's column-major terms,
  // y^T (N x M) = op_T(W as K x N) x^T (K x M), fp32 accumulation.
  absl::Status Gemm(const half* weight, const Tensor& x, const Tensor& y) {
    const int m = static_cast<int>(x.rows());
    const int k = static_cast<int>(x.cols());
    const int n = static_cast<int>(y.cols());
    const float alpha = 1.0f;
    const float beta = 0.0f;
    return cublas_library_->Check(
        cublas_library_->gemm_ex(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, weight, CUDA_R_16F, k, x.data,
                                 CUDA_R_16F, k, &beta, y.data, y.dtype == DType::kF32 ? CUDA_R_32F : CUDA_R_16F, n,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
  }

  absl::Status AddBias(const float* bias, const Tensor& y) {
    if (bias == nullptr) return absl::OkStatus();
    return cuda::LaunchAddBias(y.data, y.dtype == DType::kF32, bias, y.rows(), y.cols(), stream_);
  }

  int device_;
  int sm_count_ = 0;
  std::string device_name_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::CublasLibrary> cublas_library_;  // outlives cublas_ (destroyed after it, in ~CudaBackend)
  cublasHandle_t cublas_ = nullptr;
  bool capturing_ = false;
  Buffer cublas_workspace_;
  Scratch split_workspace_;
  Scratch split_counters_;
  Scratch dequantized_;
  Scratch attention_partials_;
  Scratch attention_counters_;
  Scratch sampling_inputs_;
  Scratch sampling_work_;
  Scratch sampling_results_;
  ThreadPool repack_pool_;  // AWQ weights are repacked into the kernel's layout on it at upload
};

}  // namespace

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device) { return CudaBackend::Create(device); }

}  // namespace nibble
