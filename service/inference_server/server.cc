#include "service/inference_server/server.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/backends/backend_factory.h"
#include "engine/base/status_macros.h"
#include "engine/serving/serving_engine.h"
#include "service/common/endpoints.h"
#include "service/common/process_metrics.h"
#include "service/common/security.h"
#include "service/inference_server/admin_check.h"
#include "service/inference_server/engine_gauges.h"
#include "service/inference_server/inference_service.h"
#include "service/inference_server/metrics.h"
#include "service/inference_server/model_manager.h"
#include "service/inference_server/prompt_workers.h"
#include "service/inference_server/stream_watchdog.h"
#include "spdlog/spdlog.h"

namespace nibble::server {
namespace {

std::chrono::milliseconds Milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

absl::StatusOr<ModelManagerOptions> ManagerOptions(const ServerOptions& options) {
  ModelManagerOptions manager;
  manager.model.max_seqs = options.max_seqs;
  manager.model.kv_blocks = options.kv_blocks;
  manager.scheduler.max_waiting = options.max_queue;
  manager.scheduler.queue_timeout = Milliseconds(options.queue_timeout_seconds);
  for (const std::string& pin : options.pins) {
    NIBBLE_ASSIGN_OR_RETURN(auto parsed, ParsePin(pin));
    manager.pins[parsed.first] = parsed.second;
  }
  return manager;
}

// --metrics-listen, or the --listen host with --metrics-port.
std::string MetricsAddress(const ServerOptions& options) {
  if (!options.metrics_listen.empty()) return options.metrics_listen;
  return absl::StrCat(options.listen.substr(0, options.listen.rfind(':')), ":", options.metrics_port);
}

// Members are declared in the order they are built; they are destroyed in reverse, so the gRPC server and
// the metrics endpoint stop before what they read from.
class ServerImpl : public Server {
 public:
  ServerImpl(service::TokenCheck token_check, AdminCheck admin_check, std::unique_ptr<Backend> backend)
      : token_check_(std::move(token_check)), admin_check_(std::move(admin_check)) {
    ServingEngineOptions engine_options;
    engine_options.observer = metrics_;
    engine_ = std::make_unique<ServingEngine>(std::move(backend), engine_options);
    engine_gauges_ = MakeEngineGauges(*engine_);
  }

  ~ServerImpl() override {
    if (manager_) manager_->StopWatching();
    grpc_.reset();
    if (engine_) engine_->Shutdown();
  }

  absl::Status Init(const ServerOptions& options, ModelManagerOptions manager_options,
                    std::shared_ptr<grpc::ServerCredentials> credentials) {
    manager_ =
        std::make_unique<ModelManager>(ModelStore(options.store), *engine_, std::move(manager_options),
                                       [this](const std::string& model, bool serving) { SetHealth(model, serving); });
    watchdog_ = std::make_unique<StreamWatchdog>(Milliseconds(options.write_timeout_seconds));
    prompt_workers_ = std::make_unique<PromptWorkers>(options.prompt_threads, options.max_pending_prompts);
    service_ = std::make_unique<InferenceService>(*manager_, token_check_, admin_check_, metrics_, *watchdog_,
                                                  *prompt_workers_, static_cast<size_t>(options.inline_prompt_bytes));

    NIBBLE_ASSIGN_OR_RETURN(
        grpc_, service::GrpcEndpoint::Start(options.listen, std::move(credentials), options.connection,
                                            {{service_.get(), v1::Inference::service_full_name()}}, token_check_));
    health_ = &grpc_->health();
    health_->SetServingStatus("", false);
    spdlog::info("gRPC listening on {} (port {}), {}", options.listen, grpc_->port(), options.tls.mode());
    NIBBLE_ASSIGN_OR_RETURN(
        metrics_endpoint_,
        service::MetricsEndpoint::Start(options.metrics_listen.empty() ? "--metrics-port" : "--metrics-listen",
                                        MetricsAddress(options), options.metrics_auth_file,
                                        {metrics_->registry(), engine_gauges_, process_metrics_}));

    manager_->Refresh();
    health_->SetServingStatus("", true);
    manager_->StartWatching(Milliseconds(options.poll_interval_seconds));
    return absl::OkStatus();
  }

  int port() const override { return grpc_->port(); }
  int metrics_port() const override { return metrics_endpoint_->port(); }

  void Drain(std::chrono::milliseconds timeout) override {
    health_->Shutdown();  // every service NOT_SERVING, and it stays so
    manager_->StopWatching();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    engine_->BeginDrain(deadline);
    // Logged once health says NOT_SERVING and the engine refuses new requests (watchers such as the e2e tests
    // act on this line).
    spdlog::info("draining: health NOT_SERVING, new requests refused, streams get {} ms to finish", timeout.count());
    engine_->Drain(deadline);
    // Every stream has its final event now; give them a moment to write it and finish.
    grpc_->server().Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    spdlog::info("drained");
  }

 private:
  void SetHealth(const std::string& model, bool serving) {
    if (health_ != nullptr) health_->SetServingStatus(model, serving);
  }

  const service::TokenCheck token_check_;
  const AdminCheck admin_check_;
  const std::shared_ptr<ServerMetrics> metrics_ = std::make_shared<ServerMetrics>();
  std::unique_ptr<ServingEngine> engine_;
  std::shared_ptr<prometheus::Collectable> engine_gauges_;
  const std::shared_ptr<prometheus::Collectable> process_metrics_ = service::MakeProcessMetrics();
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<StreamWatchdog> watchdog_;
  std::unique_ptr<PromptWorkers> prompt_workers_;  // after what its tasks use, before the service
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<service::GrpcEndpoint> grpc_;
  grpc::HealthCheckServiceInterface* health_ = nullptr;
  std::unique_ptr<service::MetricsEndpoint> metrics_endpoint_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  NIBBLE_RETURN_IF_ERROR(ValidateServerOptions(options));
  NIBBLE_ASSIGN_OR_RETURN(ModelManagerOptions manager_options, ManagerOptions(options));
  NIBBLE_ASSIGN_OR_RETURN(service::TokenCheck token_check,
                          service::TokenCheck::FromFile("--auth-token-file", options.auth_token_file));
  NIBBLE_ASSIGN_OR_RETURN(AdminCheck admin_check, AdminCheck::FromOptions(options, token_check));
  NIBBLE_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                          service::MakeServerCredentials(options.tls));
  NIBBLE_ASSIGN_OR_RETURN(BackendKind kind, ParseBackendKind(options.backend));
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, MakeBackend(kind));
  spdlog::info("backend {}, store {}", backend->name(), options.store);
  auto server = std::make_unique<ServerImpl>(std::move(token_check), std::move(admin_check), std::move(backend));
  NIBBLE_RETURN_IF_ERROR(server->Init(options, std::move(manager_options), std::move(credentials)));
  return server;
}

}  // namespace nibble::server
