#include "service/cli/publish_command.h"

#include <iostream>
#include <memory>
#include <string>

#include "engine/io/model_store.h"
#include "quantizer/import.h"
#include "service/client/cli_status.h"

namespace nibble::cli {

void RegisterPublish(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "publish",
      "Check a Hugging Face model directory made elsewhere (an AutoAWQ GEMM checkpoint, or fp16/bf16/fp32 "
      "weights) as nibble-server would load it (config, tokenizer, every tensor's shape, finite values) and "
      "publish it into a model store as NAME's next version with its manifest; prints the version's directory");
  struct Options {
    std::string source;
    std::string store;
    std::string name;
  };
  auto options = std::make_shared<Options>();
  command->add_option("model", options->source, "The model directory (config.json, safetensors, tokenizer)")
      ->required();
  command->add_option("--store", options->store, "Model store root")->required();
  command->add_option("--name", options->name, "The model's name in the store")->required();
  command->callback([options, &exit_code] {
    const ModelStore store(options->store);
    const absl::StatusOr<uint64_t> version = ImportModelDirectory(store, options->name, options->source);
    if (!version.ok()) {
      exit_code = client::ReportError(version.status());
      return;
    }
    std::cout << "published " << options->source << " as " << options->name << " version " << *version << ": "
              << store.VersionDir(options->name, *version).string() << "\n";
  });
}

}  // namespace nibble::cli
