#include "service/inference_server/server_options.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"

namespace nibble::server {
namespace {

// HOST:PORT with a non-empty host ("[::1]" for IPv6) and a port of 0..65535.
absl::Status ValidateHostPort(absl::string_view flag, const std::string& address) {
  const size_t colon = address.rfind(':');
  const absl::string_view digits = colon == std::string::npos ? "" : absl::string_view(address).substr(colon + 1);
  int port = -1;
  if (colon == 0 || digits.empty() || digits.size() > 5 ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) || !absl::SimpleAtoi(digits, &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", QuotedPrefix(address), " is not HOST:PORT"));
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterServerFlags(CLI::App& app, ServerOptions& o) {
  app.add_option("--store", o.store, "Model store root (<root>/<model>/<version>/)")
      ->required()
      ->envname("NIBBLE_STORE");
  app.add_option("--listen", o.listen, "gRPC address HOST:PORT (port 0: pick a free one, logged)")
      ->envname("NIBBLE_LISTEN")
      ->capture_default_str();
  CLI::Option* metrics_port = app.add_option("--metrics-port", o.metrics_port,
                                             "Prometheus /metrics port on the --listen host (0: pick one, logged)")
                                  ->envname("NIBBLE_METRICS_PORT")
                                  ->check(CLI::Range(0, 65535))
                                  ->capture_default_str();
  app.add_option(
         "--metrics-listen", o.metrics_listen,
         "Prometheus /metrics address HOST:PORT (port 0: pick one); replaces the --listen host and --metrics-port")
      ->envname("NIBBLE_METRICS_LISTEN")
      ->excludes(metrics_port);
  service::RegisterMetricsAuthFlag(app, o.metrics_auth_file);
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
  app.add_option("--prompt-threads", o.prompt_threads,
                 "Threads that tokenize text prompts longer than --inline-prompt-bytes (off the gRPC threads)")
      ->envname("NIBBLE_PROMPT_THREADS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--max-pending-prompts", o.max_pending_prompts,
                 "Long text prompts queued for or being tokenized; more are RESOURCE_EXHAUSTED at once")
      ->envname("NIBBLE_MAX_PENDING_PROMPTS")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--inline-prompt-bytes", o.inline_prompt_bytes,
                 "Text prompts up to this many bytes are tokenized on the RPC's own thread; longer ones on the "
                 "prompt threads")
      ->envname("NIBBLE_INLINE_PROMPT_BYTES")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--kv-blocks", o.kv_blocks, "KV cache blocks of 16 tokens per model (0: max-seqs full contexts)")
      ->envname("NIBBLE_KV_BLOCKS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--write-timeout", o.write_timeout_seconds,
                 "Seconds a stream's client may leave a message unread before the stream is cancelled and its KV "
                 "blocks freed (0: never)")
      ->envname("NIBBLE_WRITE_TIMEOUT")
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
  service::RegisterConnectionFlags(app, o.connection);
  app.add_option("--auth-token-file", o.auth_token_file,
                 "File holding a bearer token that every RPC but health must send (authorization: Bearer <token>)")
      ->envname("NIBBLE_AUTH_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--admin-token-file", o.admin_token_file,
                 "File holding the bearer token LoadModel and UnloadModel need (without it they are refused, unless "
                 "--allow-loopback-admin)")
      ->envname("NIBBLE_ADMIN_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  app.add_flag("--allow-loopback-admin", o.allow_loopback_admin,
               "Without --admin-token-file: allow LoadModel and UnloadModel from loopback peers (127.0.0.1, ::1, unix)")
      ->envname("NIBBLE_ALLOW_LOOPBACK_ADMIN");
}

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (o.store.empty()) return absl::InvalidArgumentError("--store: give the model store root");
  NIBBLE_RETURN_IF_ERROR(service::ValidateTlsOptions(o.tls));
  if (o.listen.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: \"", o.listen, "\" is not HOST:PORT"));
  }
  if (!o.metrics_listen.empty()) NIBBLE_RETURN_IF_ERROR(ValidateHostPort("--metrics-listen", o.metrics_listen));
  if (!o.admin_token_file.empty() && o.allow_loopback_admin) {
    return absl::InvalidArgumentError(
        "--admin-token-file and --allow-loopback-admin: give one (with the admin token, loopback callers send it too)");
  }
  return absl::OkStatus();
}

}  // namespace nibble::server
