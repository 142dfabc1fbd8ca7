// `nibble publish DIR --store ROOT --name NAME`: a Hugging Face model directory made elsewhere (an AutoAWQ
// checkpoint from a hub, an fp16 model) checked as nibble-server would load it and published into the store
// as NAME's next version, with its manifest (quantizer/import.h). Prints the version's directory.
#pragma once

#include "CLI/CLI.hpp"

namespace nibble::cli {

void RegisterPublish(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
