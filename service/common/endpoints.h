// The listening side every nibble service shares: the gRPC server (its services, gRPC health, reflection behind
// the bearer token, keep-alive and connection limits) and the Prometheus /metrics endpoint (optional basic auth).
//
// GrpcEndpoint owns the gRPC server and the reflection service it serves; the services passed to Start must
// outlive it. MetricsEndpoint owns the HTTP server; the collectables are held weakly. Destroying either
// stops it (gRPC: Shutdown with no grace; call server().Shutdown(deadline) first for one). Thread-safe as
// grpc::Server and prometheus::Exposer are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "service/common/reflection_service.h"
#include "service/common/security.h"

namespace nibble::service {

// How long connections live and how dead peers are found (gRPC's keep-alive channel arguments).
struct ConnectionOptions {
  double keepalive_time_seconds = 60;      // --keepalive-time: ping a connection quiet this long
  double keepalive_timeout_seconds = 20;   // --keepalive-timeout: close it when the ping gets no answer this long
  double max_connection_idle_seconds = 0;  // --max-connection-idle: close a connection with no call this long; 0: never
  double max_connection_age_seconds = 0;   // --max-connection-age: close (GOAWAY) connections this old; 0: never
  double max_connection_age_grace_seconds = 30;  // --max-connection-age-grace: calls then get this long to end
};
void RegisterConnectionFlags(CLI::App& app, ConnectionOptions& options);

// --metrics-auth-file, NIBBLE_METRICS_AUTH_FILE: a file whose first line is USER:PASSWORD; /metrics then needs
// HTTP basic auth with them.
void RegisterMetricsAuthFlag(CLI::App& app, std::string& file);

// A service to serve and its fully qualified name (the generated Service::service_full_name()).
struct ServedService {
  grpc::Service* service;
  std::string name;
};

class GrpcEndpoint {
 public:
  // Listens on `listen` with `credentials` and serves `services`, gRPC health (default service, not behind the
  // token: load balancers and kubelets probe it) and reflection listing them behind `token_check`.
  // UNAVAILABLE naming --listen when it cannot listen there.
  static absl::StatusOr<std::unique_ptr<GrpcEndpoint>> Start(const std::string& listen,
                                                             std::shared_ptr<grpc::ServerCredentials> credentials,
                                                             const ConnectionOptions& connection,
                                                             const std::vector<ServedService>& services,
                                                             const TokenCheck& token_check);
  ~GrpcEndpoint();

  grpc::Server& server() { return *server_; }
  grpc::HealthCheckServiceInterface& health() { return *server_->GetHealthCheckService(); }
  int port() const { return port_; }

 private:
  explicit GrpcEndpoint(std::unique_ptr<ReflectionService> reflection) : reflection_(std::move(reflection)) {}
  const std::unique_ptr<ReflectionService> reflection_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

class MetricsEndpoint {
 public:
  // Serves `collectables` at http://`address`/metrics (port 0: a free one). `flag` names the flag that gave
  // the address in errors (UNAVAILABLE when it cannot listen, or the auth file's error).
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      absl::string_view flag, const std::string& address, const std::string& basic_auth_file,
      const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

  int port() const { return port_; }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace nibble::service
