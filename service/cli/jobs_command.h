// `nibble jobs`: the quantization jobs of a nibble-quantizer (connection flags: service/client/connection_flags.h).
//   nibble jobs list --server ADDR [--state S] [--limit N] [--page-token T]   a table, newest first
//   nibble jobs get --server ADDR ID [--json]                                 the job's summary, or the Job as JSON
//   nibble jobs watch --server ADDR ID                                        follows it to its end
//   nibble jobs cancel --server ADDR ID                                       cancels it, prints what it became
// Failures are statuses carrying the gRPC code and a message naming the server and the RPC.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "service/client/connection.h"

namespace nibble::cli {

// Follows job `id` until it ends, showing its progress on stdout (redrawn in place on a terminal, one line
// per block otherwise), then its summary. OK only when it SUCCEEDED, after printing the published path on a
// line of its own; Unknown carrying the job's error when it FAILED, Cancelled when it was cancelled; the
// call's status when the stream fails.
absl::Status WatchJobToEnd(const client::Connection& connection, const std::string& id);

void RegisterJobs(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
