#include "service/cli/tokenize_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "nlohmann/json.hpp"
#include "service/client/cli_status.h"

namespace nibble::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string tokenizer;
  bool decode = false;
  bool add_bos = false;
};

// --tokenizer FILE: tokenizer.model (SentencePiece) by its .model extension, otherwise a tokenizer.json.
absl::StatusOr<std::unique_ptr<Tokenizer>> OpenTokenizer(const TokenizeOptions& options) {
  if (!options.model.empty()) return LoadTokenizer(options.model);
  const std::filesystem::path file = options.tokenizer;
  if (file.extension() == ".model") return LoadSentencePieceTokenizer(file);
  return LoadHfTokenizer(file);
}

// One line of JSON ids -> the ids; InvalidArgument naming the line otherwise.
absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& line, int line_number) {
  const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  std::vector<int32_t> ids;
  bool valid = parsed.is_array();
  if (valid) {
    for (const nlohmann::json& id : parsed) {
      if (!id.is_number_integer()) {
        valid = false;
        break;
      }
      ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat("stdin line ", line_number, ": not a JSON array of token ids"));
  }
  return ids;
}

absl::Status Run(const TokenizeOptions& options) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = OpenTokenizer(options);
  if (!tokenizer.ok()) return tokenizer.status();
  std::string line;
  int line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (options.decode) {
      absl::StatusOr<std::vector<int32_t>> ids = ParseIds(line, line_number);
      if (!ids.ok()) return ids.status();
      std::cout << (*tokenizer)->Decode(*ids) << '\n';
      continue;
    }
    absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode(line);
    if (!ids.ok()) {
      return absl::Status(ids.status().code(), absl::StrCat("stdin line ", line_number, ": ", ids.status().message()));
    }
    if (options.add_bos && (*tokenizer)->bos_id() >= 0) ids->insert(ids->begin(), (*tokenizer)->bos_id());
    std::cout << nlohmann::json(*ids).dump() << '\n';
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterTokenize(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "tokenize",
      "Token ids of each line of stdin, printed as a JSON array per line (no BOS unless --add-bos); with "
      "--decode, each stdin line is a JSON array of ids and its text is printed");
  auto options = std::make_shared<TokenizeOptions>();
  auto* model =
      command->add_option("--model", options->model, "Model directory (its tokenizer.model, else its tokenizer.json)");
  auto* tokenizer = command->add_option("--tokenizer", options->tokenizer,
                                        "A tokenizer file: *.model (SentencePiece) or a Hugging Face tokenizer.json "
                                        "(with the tokenizer_config.json beside it)");
  model->excludes(tokenizer);
  command->add_flag("--decode", options->decode, "Read JSON arrays of ids, print their text");
  command->add_flag("--add-bos", options->add_bos, "Prepend BOS where the tokenizer wants it");
  command->callback([options, &exit_code] {
    if (options->model.empty() && options->tokenizer.empty()) {
      exit_code = client::ReportError(absl::InvalidArgumentError("tokenize needs --model DIR or --tokenizer FILE"));
      return;
    }
    if (absl::Status status = Run(*options); !status.ok()) exit_code = client::ReportError(status);
  });
}

}  // namespace nibble::cli
