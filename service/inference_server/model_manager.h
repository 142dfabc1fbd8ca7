// The model manager: which version of each model in the store the server serves, loading and swapping
// them on the serving engine (design.md, "The model store").
//
// Policy:
// - Each model serves its highest complete version, or the version pinned (--pin, LoadModel with a
//   version). Refresh (called by the store watcher every --poll-interval, and at start) loads a newer
//   target before unloading the version it replaces, so requests never find the model absent; streams
//   in flight finish on the old version (LoadedModel is reference counted) and the engine frees it after
//   its last stream.
// - Loading verifies every file against nibble.json first (VerifyVersionDir). A version that fails to
//   verify or load is remembered as failed (state kFailed, with the error) and not retried by Refresh;
//   LoadModel retries it explicitly. Refresh then tries the next older version, down to the one serving:
//   a freshly started server whose newest version is corrupt serves the newest good one; a running server
//   keeps the version it serves.
// - UnloadModel stops serving a model (in-flight streams finish); Refresh leaves it alone until LoadModel.
//
// Threading: every method is thread-safe. Loads are serialized (one at a time, outside the state lock:
// Acquire and List never wait for a load). `on_change` is called after each change of a model's serving
// state, from the thread that made it, with no lock held.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/io/model_store.h"
#include "engine/runtime/model.h"
#include "engine/serving/scheduler.h"
#include "engine/serving/serving_engine.h"

namespace nibble::server {

enum class VersionState { kLoading, kAvailable, kUnloading, kFailed };

struct VersionInfo {
  uint64_t version = 0;
  VersionState state = VersionState::kLoading;
  std::string error;  // why it failed (kFailed)
  size_t weight_bytes = 0;
  int32_t active_requests = 0;  // running + waiting
};

struct ModelInfo {
  std::string name;
  std::vector<VersionInfo> versions;  // ascending
  uint64_t serving_version = 0;       // 0: none serves
  bool pinned = false;
  std::string quantization;    // "awq w4 g128", or the weights' dtype ("float32")
  int32_t context_length = 0;  // of the serving version
};

struct ModelManagerOptions {
  ModelOptions model;                    // how each version is loaded (batch seats, KV cache)
  SchedulerOptions scheduler;            // its queue bound and queue timeout
  std::map<std::string, uint64_t> pins;  // model -> version served instead of the latest
};

// "MODEL:N" -> (MODEL, N); InvalidArgument naming `pin` otherwise.
absl::StatusOr<std::pair<std::string, uint64_t>> ParsePin(absl::string_view pin);

class ModelManager {
 public:
  using ChangeCallback = std::function<void(const std::string& model, bool serving)>;

  // `engine` must outlive the manager.
  ModelManager(ModelStore store, ServingEngine& engine, ModelManagerOptions options, ChangeCallback on_change);
  ~ModelManager();  // StopWatching()
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Brings every model to its target version (see above). Problems are logged and shown in List().
  void Refresh();
  // Refreshes every `interval` on a thread of its own until StopWatching.
  void StartWatching(std::chrono::milliseconds interval);
  void StopWatching();

  // The model a request for `model` (version 0: the serving one) runs on. InvalidArgument (quoting a short
  // prefix) when `model` is not a valid store name (engine/io/model_store.h: 1..64 characters); NotFound
  // naming the model (and version) when it is not served.
  absl::StatusOr<std::shared_ptr<LoadedModel>> Acquire(absl::string_view model, uint64_t version) const;

  // Acquire + ServingEngine::Submit; when the version was swapped out between the two (FAILED_PRECONDITION
  // from Submit), submits to the new serving version instead.
  absl::StatusOr<std::pair<RequestHandle, std::shared_ptr<LoadedModel>>> Submit(absl::string_view model,
                                                                                uint64_t version,
                                                                                GenerationRequest request,
                                                                                std::shared_ptr<GenerationSink> sink);

  // The LoadModel RPC: version 0 follows the latest version, N pins N. Returns once it serves, or the load
  // error (InvalidArgument for a name the store cannot hold, NotFound for a model or version not in the
  // store, FailedPrecondition for a corrupt one); the previous version keeps serving then.
  absl::StatusOr<ModelInfo> Load(absl::string_view model, uint64_t version);
  // The UnloadModel RPC. InvalidArgument for a name the store cannot hold, NotFound when the model is not
  // served.
  absl::Status Unload(absl::string_view model);

  std::vector<ModelInfo> List() const;

 private:
  struct Version {
    VersionState state = VersionState::kLoading;
    std::string error;
    std::shared_ptr<LoadedModel> loaded;
  };
  struct Entry {
    std::map<uint64_t, Version> versions;
    uint64_t serving = 0;
    std::optional<uint64_t> pin;
    bool unloaded_by_request = false;  // UnloadModel: Refresh leaves it alone
  };

  // Loads `version` of `model` unless it serves already and makes it the serving version, unloading the
  // one it replaces. `retry_failed`: try a version that failed before. Caller holds load_mutex_.
  absl::Status Bring(const std::string& model, uint64_t version, bool retry_failed);
  // Refresh of an unpinned model: Bring its versions newest first, down to the one serving, until one serves.
  // Caller holds load_mutex_.
  void BringNewestGood(const std::string& model);
  absl::StatusOr<std::shared_ptr<LoadedModel>> LoadVersion(const std::string& model, uint64_t version);
  // Drops versions the engine has freed. Caller holds mutex_.
  static void Forget(Entry& entry);
  // What List shows of one model; versions the engine has freed are left out. Caller holds mutex_.
  static ModelInfo InfoOf(const std::string& name, const Entry& entry);
  void Notify(const std::string& model);

  const ModelStore store_;
  ServingEngine& engine_;
  const ModelManagerOptions options_;
  const ChangeCallback on_change_;

  std::mutex load_mutex_;  // one load at a time
  mutable std::mutex mutex_;
  std::map<std::string, Entry> models_;  // guarded by mutex_

  std::mutex watch_mutex_;
  std::condition_variable watch_wake_;
  bool watching_ = false;  // guarded by watch_mutex_
  std::thread watcher_;
};

}  // namespace nibble::server
