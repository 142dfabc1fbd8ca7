#include "service/cli/server_commands.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/client_context.h"
#include "service/client/cli_status.h"
#include "service/client/connection_flags.h"
#include "service/client/generate_call.h"
#include "service/client/labels.h"
#include "service/client/model_reference.h"

namespace nibble::cli {
namespace {

absl::StatusOr<v1::GenerateRequest> MakeRequest(const GenerateOptions& options) {
  absl::StatusOr<client::ModelReference> model = client::ParseModelReference(options.model);
  if (!model.ok()) {
    std::error_code error;
    if (std::filesystem::is_directory(options.model, error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--model \"", options.model,
          "\" is a local directory, but --server (or NIBBLE_SERVER) asks a server, "
          "which takes a model name (NAME or NAME:VERSION); leave --server out to run the directory here"));
    }
    return absl::InvalidArgumentError(absl::StrCat("--model: ", model.status().message()));
  }
  if (options.prompt.empty()) return absl::InvalidArgumentError("--prompt: a server needs a prompt");
  v1::GenerateRequest request;
  request.set_model(model->name);
  request.set_version(model->version);
  request.set_text(options.prompt);
  request.set_max_tokens(options.max_tokens);
  v1::SamplingParameters& sampling = *request.mutable_sampling();
  sampling.set_temperature(options.temperature);
  sampling.set_top_k(options.top_k);
  sampling.set_top_p(options.top_p);
  sampling.set_min_p(options.min_p);
  if (options.seed) sampling.set_seed(*options.seed);
  for (const std::string& stop : options.stop) request.add_stop(stop);
  for (int32_t id : options.stop_token_ids) request.add_stop_token_ids(id);
  return request;
}

void PrintUsage(const client::Connection& connection, const client::GenerateOutcome& outcome) {
  const v1::Final& final = *outcome.final;
  const double ttft = outcome.time_to_first_token_seconds.value_or(0.0);
  const double decode_seconds = outcome.e2e_seconds - ttft;
  std::fprintf(stderr,
               "[%s %s:%lu] %u prompt + %u generated tokens, finish %s, TTFT %.1f ms, %.1f tokens/s "
               "(server: queue %.1f ms, TTFT %.1f ms)\n",
               connection.server().c_str(), final.model().c_str(), static_cast<unsigned long>(final.version()),
               final.usage().prompt_tokens(), final.usage().completion_tokens(),
               client::FinishReasonLabel(final.finish_reason()).c_str(), ttft * 1e3,
               outcome.tokens > 1 && decode_seconds > 0 ? (outcome.tokens - 1) / decode_seconds : 0.0,
               final.usage().queue_seconds() * 1e3, final.usage().time_to_first_token_seconds() * 1e3);
}

// One line per model version: name, version, state, whether it serves, its requests, weights, quantization.
void PrintModels(const v1::ListModelsResponse& response) {
  std::printf("%-24s %8s %-10s %-7s %8s %12s %-16s %8s\n", "MODEL", "VERSION", "STATE", "SERVING", "REQUESTS",
              "WEIGHTS", "QUANTIZATION", "CONTEXT");
  for (const v1::ModelInfo& model : response.models()) {
    const std::string serving_note = model.pinned() ? "pinned" : "yes";
    if (model.versions().empty()) {
      std::printf("%-24s %8s %-10s %-7s %8s %12s %-16s %8u\n", model.name().c_str(), "-", "-", "-", "-", "-",
                  model.quantization().c_str(), model.context_length());
    }
    for (const v1::ModelVersion& version : model.versions()) {
      const bool serving = version.version() == model.serving_version();
      std::printf("%-24s %8lu %-10s %-7s %8u %12s %-16s %8u%s\n", model.name().c_str(),
                  static_cast<unsigned long>(version.version()), client::ModelStateLabel(version.state()).c_str(),
                  serving ? serving_note.c_str() : "", version.active_requests(),
                  absl::StrFormat("%.1f MiB", version.weight_bytes() / 1048576.0).c_str(), model.quantization().c_str(),
                  model.context_length(), version.error().empty() ? "" : absl::StrCat("  ", version.error()).c_str());
    }
  }
}

absl::Status RunModels(const client::ConnectionOptions& options) {
  absl::StatusOr<client::Connection> connection = client::Connection::Open(options);
  if (!connection.ok()) return connection.status();
  grpc::ClientContext context;
  connection->Prepare(context);
  v1::ListModelsResponse response;
  const grpc::Status status = connection->inference().ListModels(&context, v1::ListModelsRequest(), &response);
  if (!status.ok()) return connection->CallStatus(status, "ListModels");
  PrintModels(response);
  return absl::OkStatus();
}

// grpc.health.v1 Check of `service` ("" for the whole server): prints its status; OK only for SERVING.
absl::Status RunHealth(const client::ConnectionOptions& options, const std::string& service) {
  absl::StatusOr<client::Connection> connection = client::Connection::Open(options);
  if (!connection.ok()) return connection.status();
  grpc::ClientContext context;
  connection->Prepare(context);
  if (options.timeout_seconds <= 0) {  // a probe must not hang: 5 s unless --timeout says otherwise
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = connection->health().Check(&context, request, &response);
  if (!status.ok()) return connection->CallStatus(status, "Health.Check");
  const std::string name = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  std::cout << (service.empty() ? "server" : service) << ": " << name << "\n";
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(
        absl::StrCat(connection->server(), ": ", service.empty() ? "the server" : service, " is ", name));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunServerGenerate(const GenerateOptions& options, const client::ConnectionOptions& connection_options) {
  absl::StatusOr<v1::GenerateRequest> request = MakeRequest(options);
  if (!request.ok()) return request.status();
  absl::StatusOr<client::Connection> connection = client::Connection::Open(connection_options);
  if (!connection.ok()) return connection.status();
  std::cout << options.prompt << std::flush;
  client::GenerateOutcome outcome = client::RunGenerate(
      *connection, *std::move(request), [](const v1::TokenChunk& chunk) { std::cout << chunk.text() << std::flush; });
  std::cout << "\n" << std::flush;
  if (!outcome.status.ok()) return outcome.status;
  PrintUsage(*connection, outcome);
  return absl::OkStatus();
}

void RegisterModels(CLI::App& app, int& exit_code) {
  auto* command =
      app.add_subcommand("models",
                         "List the models a nibble server knows: each version's load state, whether it serves, its "
                         "requests in flight, weight size, quantization and context length");
  auto options = std::make_shared<client::ConnectionOptions>();
  client::AddConnectionFlags(*command, *options, /*server_required=*/true);
  command->callback([options, &exit_code] {
    if (absl::Status status = RunModels(*options); !status.ok()) exit_code = client::ReportError(status);
  });
}

void RegisterHealth(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "health",
      "Ask a nibble-server or nibble-quantizer whether it serves (grpc.health.v1 Check): prints SERVING and exits "
      "0, or prints the status and exits non-zero; for probes (the images' HEALTHCHECK)");
  struct Options {
    client::ConnectionOptions connection;
    std::string service;
  };
  auto options = std::make_shared<Options>();
  client::AddConnectionFlags(*command, options->connection, /*server_required=*/true);
  command->add_option("--service", options->service,
                      "A model's name on nibble-server, or a service name; empty: the whole server");
  command->callback([options, &exit_code] {
    if (absl::Status status = RunHealth(options->connection, options->service); !status.ok()) {
      exit_code = client::ReportError(status);
    }
  });
}

}  // namespace nibble::cli
