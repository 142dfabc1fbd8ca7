#include "service/inference_server/model_manager.h"

#include <iterator>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_loader.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "spdlog/spdlog.h"

namespace nibble::server {
namespace {

std::string QuantizationOf(const ModelConfig& config) {
  if (config.awq) return absl::StrCat("awq w", config.awq->bits, " g", config.awq->group_size);
  return config.torch_dtype;
}

}  // namespace

absl::StatusOr<std::pair<std::string, uint64_t>> ParsePin(absl::string_view pin) {
  const size_t colon = pin.rfind(':');
  uint64_t version = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(pin.substr(colon + 1), &version) || version == 0) {
    return absl::InvalidArgumentError(absl::StrCat("--pin \"", pin, "\": expected MODEL:N with N a positive version"));
  }
  const absl::string_view model = pin.substr(0, colon);
  if (absl::Status valid = ValidateModelName(model); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--pin \"", pin, "\": ", valid.message()));
  }
  return std::make_pair(std::string(model), version);
}

ModelManager::ModelManager(ModelStore store, ServingEngine& engine, ModelManagerOptions options,
                           ChangeCallback on_change)
    : store_(std::move(store)), engine_(engine), options_(std::move(options)), on_change_(std::move(on_change)) {
  std::lock_guard lock(mutex_);
  for (const auto& [model, version] : options_.pins) models_[model].pin = version;
}

ModelManager::~ModelManager() { StopWatching(); }

void ModelManager::Refresh() {
  std::lock_guard load_lock(load_mutex_);
  absl::StatusOr<std::vector<std::string>> names = store_.ListModels();
  if (!names.ok()) {
    spdlog::warn("store {}: cannot list models: {}", store_.root().string(), names.status().ToString());
    return;
  }
  for (const std::string& name : *names) {
    std::optional<uint64_t> target;
    {
      std::lock_guard lock(mutex_);
      Entry& entry = models_[name];
      Forget(entry);
      if (entry.unloaded_by_request) continue;
      target = entry.pin;
    }
    if (target) {
      (void)Bring(name, *target, /*retry_failed=*/false);
    } else {
      BringNewestGood(name);
    }
  }
}

void ModelManager::BringNewestGood(const std::string& model) {
  absl::StatusOr<std::vector<uint64_t>> versions = store_.ListVersions(model);
  if (!versions.ok()) return;  // gone since ListModels
  uint64_t serving = 0;
  {
    std::lock_guard lock(mutex_);
    serving = models_[model].serving;
  }
  for (auto it = versions->rbegin(); it != versions->rend() && *it > serving; ++it) {
    if (Bring(model, *it, /*retry_failed=*/false).ok()) return;
    const auto older = std::next(it);
    if (older != versions->rend() && *older > serving) {
      spdlog::warn("model {}: version {} cannot serve; trying version {}", model, *it, *older);
    }
  }
}

void ModelManager::StartWatching(std::chrono::milliseconds interval) {
  std::lock_guard lock(watch_mutex_);
  if (watching_) return;
  watching_ = true;
  watcher_ = std::thread([this, interval] {
    std::unique_lock lock(watch_mutex_);
    while (!watch_wake_.wait_for(lock, interval, [&] { return !watching_; })) {
      lock.unlock();
      Refresh();
      lock.lock();
    }
  });
}

void ModelManager::StopWatching() {
  {
    std::lock_guard lock(watch_mutex_);
    watching_ = false;
  }
  watch_wake_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

absl::Status ModelManager::Bring(const std::string& model, uint64_t version, bool retry_failed) {
  {
    std::lock_guard lock(mutex_);
    Entry& entry = models_[model];
    if (entry.serving == version) return absl::OkStatus();
    auto it = entry.versions.find(version);
    if (it != entry.versions.end() && it->second.state == VersionState::kFailed && !retry_failed) {
      return absl::FailedPreconditionError(it->second.error);
    }
    entry.versions[version] = Version{VersionState::kLoading, "", nullptr};
  }
  spdlog::info("model {} version {}: loading", model, version);
  absl::StatusOr<std::shared_ptr<LoadedModel>> loaded = LoadVersion(model, version);
  std::shared_ptr<LoadedModel> replaced;
  if (!loaded.ok()) {
    {
      std::lock_guard lock(mutex_);
      Entry& entry = models_[model];
      entry.versions[version] = Version{VersionState::kFailed, std::string(loaded.status().message()), nullptr};
      spdlog::error("model {} version {}: refused: {}{}", model, version, loaded.status().ToString(),
                    entry.serving != 0 ? absl::StrCat(" (version ", entry.serving, " keeps serving)") : "");
    }
    Notify(model);  // a model that never loaded is known to health as NOT_SERVING
    return loaded.status();
  }
  {
    std::lock_guard lock(mutex_);
    Entry& entry = models_[model];
    Version& slot = entry.versions[version];
    slot = Version{VersionState::kAvailable, "", *loaded};
    if (entry.serving != 0) {
      Version& old = entry.versions[entry.serving];
      old.state = VersionState::kUnloading;
      replaced = old.loaded;
    }
    entry.serving = version;
    entry.unloaded_by_request = false;
  }
  spdlog::info("model {} version {}: serving", model, version);
  if (replaced) {
    (void)engine_.Unload(replaced);
    spdlog::info("model {} version {}: unloading after its last stream", model, replaced->label().version);
  }
  Notify(model);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<LoadedModel>> ModelManager::LoadVersion(const std::string& model, uint64_t version) {
  const std::filesystem::path dir = store_.VersionDir(model, version);
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model ", model, " has no version ", version, " in the store"));
  }
  NIBBLE_RETURN_IF_ERROR(VerifyVersionDir(dir).status());
  NIBBLE_ASSIGN_OR_RETURN(HostModel host, LoadHostModel(dir));
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(dir));
  return engine_.LoadModel(ModelLabel{model, absl::StrCat(version)}, std::make_shared<const HostModel>(std::move(host)),
                           std::move(tokenizer), options_.model, options_.scheduler);
}

