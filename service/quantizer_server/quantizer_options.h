// nibble-quantizer's configuration: one Options struct filled from command-line flags, each of which can also
// come from a NIBBLE_* environment variable (the flag wins). Plain data; RegisterQuantizerFlags binds the
// flags to a QuantizerOptions that must outlive the parse.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "service/common/endpoints.h"
#include "service/common/security.h"

namespace nibble::quantizer_server {

struct QuantizerOptions {
  std::string store;                      // --store, NIBBLE_STORE: model store root jobs publish into (required)
  std::string state_dir;                  // --state-dir, NIBBLE_STATE_DIR: jobs.sqlite and jobs/<id>/ checkpoints
  std::vector<std::string> source_roots;  // --source-root, NIBBLE_SOURCE_ROOT (comma-separated): where jobs may read
  std::string listen = "0.0.0.0:8610";    // --listen, NIBBLE_LISTEN: gRPC address HOST:PORT (port 0: pick one)
  int32_t metrics_port = 8611;            // --metrics-port, NIBBLE_METRICS_PORT: /metrics on the --listen host
  std::string metrics_auth_file;          // --metrics-auth-file, NIBBLE_METRICS_AUTH_FILE: USER:PASSWORD for /metrics
  std::string backend = "auto";           // --backend, NIBBLE_BACKEND: auto (CUDA when a GPU is visible), cpu, cuda
  int32_t max_queue = 16;                 // --max-queue, NIBBLE_MAX_QUEUE: queued jobs (RESOURCE_EXHAUSTED beyond)
  service::TlsOptions tls;                // --tls-cert, --tls-key, --tls-client-ca (service/common/security.h)
  service::ConnectionOptions connection;  // --keepalive-*, --max-connection-* (service/common/endpoints.h)
  std::string auth_token_file;   // --auth-token-file, NIBBLE_AUTH_TOKEN_FILE: every RPC but health needs this token
  std::string admin_token_file;  // --admin-token-file, NIBBLE_ADMIN_TOKEN_FILE: SubmitJob and CancelJob need this one
};

// Adds the flags above to `app`, bound to `options`.
void RegisterQuantizerFlags(CLI::App& app, QuantizerOptions& options);

// Checks what flags alone cannot (TLS pairs, at least one source root, HOST:PORT): InvalidArgument naming the flag.
absl::Status ValidateQuantizerOptions(const QuantizerOptions& options);

}  // namespace nibble::quantizer_server
