// The subcommands that work on local files with no server: import-llama2c, synth, ppl, and local generation.
// Each Register* adds its subcommand to `app`; the callback runs the command and sets `exit_code`.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "service/cli/generate_options.h"

namespace nibble::cli {

// --backend (auto, cpu or cuda) bound to `backend`, for the subcommands that run a model here.
CLI::Option* AddBackendOption(CLI::App& command, std::string& backend);

// --store ROOT: lets a local --model be a store reference NAME or NAME:VERSION.
CLI::Option* AddStoreOption(CLI::App& command, std::string& store);

void RegisterImportLlama2c(CLI::App& app, int& exit_code);
void RegisterSynth(CLI::App& app, int& exit_code);
// `nibble generate` without --server (generate_command.h): runs `options` on the model directory
// options.model (a directory, or a reference into options.store) with `backend` (auto, cpu or cuda), streaming the
// prompt and then the text to stdout and the usage to stderr.
absl::Status RunLocalGenerate(const GenerateOptions& options, const std::string& backend);
void RegisterPerplexity(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
