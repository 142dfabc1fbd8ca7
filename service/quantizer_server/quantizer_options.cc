#include "service/quantizer_server/quantizer_options.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble::quantizer_server {

void RegisterQuantizerFlags(CLI::App& app, QuantizerOptions& o) {
  app.add_option("--store", o.store, "Model store root that jobs publish into (<root>/<model>/<version>/)")
      ->required()
      ->envname("NIBBLE_STORE");
  app.add_option("--state-dir", o.state_dir, "Directory of the job database (jobs.sqlite) and job checkpoints")
      ->required()
      ->envname("NIBBLE_STATE_DIR");
  app.add_option("--source-root", o.source_roots,
                 "Directory jobs may read source models, calibration and evaluation files from (repeatable)")
      ->required()
      ->envname("NIBBLE_SOURCE_ROOT")
      ->delimiter(',')
      ->check(CLI::ExistingDirectory);
  app.add_option("--listen", o.listen, "gRPC address HOST:PORT (port 0: pick a free one, logged)")
      ->envname("NIBBLE_LISTEN")
      ->capture_default_str();
  app.add_option("--metrics-port", o.metrics_port,
                 "Prometheus /metrics port on the --listen host (0: pick one, logged)")
      ->envname("NIBBLE_METRICS_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  service::RegisterMetricsAuthFlag(app, o.metrics_auth_file);
  app.add_option("--backend", o.backend, "auto (CUDA when a GPU is visible), cpu or cuda")
      ->envname("NIBBLE_BACKEND")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--max-queue", o.max_queue, "Jobs waiting to run; more are refused with RESOURCE_EXHAUSTED")
      ->envname("NIBBLE_MAX_QUEUE")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  service::RegisterTlsFlags(app, o.tls);
  service::RegisterConnectionFlags(app, o.connection);
  app.add_option("--auth-token-file", o.auth_token_file,
                 "File holding a bearer token that every RPC but health must send (authorization: Bearer <token>)")
      ->envname("NIBBLE_AUTH_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  app.add_option(
         "--admin-token-file", o.admin_token_file,
         "File holding the bearer token SubmitJob and CancelJob need (without it, they take --auth-token-file's)")
      ->envname("NIBBLE_ADMIN_TOKEN_FILE")
      ->check(CLI::ExistingFile);
}

absl::Status ValidateQuantizerOptions(const QuantizerOptions& o) {
  if (o.store.empty()) return absl::InvalidArgumentError("--store: give the model store root");
  if (o.state_dir.empty()) return absl::InvalidArgumentError("--state-dir: give a directory for the job database");
  if (o.source_roots.empty()) return absl::InvalidArgumentError("--source-root: give at least one");
  NIBBLE_RETURN_IF_ERROR(service::ValidateTlsOptions(o.tls));
  if (o.listen.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: \"", o.listen, "\" is not HOST:PORT"));
  }
  return absl::OkStatus();
}

}  // namespace nibble::quantizer_server
