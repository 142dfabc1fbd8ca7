// How every command-line tool (the `nibble` subcommands, nibble-load) reports a failure: one line on stderr, "error:
// CODE: message" (the code as gRPC and absl name it, e.g. NOT_FOUND), and exit status 1.
#pragma once

#include "absl/status/status.h"

namespace nibble::client {

// Prints `status` (not OK) and returns the process exit status for it.
int ReportError(const absl::Status& status);

}  // namespace nibble::client
