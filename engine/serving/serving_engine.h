// The serving engine: one backend (one GPU), the one thread that uses it, and any number of loaded models
// (a new version can load while the old one serves), each with its continuous-batching Scheduler.
//
// Threading: every public method is thread-safe and meant for RPC threads, which only post work and read
// results (llama.cpp's server queue, TF Serving's thin handlers). Every backend call — weight upload,
// forward pass, sampling, freeing device memory — happens on the engine thread, between steps. Only
// LoadModel and Drain block their caller (on the engine thread's progress); Submit, Cancel, Unload and
// Stats never wait for GPU work (the engine thread holds the engine's lock only to exchange posted work,
// never during a step). Sinks and the observer are called on the engine thread, so they must not call
// LoadModel, Drain or Shutdown.
//
// Lifetime:
// - The engine owns the backend and joins its thread in Shutdown (or its destructor), after ending every
//   request (final event kCancelled / UNAVAILABLE) and freeing every model.
// - LoadedModel is a reference-counted handle. The engine serves a model until Unload; then it takes no
//   new requests, lets the ones in flight finish on it (design.md: "in-flight streams finish on the
//   version they started on") and frees its device memory when the last one ends (state kUnloaded). Handles
//   stay valid (for stats and labels) as long as anyone holds them.
// - RequestHandle only cancels; holding or dropping it changes nothing else. A request accepted by Submit
//   always gets exactly one final event, even when the engine shuts down.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/host_model.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/model.h"
#include "engine/serving/generation_request.h"
#include "engine/serving/scheduler.h"
#include "engine/serving/serving_observer.h"

namespace nibble {

class Tokenizer;

struct ServingEngineOptions {
  std::shared_ptr<ServingObserver> observer;  // optional; called on the engine thread
};

enum class ModelState { kServing, kUnloading, kUnloaded };

struct ModelStats {
  ModelLabel label;
  ModelState state = ModelState::kServing;
  int32_t running = 0;        // requests admitted to the batch
  int32_t waiting = 0;        // requests accepted and not running (preempted ones included)
  double kv_cache_usage = 0;  // fraction of KV blocks in use, 0..1
  size_t weight_bytes = 0;    // device memory of the weights
};

struct EngineStats {
  std::string backend;             // the backend's name: "cpu", "cuda:0 (NVIDIA H200)"
  MemoryUsage device_memory;       // as of the engine thread's last model load or unload
  std::vector<ModelStats> models;  // loaded models, unloading ones included, in load order
};

class ServingEngine;

class LoadedModel {
 public:
  const ModelLabel& label() const { return label_; }
  const ModelConfig& config() const { return config_; }
  const RequestLimits& limits() const { return limits_; }
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }
  const SchedulerOptions& scheduler_options() const { return scheduler_options_; }
  ModelState state() const { return state_.load(); }
  ModelStats stats() const;

 private:
  friend class ServingEngine;
  LoadedModel(const ServingEngine* engine, ModelLabel label, ModelConfig config, RequestLimits limits,
              std::shared_ptr<const Tokenizer> tokenizer, SchedulerOptions scheduler_options,
              std::shared_ptr<const SchedulerGauges> gauges, std::shared_ptr<const KvBlockPool> kv_pool,
              size_t weight_bytes);

  const ServingEngine* const engine_;
  const ModelLabel label_;
  const ModelConfig config_;
  const RequestLimits limits_;
  const std::shared_ptr<const Tokenizer> tokenizer_;
  const SchedulerOptions scheduler_options_;
  const std::shared_ptr<const SchedulerGauges> gauges_;
  const std::shared_ptr<const KvBlockPool> kv_pool_;
  const size_t weight_bytes_;
  std::atomic<ModelState> state_{ModelState::kServing};
  std::atomic<int32_t> posted_{0};  // submitted, not yet handed to its scheduler
};

// Cancels one request; copyable, usable from any thread, after the request ended too (then it does nothing).
class RequestHandle {
 public:
  RequestHandle() = default;
  const std::string& id() const { return id_; }
  // The request stops within one step: no token is sent after Cancel returns, except from a step that was
  // already running; its KV blocks go back to the pool and its sink gets a final kCancelled / CANCELLED.
  void Cancel() const;

 private:
  friend class ServingEngine;
  RequestHandle(std::string id, std::shared_ptr<RequestControl> control)
      : id_(std::move(id)), control_(std::move(control)) {}
  std::string id_;
  std::shared_ptr<RequestControl> control_;
};