absl::StatusOr<std::shared_ptr<LoadedModel>> ModelManager::Acquire(absl::string_view model, uint64_t version) const {
  NIBBLE_RETURN_IF_ERROR(ValidateModelName(model));  // before `model` is quoted anywhere
  std::lock_guard lock(mutex_);
  auto entry = models_.find(std::string(model));
  if (entry == models_.end() || entry->second.serving == 0) {
    return absl::NotFoundError(absl::StrCat("model \"", model, "\" is not served (see ListModels)"));
  }
  if (version == 0) version = entry->second.serving;
  auto it = entry->second.versions.find(version);
  if (it == entry->second.versions.end() || it->second.state != VersionState::kAvailable) {
    return absl::NotFoundError(absl::StrCat("model \"", model, "\" version ", version, " is not served (version ",
                                            entry->second.serving, " is)"));
  }
  return it->second.loaded;
}

absl::StatusOr<std::pair<RequestHandle, std::shared_ptr<LoadedModel>>> ModelManager::Submit(
    absl::string_view model, uint64_t version, GenerationRequest request, std::shared_ptr<GenerationSink> sink) {
  // A swap can unload the version between Acquire and Submit: then the next Acquire finds its successor.
  for (int attempt = 0;; ++attempt) {
    NIBBLE_ASSIGN_OR_RETURN(std::shared_ptr<LoadedModel> loaded, Acquire(model, version));
    absl::StatusOr<RequestHandle> handle = engine_.Submit(loaded, request, sink);
    if (handle.ok()) return std::make_pair(*std::move(handle), std::move(loaded));
    if (handle.status().code() != absl::StatusCode::kFailedPrecondition || version != 0 || attempt > 0) {
      return handle.status();
    }
  }
}

absl::StatusOr<ModelInfo> ModelManager::Load(absl::string_view model_name, uint64_t version) {
  NIBBLE_RETURN_IF_ERROR(ValidateModelName(model_name));
  const std::string model(model_name);
  std::lock_guard load_lock(load_mutex_);
  uint64_t target = version;
  std::error_code error;
  if (target != 0 && !std::filesystem::is_directory(store_.VersionDir(model, target), error)) {
    return absl::NotFoundError(absl::StrCat("model ", model, " has no version ", target, " in the store"));
  }
  if (target == 0) {
    NIBBLE_ASSIGN_OR_RETURN(target, store_.LatestVersion(model));
  }
  NIBBLE_RETURN_IF_ERROR(Bring(model, target, /*retry_failed=*/true));
  std::lock_guard lock(mutex_);
  Entry& entry = models_[model];
  entry.pin = version == 0 ? std::nullopt : std::optional<uint64_t>(version);
  entry.unloaded_by_request = false;
  return InfoOf(model, entry);
}

absl::Status ModelManager::Unload(absl::string_view model_name) {
  NIBBLE_RETURN_IF_ERROR(ValidateModelName(model_name));
  const std::string model(model_name);
  std::lock_guard load_lock(load_mutex_);
  std::shared_ptr<LoadedModel> serving;
  {
    std::lock_guard lock(mutex_);
    auto entry = models_.find(model);
    if (entry == models_.end() || entry->second.serving == 0) {
      return absl::NotFoundError(absl::StrCat("model \"", model, "\" is not served"));
    }
    Version& version = entry->second.versions[entry->second.serving];
    version.state = VersionState::kUnloading;
    serving = version.loaded;
    entry->second.serving = 0;
    entry->second.unloaded_by_request = true;
  }
  (void)engine_.Unload(serving);
  spdlog::info("model {} version {}: unloading on request", model, serving->label().version);
  Notify(model);
  return absl::OkStatus();
}

std::vector<ModelInfo> ModelManager::List() const {
  std::lock_guard lock(mutex_);
  std::vector<ModelInfo> models;
  for (const auto& [name, entry] : models_) {
    if (entry.versions.empty()) continue;
    models.push_back(InfoOf(name, entry));
  }
  return models;
}

void ModelManager::Forget(Entry& entry) {
  std::erase_if(entry.versions, [](const auto& item) {
    const Version& version = item.second;
    return version.loaded != nullptr && version.loaded->state() == ModelState::kUnloaded;
  });
}

ModelInfo ModelManager::InfoOf(const std::string& name, const Entry& entry) {
  ModelInfo info;
  info.name = name;
  info.serving_version = entry.serving;
  info.pinned = entry.pin.has_value();
  for (const auto& [number, version] : entry.versions) {
    VersionInfo out{number, version.state, version.error, 0, 0};
    if (version.loaded != nullptr) {
      if (version.loaded->state() == ModelState::kUnloaded) continue;
      const ModelStats stats = version.loaded->stats();
      out.weight_bytes = stats.weight_bytes;
      out.active_requests = stats.running + stats.waiting;
      if (number == entry.serving) {
        info.quantization = QuantizationOf(version.loaded->config());
        info.context_length = version.loaded->limits().max_context;
      }
    }
    info.versions.push_back(std::move(out));
  }
  return info;
}

void ModelManager::Notify(const std::string& model) {
  if (!on_change_) return;
  bool serving = false;
  {
    std::lock_guard lock(mutex_);
    serving = models_[model].serving != 0;
  }
  on_change_(model, serving);
}

}  // namespace nibble::server
