#include "tests/support/serving_test_support.h"

#include <algorithm>
#include <atomic>

#include "engine/base/status_macros.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "engine/tools/llama2c.h"
#include "engine/tools/synth.h"

namespace nibble::testing {

std::shared_ptr<const HostModel> SynthTinyModel(uint64_t seed) {
  return std::make_shared<const HostModel>(SynthesizeModel("tiny", seed).value());
}

absl::StatusOr<SharedModel> LoadStories260K(const std::filesystem::path& model_bin,
                                            const std::filesystem::path& tokenizer_model) {
  SharedModel model;
  NIBBLE_ASSIGN_OR_RETURN(HostModel host, ReadLlama2c(model_bin));
  model.host = std::make_shared<const HostModel>(std::move(host));
  NIBBLE_ASSIGN_OR_RETURN(model.tokenizer, LoadSentencePieceTokenizer(tokenizer_model));
  return model;
}

// --- Sinks ------------------------------------------------------------------------------------------------

void RecordingSink::OnEvent(GenerationEvent event) {
  std::lock_guard lock(mutex_);
  tokens_.insert(tokens_.end(), event.token_ids.begin(), event.token_ids.end());
  if (event.finish) finish_ = event.finish;
  events_.push_back(std::move(event));
  changed_.notify_all();
}

bool RecordingSink::WaitForFinish(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return finish_.has_value(); });
}

void RecordingSink::WaitForTokens(size_t count) const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return tokens_.size() >= count || finish_.has_value(); });
}

std::vector<GenerationEvent> RecordingSink::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

std::vector<int32_t> RecordingSink::tokens() const {
  std::lock_guard lock(mutex_);
  return tokens_;
}

std::string RecordingSink::text() const {
  std::lock_guard lock(mutex_);
  std::string text;
  for (const GenerationEvent& event : events_) text += event.text;
  return text;
}

std::optional<GenerationFinish> RecordingSink::finish() const {
  std::lock_guard lock(mutex_);
  return finish_;
}

size_t RecordingSink::num_tokens() const {
  std::lock_guard lock(mutex_);
  return tokens_.size();
}

void GateSink::OnEvent(GenerationEvent event) {
  RecordingSink::OnEvent(std::move(event));
  std::unique_lock lock(mutex_);
  if (open_) return;
  holding_ = true;
  changed_.notify_all();
  changed_.wait(lock, [&] { return open_; });
}

void GateSink::WaitUntilHolding() const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return holding_; });
}

void GateSink::Open() {
  std::lock_guard lock(mutex_);
  open_ = true;
  changed_.notify_all();
}

// --- Observer ---------------------------------------------------------------------------------------------

void CountingObserver::OnRequestFinished(const ModelLabel&, FinishReason reason, const Usage&) {
  std::lock_guard lock(mutex_);
  finished_.push_back(reason);
}

void CountingObserver::OnTokenLatency(const ModelLabel&, double) {
  std::lock_guard lock(mutex_);
  ++token_latencies_;
}

void CountingObserver::OnPreemption(const ModelLabel&) {
  std::lock_guard lock(mutex_);
  ++preemptions_;
}

int CountingObserver::finished() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(finished_.size());
}

int CountingObserver::finished(FinishReason reason) const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count(finished_.begin(), finished_.end(), reason));
}

int CountingObserver::token_latencies() const {
  std::lock_guard lock(mutex_);
  return token_latencies_;
}

int CountingObserver::preemptions() const {
  std::lock_guard lock(mutex_);
  return preemptions_;
}

// --- Counting backend -------------------------------------------------------------------------------------

namespace {

class CountingBackend : public Backend {
 public:
  explicit CountingBackend(std::unique_ptr<Backend> inner)
      : inner_(std::move(inner)), used_(std::make_shared<std::atomic<size_t>>(0)) {}

  std::string name() const override { return inner_->name(); }
  DType activation_dtype() const override { return inner_->activation_dtype(); }
  MemoryUsage memory_usage() const override { return {used_->load(), 0}; }

  absl::StatusOr<Buffer> Allocate(size_t bytes) override {
    absl::StatusOr<Buffer> inner = inner_->Allocate(bytes);
    if (!inner.ok()) return inner.status();
    *used_ += bytes;
    // The returned buffer owns the inner one and uncounts its bytes when released.
    auto owned = std::make_shared<Buffer>(std::move(inner).value());
    void* data = owned->data();
    return Buffer(data, bytes, [owned, used = used_, bytes](void*) mutable {
      *used -= bytes;
      owned.reset();
    });
  }
  absl::Status CopyToDevice(const void* host, const Tensor& dst) override { return inner_->CopyToDevice(host, dst); }
  absl::Status CopyToHost(const Tensor& src, void* host) override { return inner_->CopyToHost(src, host); }
  absl::Status Synchronize() override { return inner_->Synchronize(); }
  absl::StatusOr<std::unique_ptr<LinearWeights>> UploadLinear(const HostLinear& linear) override {
    return inner_->UploadLinear(linear);
  }
  absl::StatusOr<DeviceTensor> UploadTensor(const HostTensor& tensor, DType dtype) override {
    return inner_->UploadTensor(tensor, dtype);
  }
  absl::Status Embedding(const Tensor& table, const Tensor& token_ids, const Tensor& out) override {
    return inner_->Embedding(table, token_ids, out);
  }
  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
    return inner_->RmsNorm(x, weight, eps, out);
  }
  absl::Status AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                          const Tensor& out) override {
    return inner_->AddRmsNorm(residual, delta, weight, eps, out);
  }
  absl::Status Linear(const LinearWeights& weights, const Tensor& x, const Tensor& y) override {
    return inner_->Linear(weights, x, y);
  }
  absl::Status Attention(const Tensor& qkv, const Tensor& inv_freq, const KvLayer& cache, const DeviceBatch& batch,
                         const AttentionShape& shape, const Tensor& out) override {
    return inner_->Attention(qkv, inv_freq, cache, batch, shape, out);
  }
  absl::Status SiluMul(const Tensor& gate_up, const Tensor& out) override { return inner_->SiluMul(gate_up, out); }
  absl::Status GatherRows(const Tensor& x, const Tensor& rows, const Tensor& out) override {
    return inner_->GatherRows(x, rows, out);
  }
  absl::Status Sample(const Tensor& logits, std::span<const SamplingRequest> requests,
                      std::span<SampledToken> out) override {
    return inner_->Sample(logits, requests, out);
  }

 private:
  std::unique_ptr<Backend> inner_;
  std::shared_ptr<std::atomic<size_t>> used_;
};

}  // namespace

std::unique_ptr<Backend> MakeCountingBackend(std::unique_ptr<Backend> inner) {
  return std::make_unique<CountingBackend>(std::move(inner));
}

}  // namespace nibble::testing
