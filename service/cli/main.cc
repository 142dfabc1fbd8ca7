// nibble: quantize Llama-family models with AWQ, serve them, and talk to the services. `nibble --help`
// lists the subcommands; `nibble <subcommand> --help` explains each.
#include "CLI/CLI.hpp"
#include "service/cli/generate_command.h"
#include "service/cli/jobs_command.h"
#include "service/cli/offline_commands.h"
#include "service/cli/publish_command.h"
#include "service/cli/quantize_command.h"
#include "service/cli/server_commands.h"
#include "service/cli/tokenize_command.h"

int main(int argc, char** argv) {
  CLI::App app{"nibble: AWQ 4-bit quantization and W4A16 serving of Llama-family models"};
  app.require_subcommand(1);
  int exit_code = 0;
  nibble::cli::RegisterImportLlama2c(app, exit_code);
  nibble::cli::RegisterSynth(app, exit_code);
  nibble::cli::RegisterGenerate(app, exit_code);
  nibble::cli::RegisterJobs(app, exit_code);
  nibble::cli::RegisterModels(app, exit_code);
  nibble::cli::RegisterHealth(app, exit_code);
  nibble::cli::RegisterPerplexity(app, exit_code);
  nibble::cli::RegisterPublish(app, exit_code);
  nibble::cli::RegisterQuantize(app, exit_code);
  nibble::cli::RegisterTokenize(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
