#include "service/cli/generate_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/file_io.h"
#include "service/cli/generate_options.h"
#include "service/cli/offline_commands.h"
#include "service/cli/server_commands.h"
#include "service/client/cli_status.h"
#include "service/client/connection_flags.h"

namespace nibble::cli {
namespace {

struct Flags {
  GenerateOptions generate;
  std::string backend = "auto";
  client::ConnectionOptions connection;
  CLI::Option* backend_option = nullptr;
  CLI::Option* store_option = nullptr;
  std::string prompt_file;                       // read into generate.prompt before running
  std::vector<CLI::Option*> connection_options;  // [0] is --server
};

absl::Status Run(Flags& flags) {
  if (!flags.prompt_file.empty()) {
    absl::StatusOr<std::string> prompt = ReadTextFile(flags.prompt_file);
    if (!prompt.ok()) return prompt.status();
    flags.generate.prompt = *std::move(prompt);
  }
  if (flags.connection.server.empty()) {
    if (absl::Status status = client::RejectGiven(flags.connection_options, "applies only with --server ADDR");
        !status.ok()) {
      return status;
    }
    return RunLocalGenerate(flags.generate, flags.backend);
  }
  if (absl::Status status = client::RejectGiven({flags.backend_option, flags.store_option},
                                                "applies only to local generation (without --server): the server "
                                                "runs on its own backend and store");
      !status.ok()) {
    return status;
  }
  return RunServerGenerate(flags.generate, flags.connection);
}

}  // namespace

void RegisterGenerate(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "generate",
      "Generate text from a prompt, streaming it to stdout as it is produced: locally with --model DIR, or "
      "from a nibble server with --server ADDR --model NAME[:VERSION]. Timing goes to stderr");
  auto flags = std::make_shared<Flags>();
  GenerateOptions& options = flags->generate;
  command
      ->add_option("--model", options.model,
                   "Locally: a model directory (Hugging Face layout). With --server: the model's name on the "
                   "server, NAME (the version it serves) or NAME:VERSION")
      ->required();
  auto* prompt =
      command->add_option("--prompt", options.prompt,
                          "Prompt text; locally, empty starts from BOS (generation then stops at EOS or a new BOS)");
  command->add_option("--prompt-file", flags->prompt_file, "Read the prompt text from this file instead")
      ->check(CLI::ExistingFile)
      ->excludes(prompt);
  command->add_option("--max-tokens", options.max_tokens, "Most tokens to generate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--temperature", options.temperature, "Sampling temperature; 0 is greedy")->capture_default_str();
  command->add_option("--top-k", options.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
  command->add_option("--top-p", options.top_p, "Nucleus sampling threshold in (0, 1]")->capture_default_str();
  command->add_option("--min-p", options.min_p, "Drop tokens below min-p times the best one's probability")
      ->capture_default_str();
  command->add_option_function<uint64_t>(
      "--seed", [&options](const uint64_t& seed) { options.seed = seed; },
      "Random seed for sampling (default: 0 locally, a random one on a server)");
  command->add_option("--stop", options.stop, "Stop before this string (repeatable)");
  command->add_option("--stop-token-id", options.stop_token_ids, "Stop at this token id (repeatable)");
  flags->backend_option = AddBackendOption(*command, flags->backend);
  flags->store_option = AddStoreOption(*command, options.store);
  flags->connection_options = client::AddConnectionFlags(*command, flags->connection, /*server_required=*/false);
  command->callback([flags, &exit_code] {
    if (absl::Status status = Run(*flags); !status.ok()) exit_code = client::ReportError(status);
  });
}

}  // namespace nibble::cli
