// The command-line flags of a client connection, shared by every `nibble` subcommand that talks to a
// service and by nibble-load. Each flag can also come from its NIBBLE_* environment variable:
//   --server HOST:PORT   NIBBLE_SERVER
//   --tls                NIBBLE_TLS
//   --tls-ca FILE        NIBBLE_TLS_CA
//   --tls-client-cert F  NIBBLE_TLS_CLIENT_CERT
//   --tls-client-key F   NIBBLE_TLS_CLIENT_KEY
//   --tls-server-name N  NIBBLE_TLS_SERVER_NAME
//   --token-file FILE    NIBBLE_TOKEN_FILE
//   --timeout SECONDS    NIBBLE_TIMEOUT
#pragma once

#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "service/client/connection.h"

namespace nibble::client {

// Adds the flags to `command`, bound to `options` (which must outlive parsing), and returns them. --server
// is required when `server_required`; otherwise its presence is the caller's to interpret.
std::vector<CLI::Option*> AddConnectionFlags(CLI::App& command, ConnectionOptions& options, bool server_required);

// For a subcommand with a local and a --server mode: InvalidArgument "<first of `options` given> <why>", so that
// a flag of the other mode is an error rather than silently ignored; OK when none was given.
absl::Status RejectGiven(const std::vector<CLI::Option*>& options, absl::string_view why);

}  // namespace nibble::client