class ServingEngine {
 public:
  // Starts the engine thread, which owns `backend` from now on.
  explicit ServingEngine(std::unique_ptr<Backend> backend, ServingEngineOptions options = {});
  ~ServingEngine();  // Shutdown()
  ServingEngine(const ServingEngine&) = delete;
  ServingEngine& operator=(const ServingEngine&) = delete;

  // Uploads `host` (which the engine drops once uploaded) and starts serving it. Blocks until the engine
  // thread has done so between steps, or failed (the Model::Create error). `tokenizer` may be null: the
  // model then serves token-id prompts only. UNAVAILABLE while draining or after shutdown.
  absl::StatusOr<std::shared_ptr<LoadedModel>> LoadModel(ModelLabel label, std::shared_ptr<const HostModel> host,
                                                         std::shared_ptr<const Tokenizer> tokenizer,
                                                         const ModelOptions& model_options,
                                                         const SchedulerOptions& scheduler_options);

  // Stops `model` taking requests; it is freed when its last request ends (see above). Does not wait.
  // OK when already unloading or unloaded; NOT_FOUND for a model of another engine.
  absl::Status Unload(const std::shared_ptr<LoadedModel>& model);

  // Validates `request` (PrepareRequest: INVALID_ARGUMENT naming the field) and queues it; its events go to
  // `sink` (see GenerationSink). Refused with RESOURCE_EXHAUSTED when the model's queue holds
  // SchedulerOptions::max_waiting requests, FAILED_PRECONDITION when the model is unloading or unloaded,
  // UNAVAILABLE while draining or after shutdown, NOT_FOUND for a model of another engine.
  absl::StatusOr<RequestHandle> Submit(const std::shared_ptr<LoadedModel>& model, GenerationRequest request,
                                       std::shared_ptr<GenerationSink> sink);

  // Stops accepting requests and models (UNAVAILABLE), lets the accepted requests finish until `deadline`,
  // then ends the rest (kCancelled / UNAVAILABLE). Blocks until no request is left. Models stay loaded.
  void Drain(std::chrono::steady_clock::time_point deadline);
  // Drain's first half, without waiting: when it returns, every later Submit and LoadModel is refused.
  void BeginDrain(std::chrono::steady_clock::time_point deadline);

  // Ends every request (kCancelled / UNAVAILABLE), fails pending loads, frees every model and joins the
  // engine thread. Idempotent.
  void Shutdown();

  EngineStats Stats() const;

 private:
  struct ModelSlot;  // engine-thread state of a loaded model: its Model and Scheduler
  struct PendingLoad;
  struct Submission;

  // The engine thread's life: take posted work, step every model, end what the drain deadline cuts, free
  // unloaded models; sleep while there is nothing to do.
  void Loop();
  // Takes what RPC threads posted (loads, submissions) and applies it; fails the loads once stopping.
  // Returns whether the engine goes on.
  bool TakePosted();
  void RunLoad(PendingLoad& load);
  // Frees unloading models that have no request left; publishes whether any request is left.
  void Reap();
  bool HasRequests() const;
  void EndAll(const absl::Status& status);
  // Frees `slots` (the engine thread's schedulers and models) and marks their models unloaded.
  void Free(std::vector<std::unique_ptr<ModelSlot>>& slots);
  // Ends every request and frees every model, as the engine thread exits.
  void Stop();

  const std::string backend_name_;
  std::unique_ptr<Backend> backend_;  // used by the engine thread only
  const std::shared_ptr<ServingObserver> observer_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // the engine thread waits here for posted work
  std::condition_variable settled_;  // Drain waits here for the last request to end
  // Guarded by mutex_:
  std::vector<std::unique_ptr<PendingLoad>> loads_;
  std::vector<Submission> submissions_;
  bool work_posted_ = false;  // loads, submissions, unloads, a drain or a stop since the engine last looked
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  bool idle_ = true;  // the engine thread has no request (set by it)
  bool stopping_ = false;
  std::vector<std::shared_ptr<LoadedModel>> models_;  // not yet freed, in load order
  MemoryUsage device_memory_;

  std::atomic<uint64_t> next_request_id_{1};
  std::vector<std::unique_ptr<ModelSlot>> slots_;  // engine thread only
  std::once_flag shutdown_once_;
  std::thread thread_;
};

}  // namespace nibble
