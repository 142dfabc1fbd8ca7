// nibble-server: streams generations from the models in a model store over gRPC (nibble.v1.Inference),
// with health, reflection and Prometheus metrics. `nibble-server --help` lists the flags; each also reads
// a NIBBLE_* environment variable. SIGTERM (or SIGINT) drains and exits 0.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "service/common/termination.h"
#include "service/inference_server/server.h"
#include "service/inference_server/server_options.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  nibble::server::ServerOptions options;
  CLI::App app{"nibble-server: streaming generation from AWQ-quantized Llama models in a model store, over gRPC"};
  nibble::server::RegisterServerFlags(app, options);
  CLI11_PARSE(app, argc, argv);

  nibble::service::BlockTerminationSignals();  // before any thread starts

  absl::StatusOr<std::unique_ptr<nibble::server::Server>> server = nibble::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 1;
  }
  spdlog::info("received {}", nibble::service::WaitForTerminationSignal());
  (*server)->Drain(std::chrono::milliseconds(static_cast<int64_t>(options.drain_timeout_seconds * 1000.0)));
  server->reset();
  spdlog::info("exiting");
  return 0;
}
