// `nibble quantize`: runs a quantization job here (quantizer/job.h) and publishes the artifact into a model
// store, printing one progress line per block and the published path; with --evaluate-only it fake-quantizes
// (3 or 4 bits) and prints the quality figures without publishing.
// With --server ADDR (or NIBBLE_SERVER) it submits the same job to a nibble-quantizer instead (the connection
// flags of service/client/connection_flags.h apply; the paths are the quantizer's) and prints the job's id;
// --watch then follows it (jobs_command.h, WatchJobToEnd). A flag of the other mode is an error.
#pragma once

#include "CLI/CLI.hpp"

namespace nibble::cli {

void RegisterQuantize(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
