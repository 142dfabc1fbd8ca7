// `nibble quantize`: runs a quantization job here (quantizer/job.h) and publishes the artifact into a model
// store, printing one progress line per block and the published path; with --evaluate-only it fake-quantizes
// (3 or 4 bits) and prints the quality figures without publishing.
#pragma once

#include "CLI/CLI.hpp"

namespace nibble::cli {

void RegisterQuantize(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
