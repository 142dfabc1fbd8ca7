#include "service/client/connection_flags.h"

#include "absl/strings/str_cat.h"

namespace nibble::client {

std::vector<CLI::Option*> AddConnectionFlags(CLI::App& command, ConnectionOptions& options, bool server_required) {
  CLI::Option* server =
      command.add_option("--server", options.server, "HOST:PORT of the nibble server")->envname("NIBBLE_SERVER");
  if (server_required) server->required();
  return {
      server,
      command.add_flag("--tls", options.tls, "Use TLS, checking the server against the system's root certificates")
          ->envname("NIBBLE_TLS"),
      command
          .add_option("--tls-ca", options.tls_ca,
                      "PEM file of the CA that signed the server's certificate (implies --tls)")
          ->envname("NIBBLE_TLS_CA")
          ->check(CLI::ExistingFile),
      command
          .add_option("--tls-client-cert", options.tls_client_cert,
                      "PEM client certificate for mutual TLS (implies --tls)")
          ->envname("NIBBLE_TLS_CLIENT_CERT")
          ->check(CLI::ExistingFile),
      command.add_option("--tls-client-key", options.tls_client_key, "PEM private key of --tls-client-cert")
          ->envname("NIBBLE_TLS_CLIENT_KEY")
          ->check(CLI::ExistingFile),
      command
          .add_option("--tls-server-name", options.tls_server_name,
                      "Name to expect in the server's certificate (default: the host of --server)")
          ->envname("NIBBLE_TLS_SERVER_NAME"),
      command
          .add_option("--token-file", options.token_file,
                      "File holding a bearer token, sent as 'authorization: Bearer <token>'")
          ->envname("NIBBLE_TOKEN_FILE")
          ->check(CLI::ExistingFile),
      command.add_option("--timeout", options.timeout_seconds, "Deadline of each call in seconds (0: none)")
          ->envname("NIBBLE_TIMEOUT")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str(),
  };
}

absl::Status RejectGiven(const std::vector<CLI::Option*>& options, absl::string_view why) {
  for (const CLI::Option* option : options) {
    if (option->count() > 0) return absl::InvalidArgumentError(absl::StrCat(option->get_name(), " ", why));
  }
  return absl::OkStatus();
}

}  // namespace nibble::client
