// The subcommands that work on local files with no server: import-llama2c, synth, generate --model, ppl.
// Each Register* adds its subcommand to `app`; the callback runs the command and sets `exit_code`.
#pragma once

#include "CLI/CLI.hpp"

namespace nibble::cli {

void RegisterImportLlama2c(CLI::App& app, int& exit_code);
void RegisterSynth(CLI::App& app, int& exit_code);
// `generate`: offline with --model (the server side, --server, is added by the client commands).
CLI::App* RegisterGenerate(CLI::App& app, int& exit_code);
void RegisterPerplexity(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
