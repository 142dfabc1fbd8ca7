// Helpers for the scheduler, generation and serving-engine tests: small models (synthetic, and the real
// stories260K from ../shared), sinks that record (or hold up) a request's events, an observer that counts,
// and a backend that counts its memory.
//
// Sinks and the observer are thread-safe: the engine thread writes, the test thread reads and waits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/host_model.h"
#include "engine/runtime/backend.h"
#include "engine/serving/generation_request.h"
#include "engine/serving/serving_observer.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/support/shared_data.h"

namespace nibble::testing {

// synth.h's "tiny" model (random weights; vocab 512, context 512, bos 1, eos 2): for tests of mechanics,
// where what the model says does not matter.
std::shared_ptr<const HostModel> SynthTinyModel(uint64_t seed);

// llama2.c's stories260K (a real, trained model small enough for fast CPU tests) and its tok512 tokenizer.
struct SharedModel {
  std::shared_ptr<const HostModel> host;
  std::shared_ptr<const Tokenizer> tokenizer;
};
absl::StatusOr<SharedModel> LoadStories260K(const std::filesystem::path& model_bin,
                                            const std::filesystem::path& tokenizer_model);

// Records every event of one request.
class RecordingSink : public GenerationSink {
 public:
  void OnEvent(GenerationEvent event) override;

  // Blocks until the final event; false when `timeout` passes first.
  bool WaitForFinish(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  // Blocks until at least `count` tokens arrived or the request finished.
  void WaitForTokens(size_t count) const;

  std::vector<GenerationEvent> events() const;
  std::vector<int32_t> tokens() const;
  std::string text() const;
  std::optional<GenerationFinish> finish() const;
  size_t num_tokens() const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<GenerationEvent> events_;
  std::vector<int32_t> tokens_;
  std::optional<GenerationFinish> finish_;
};

// A RecordingSink that holds the engine thread inside its first OnEvent until Open(): the test can then act
// (submit, cancel) while the engine is known to stand still.
class GateSink : public RecordingSink {
 public:
  void OnEvent(GenerationEvent event) override;
  void WaitUntilHolding() const;
  void Open();

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool holding_ = false;
  bool open_ = false;
};

// Counts what the engine reports.
class CountingObserver : public ServingObserver {
 public:
  void OnRequestFinished(const ModelLabel& model, FinishReason reason, const Usage& usage) override;
  void OnTokenLatency(const ModelLabel& model, double seconds) override;
  void OnPreemption(const ModelLabel& model) override;

  int finished() const;
  int finished(FinishReason reason) const;
  int token_latencies() const;
  int preemptions() const;

 private:
  mutable std::mutex mutex_;
  std::vector<FinishReason> finished_;
  int token_latencies_ = 0;
  int preemptions_ = 0;
};

// A backend that forwards everything to `inner` and reports the bytes its Allocate calls hold as
// memory_usage().used_bytes (what the engine allocates directly: KV cache, workspace, batch buffers).
std::unique_ptr<Backend> MakeCountingBackend(std::unique_ptr<Backend> inner);

}  // namespace nibble::testing

// In a test body or SetUp: skips when ../shared lacks stories260K; otherwise binds `var` (a SharedModel).
#define NIBBLE_REQUIRE_STORIES260K(var)                                               \
  NIBBLE_REQUIRE_SHARED(var##_bin, "models/stories260K/stories260K.bin");             \
  NIBBLE_REQUIRE_SHARED(var##_tokenizer, "models/stories260K/tok512.model");          \
  auto var##_loaded = ::nibble::testing::LoadStories260K(var##_bin, var##_tokenizer); \
  ASSERT_TRUE(var##_loaded.ok()) << var##_loaded.status();                            \
  const ::nibble::testing::SharedModel var = *std::move(var##_loaded)
