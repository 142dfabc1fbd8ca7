// `nibble generate`: one subcommand, two modes, chosen by --server alone.
//   nibble generate --model DIR ...                      runs the model directory here (--backend applies)
//   nibble generate --server ADDR --model NAME[:N] ...   streams from a nibble server (connection flags apply)
// --server may also come from NIBBLE_SERVER. A flag of the other mode is an error, not silently ignored,
// and a --model that is not a model name while --server is set is an error that says so.
#pragma once

#include "CLI/CLI.hpp"

namespace nibble::cli {

void RegisterGenerate(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
