// `nibble tokenize`: text <-> token ids with a model's tokenizer (any format nibble reads), one line at a
// time on stdin and stdout, so users and tests can compare nibble's tokenization with other tools.
#pragma once

#include "CLI/CLI.hpp"

namespace nibble::cli {

void RegisterTokenize(CLI::App& app, int& exit_code);

}  // namespace nibble::cli
