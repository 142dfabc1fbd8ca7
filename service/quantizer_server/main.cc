// nibble-quantizer: quantization as a served, durable job (nibble.v1.Quantizer over gRPC), publishing AWQ
// artifacts into the model store that nibble-server watches. `nibble-quantizer --help` lists the flags; each
// also reads a NIBBLE_* environment variable. SIGTERM (or SIGINT) queues the running job again with its
// checkpoint and exits 0.

#include "CLI/CLI.hpp"
#include "service/common/termination.h"
#include "service/quantizer_server/quantizer_options.h"
#include "service/quantizer_server/quantizer_server.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  nibble::quantizer_server::QuantizerOptions options;
  CLI::App app{"nibble-quantizer: AWQ/RTN quantization jobs over gRPC, published into a model store"};
  nibble::quantizer_server::RegisterQuantizerFlags(app, options);
  CLI11_PARSE(app, argc, argv);

  nibble::service::BlockTerminationSignals();  // before any thread starts

  absl::StatusOr<std::unique_ptr<nibble::quantizer_server::QuantizerServer>> server =
      nibble::quantizer_server::QuantizerServer::Start(options);
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 1;
  }
  spdlog::info("received {}", nibble::service::WaitForTerminationSignal());
  (*server)->Stop();
  server->reset();
  spdlog::info("exiting");
  return 0;
}
