#include "service/quantizer_server/quantizer_server.h"

#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/backends/backend_factory.h"
#include "engine/base/status_macros.h"
#include "service/common/endpoints.h"
#include "service/common/process_metrics.h"
#include "service/common/security.h"
#include "service/quantizer_server/job_manager.h"
#include "service/quantizer_server/quantizer_metrics.h"
#include "service/quantizer_server/quantizer_service.h"
#include "spdlog/spdlog.h"

namespace nibble::quantizer_server {
namespace fs = std::filesystem;
namespace {

constexpr char kDatabaseFile[] = "jobs.sqlite";
constexpr char kCheckpointsDir[] = "jobs";

// The source roots as canonical directories, the store and the checkpoints root.
absl::StatusOr<JobSpecContext> Paths(const QuantizerOptions& options) {
  JobSpecContext paths;
  for (const std::string& root : options.source_roots) {
    std::error_code error;
    fs::path canonical = fs::canonical(root, error);
    if (error || !fs::is_directory(canonical)) {
      return absl::InvalidArgumentError(absl::StrCat("--source-root ", root, ": not a directory"));
    }
    paths.source_roots.push_back(std::move(canonical));
  }
  std::error_code error;
  fs::create_directories(options.store, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat("--store ", options.store, ": ", error.message()));
  paths.store_root = fs::canonical(options.store);
  fs::create_directories(options.state_dir, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat("--state-dir ", options.state_dir, ": ", error.message()));
  paths.checkpoints_root = fs::canonical(options.state_dir) / kCheckpointsDir;
  return paths;
}

// Members are declared in the order they are built and destroyed in reverse: the gRPC server and the metrics
// endpoint stop before the manager they call.
class QuantizerServerImpl : public QuantizerServer {
 public:
  QuantizerServerImpl(service::TokenCheck reader_check, service::TokenCheck admin_check)
      : reader_check_(std::move(reader_check)), admin_check_(std::move(admin_check)) {}
  ~QuantizerServerImpl() override { Stop(); }

  absl::Status Init(const QuantizerOptions& options, JobManagerOptions manager_options, std::unique_ptr<JobStore> store,
                    std::unique_ptr<Backend> backend, std::shared_ptr<grpc::ServerCredentials> credentials) {
    NIBBLE_ASSIGN_OR_RETURN(
        manager_, JobManager::Start(std::move(manager_options), std::move(store), std::move(backend), metrics_.get()));
    service_ = std::make_unique<QuantizerService>(*manager_, reader_check_, admin_check_);

    NIBBLE_ASSIGN_OR_RETURN(
        grpc_, service::GrpcEndpoint::Start(options.listen, std::move(credentials), options.connection,
                                            {{service_.get(), v1::Quantizer::service_full_name()}}, reader_check_));
    health_ = &grpc_->health();
    spdlog::info("gRPC listening on {} (port {}), {}", options.listen, grpc_->port(), options.tls.mode());
    NIBBLE_ASSIGN_OR_RETURN(
        metrics_endpoint_,
        service::MetricsEndpoint::Start(
            "--metrics-port",
            absl::StrCat(options.listen.substr(0, options.listen.rfind(':')), ":", options.metrics_port),
            options.metrics_auth_file, {metrics_->registry(), process_metrics_}));
    health_->SetServingStatus("", true);
    health_->SetServingStatus("nibble.v1.Quantizer", true);
    return absl::OkStatus();
  }

  int port() const override { return grpc_->port(); }
  int metrics_port() const override { return metrics_endpoint_->port(); }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    if (health_ != nullptr) health_->Shutdown();
    if (manager_) manager_->Stop();  // WatchJob streams see their job QUEUED again and wake within a second
    if (grpc_) grpc_->server().Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
    spdlog::info("stopped");
  }

 private:
  const service::TokenCheck reader_check_;
  const service::TokenCheck admin_check_;
  const std::shared_ptr<QuantizerMetrics> metrics_ = std::make_shared<QuantizerMetrics>();
  const std::shared_ptr<prometheus::Collectable> process_metrics_ = service::MakeProcessMetrics();
  std::unique_ptr<JobManager> manager_;
  std::unique_ptr<QuantizerService> service_;
  std::unique_ptr<service::GrpcEndpoint> grpc_;
  grpc::HealthCheckServiceInterface* health_ = nullptr;
  std::unique_ptr<service::MetricsEndpoint> metrics_endpoint_;
  bool stopped_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<QuantizerServer>> QuantizerServer::Start(const QuantizerOptions& options) {
  NIBBLE_RETURN_IF_ERROR(ValidateQuantizerOptions(options));
  NIBBLE_ASSIGN_OR_RETURN(service::TokenCheck reader_check,
                          service::TokenCheck::FromFile("--auth-token-file", options.auth_token_file));
  NIBBLE_ASSIGN_OR_RETURN(service::TokenCheck admin_check,
                          options.admin_token_file.empty()
                              ? service::TokenCheck::FromFile("--auth-token-file", options.auth_token_file)
                              : service::TokenCheck::FromFile("--admin-token-file", options.admin_token_file));
  NIBBLE_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                          service::MakeServerCredentials(options.tls));
  JobManagerOptions manager_options;
  NIBBLE_ASSIGN_OR_RETURN(manager_options.paths, Paths(options));
  manager_options.max_queue = options.max_queue;
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store, JobStore::Open(fs::path(options.state_dir) / kDatabaseFile));
  NIBBLE_ASSIGN_OR_RETURN(BackendKind kind, ParseBackendKind(options.backend));
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, MakeBackend(kind));
  std::vector<std::string> roots;
  for (const fs::path& root : manager_options.paths.source_roots) roots.push_back(root.string());
  spdlog::info("backend {}, store {}, state {}, source roots {}", backend->name(), options.store, options.state_dir,
               absl::StrJoin(roots, ", "));
  auto server = std::make_unique<QuantizerServerImpl>(std::move(reader_check), std::move(admin_check));
  NIBBLE_RETURN_IF_ERROR(
      server->Init(options, std::move(manager_options), std::move(store), std::move(backend), std::move(credentials)));
  return server;
}

}  // namespace nibble::quantizer_server
