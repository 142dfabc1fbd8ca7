#include "service/common/endpoints.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

namespace nibble::service {
namespace {

int Milliseconds(double seconds) { return static_cast<int>(seconds * 1000.0); }

// The first line of `file`, USER:PASSWORD, split at the first colon.
absl::StatusOr<std::pair<std::string, std::string>> ReadBasicAuth(const std::string& file) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string line, ReadFirstLineOfFlagFile("--metrics-auth-file", file));
  const size_t colon = line.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == line.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-auth-file: ", file, ": the first line must be USER:PASSWORD (both non-empty)"));
  }
  return std::make_pair(line.substr(0, colon), line.substr(colon + 1));
}

}  // namespace

void RegisterConnectionFlags(CLI::App& app, ConnectionOptions& o) {
  app.add_option("--keepalive-time", o.keepalive_time_seconds,
                 "Seconds a connection may be quiet before the server pings it")
      ->envname("NIBBLE_KEEPALIVE_TIME")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--keepalive-timeout", o.keepalive_timeout_seconds,
                 "Seconds a keep-alive ping may go unanswered before the connection is closed")
      ->envname("NIBBLE_KEEPALIVE_TIMEOUT")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-connection-idle", o.max_connection_idle_seconds,
                 "Seconds a connection may go without a call before it is closed (0: never)")
      ->envname("NIBBLE_MAX_CONNECTION_IDLE")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-connection-age", o.max_connection_age_seconds,
                 "Seconds after which a connection is asked to go away (0: never; spreads clients over replicas)")
      ->envname("NIBBLE_MAX_CONNECTION_AGE")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-connection-age-grace", o.max_connection_age_grace_seconds,
                 "Seconds the calls of a connection past --max-connection-age get to finish")
      ->envname("NIBBLE_MAX_CONNECTION_AGE_GRACE")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void RegisterMetricsAuthFlag(CLI::App& app, std::string& file) {
  app.add_option("--metrics-auth-file", file, "File whose first line is USER:PASSWORD: /metrics needs basic auth")
      ->envname("NIBBLE_METRICS_AUTH_FILE")
      ->check(CLI::ExistingFile);
}

absl::StatusOr<std::unique_ptr<GrpcEndpoint>> GrpcEndpoint::Start(const std::string& listen,
                                                                  std::shared_ptr<grpc::ServerCredentials> credentials,
                                                                  const ConnectionOptions& connection,
                                                                  const std::vector<ServedService>& services,
                                                                  const TokenCheck& token_check) {
  std::vector<std::string> names = {"grpc.health.v1.Health"};
  for (const ServedService& served : services) names.push_back(served.name);
  std::unique_ptr<GrpcEndpoint> endpoint(
      new GrpcEndpoint(std::make_unique<ReflectionService>(token_check, std::move(names))));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, std::move(credentials), &endpoint->port_);
  for (const ServedService& served : services) builder.RegisterService(served.service);
  builder.RegisterService(endpoint->reflection_.get());
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Milliseconds(connection.keepalive_time_seconds));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Milliseconds(connection.keepalive_timeout_seconds));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (connection.max_connection_idle_seconds > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Milliseconds(connection.max_connection_idle_seconds));
  }
  if (connection.max_connection_age_seconds > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Milliseconds(connection.max_connection_age_seconds));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               Milliseconds(connection.max_connection_age_grace_seconds));
  }
  endpoint->server_ = builder.BuildAndStart();
  if (endpoint->server_ == nullptr || endpoint->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("--listen ", listen, ": cannot listen there"));
  }
  return endpoint;
}

GrpcEndpoint::~GrpcEndpoint() {
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    absl::string_view flag, const std::string& address, const std::string& basic_auth_file,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  std::optional<std::pair<std::string, std::string>> credentials;
  if (!basic_auth_file.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(credentials, ReadBasicAuth(basic_auth_file));
  }
  auto endpoint = std::make_unique<MetricsEndpoint>();
  try {
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& error) {
    return absl::UnavailableError(absl::StrCat(flag, " ", address, ": ", error.what()));
  }
  if (credentials) {
    endpoint->exposer_->RegisterAuth(
        [user = credentials->first, password = credentials->second](const std::string& given_user,
                                                                    const std::string& given_password) {
          // Both compared, so that the time does not tell which one was wrong.
          const bool user_ok = EqualInConstantTime(given_user, user);
          return EqualInConstantTime(given_password, password) && user_ok;
        },
        "nibble metrics");
  }
  for (const auto& collectable : collectables) endpoint->exposer_->RegisterCollectable(collectable);
  endpoint->port_ = endpoint->exposer_->GetListeningPorts().at(0);
  spdlog::info("metrics on http://{}:{}/metrics{}", address.substr(0, address.rfind(':')), endpoint->port_,
               credentials ? " (basic auth)" : "");
  return endpoint;
}

}  // namespace nibble::service
