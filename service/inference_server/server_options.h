// nibble-server's configuration: one Options struct, filled from command-line flags, each of which can also
// come from a NIBBLE_* environment variable (the flag wins). Plain data; RegisterServerFlags binds the
// flags to a ServerOptions that must outlive the parse.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "service/common/endpoints.h"
#include "service/common/security.h"

namespace nibble::server {

struct ServerOptions {
  std::string store;                    // --store, NIBBLE_STORE: model store root (required)
  std::string listen = "0.0.0.0:8600";  // --listen, NIBBLE_LISTEN: gRPC address HOST:PORT (port 0: pick one)
  int32_t metrics_port = 8601;  // --metrics-port, NIBBLE_METRICS_PORT: /metrics on the --listen host; 0: pick one
  std::string metrics_listen;   // --metrics-listen, NIBBLE_METRICS_LISTEN: HOST:PORT for /metrics instead of the above
  std::string metrics_auth_file;  // --metrics-auth-file, NIBBLE_METRICS_AUTH_FILE: USER:PASSWORD for /metrics
  std::string backend = "auto";   // --backend, NIBBLE_BACKEND: auto (CUDA when a GPU is visible), cpu, cuda
  int32_t max_queue = 256;  // --max-queue, NIBBLE_MAX_QUEUE: waiting requests per model (RESOURCE_EXHAUSTED beyond)
  double queue_timeout_seconds = 0;  // --queue-timeout, NIBBLE_QUEUE_TIMEOUT: longest wait for a batch seat; 0: none
  int32_t max_seqs = 64;             // --max-seqs, NIBBLE_MAX_SEQS: sequences one decode step runs (batch seats)
  int32_t prompt_threads = 2;        // --prompt-threads, NIBBLE_PROMPT_THREADS: threads that tokenize long text prompts
  int32_t max_pending_prompts = 64;  // --max-pending-prompts, NIBBLE_MAX_PENDING_PROMPTS: long prompts queued or
                                     // being tokenized (RESOURCE_EXHAUSTED beyond)
  int32_t inline_prompt_bytes = 4096;  // --inline-prompt-bytes, NIBBLE_INLINE_PROMPT_BYTES: longer text prompts go
                                       // to the prompt threads; shorter ones are tokenized on the RPC's thread
  int32_t kv_blocks = 0;  // --kv-blocks, NIBBLE_KV_BLOCKS: KV cache blocks of 16 tokens; 0: max-seqs full contexts
  double write_timeout_seconds = 30;  // --write-timeout, NIBBLE_WRITE_TIMEOUT: a stream whose client has not read
                                      // for this long is cancelled; 0: never
  double drain_timeout_seconds = 30;  // --drain-timeout, NIBBLE_DRAIN_TIMEOUT: SIGTERM waits this long for streams
  double poll_interval_seconds =
      2;                          // --poll-interval, NIBBLE_POLL_INTERVAL: how often the store is checked for versions
  std::vector<std::string> pins;  // --pin, NIBBLE_PIN (comma-separated): MODEL:N serves version N only
  service::TlsOptions tls;        // --tls-cert, --tls-key, --tls-client-ca (service/common/security.h)
  service::ConnectionOptions connection;  // --keepalive-*, --max-connection-* (service/common/endpoints.h)
  std::string auth_token_file;  // --auth-token-file, NIBBLE_AUTH_TOKEN_FILE: every RPC but health needs "authorization:
                                // Bearer <token>"
  std::string admin_token_file;       // --admin-token-file, NIBBLE_ADMIN_TOKEN_FILE: LoadModel and UnloadModel need it
  bool allow_loopback_admin = false;  // --allow-loopback-admin, NIBBLE_ALLOW_LOOPBACK_ADMIN: without an admin token,
                                      // LoadModel and UnloadModel from loopback peers (else: refused)
};

// Adds the flags above to `app`, bound to `options`.
void RegisterServerFlags(CLI::App& app, ServerOptions& options);

// Checks what flags alone cannot: TLS files come as a pair, the client CA needs TLS, HOST:PORT addresses, one
// way of enabling admin calls.
// InvalidArgument naming the flag.
absl::Status ValidateServerOptions(const ServerOptions& options);

}  // namespace nibble::server
