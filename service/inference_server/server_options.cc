#include "service/inference_server/server_options.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble::server {

void RegisterServerFlags(CLI::App& app, ServerOptions& o) {
  app.add_option("--store", o.store, "Model store root (<root>/<model>/<version>/)")
      ->required()
      ->envname("NIBBLE_STORE");
  app.add_option("--listen", o.listen, "gRPC address HOST:PORT (port 0: pick a free one, logged)")
      ->envname("NIBBLE_LISTEN")
      ->capture_default_str();
  app.add_option("--metrics-port", o.metrics_port,
                 "Prometheus /metrics port on the --listen host (0: pick one, logged)")
      ->envname("NIBBLE_METRICS_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--backend", o.backend, "auto (CUDA when a GPU is visible), cpu or cuda")
      ->envname("NIBBLE_BACKEND")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--max-queue", o.max_queue, "Requests waiting per model; more are refused with RESOURCE_EXHAUSTED")
      ->envname("NIBBLE_MAX_QUEUE")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--queue-timeout", o.queue_timeout_seconds,
                 "Seconds a request may wait for a batch seat before DEADLINE_EXCEEDED (0: no limit)")
      ->envname("NIBBLE_QUEUE_TIMEOUT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-seqs", o.max_seqs, "Sequences one decode step runs (continuous-batching seats)")
      ->envname("NIBBLE_MAX_SEQS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-blocks", o.kv_blocks, "KV cache blocks of 16 tokens per model (0: max-seqs full contexts)")
      ->envname("NIBBLE_KV_BLOCKS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--drain-timeout", o.drain_timeout_seconds,
                 "On SIGTERM, seconds in-flight streams may take to finish before they are cut with UNAVAILABLE")
      ->envname("NIBBLE_DRAIN_TIMEOUT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--poll-interval", o.poll_interval_seconds, "Seconds between checks of the store for new versions")
      ->envname("NIBBLE_POLL_INTERVAL")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--pin", o.pins, "MODEL:N: serve version N of MODEL instead of its latest (repeatable)")
      ->envname("NIBBLE_PIN")
      ->delimiter(',');
  service::RegisterTlsFlags(app, o.tls);
  app.add_option("--auth-token-file", o.auth_token_file,
                 "File holding a bearer token that every RPC but health must send (authorization: Bearer <token>)")
      ->envname("NIBBLE_AUTH_TOKEN_FILE")
      ->check(CLI::ExistingFile);
}

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (o.store.empty()) return absl::InvalidArgumentError("--store: give the model store root");
  NIBBLE_RETURN_IF_ERROR(service::ValidateTlsOptions(o.tls));
  if (o.listen.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: \"", o.listen, "\" is not HOST:PORT"));
  }
  return absl::OkStatus();
}

}  // namespace nibble::server
