// The `nibble` subcommands that talk to a nibble server (connection flags: service/client/connection_flags.h):
//   nibble generate --server ADDR --model NAME[:N] ...   (generate_command.h chooses this mode)
//   nibble models --server ADDR                          the models, their versions and load states
//   nibble health --server ADDR [--service S]            grpc.health.v1 Check (nibble-quantizer too)
// Failures are statuses carrying the gRPC code and a message naming the server and the RPC.
#pragma once

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "service/cli/generate_options.h"
#include "service/client/connection.h"

namespace nibble::cli {

// Streams `options` from the server: the prompt, then each text delta as it arrives, to stdout; then the
// usage, the client-side TTFT and tokens/s to stderr. InvalidArgument (before any call) when the prompt is
// empty or options.model is not NAME[:VERSION]; the call's status when it fails; Unknown when the server
// ends the request with finish reason ERROR.
absl::Status RunServerGenerate(const GenerateOptions& options, const client::ConnectionOptions& connection);

void RegisterModels(CLI::App& app, int& exit_code);
void RegisterHealth(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
