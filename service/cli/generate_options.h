// What `nibble generate` asks for, in both of its modes: locally on a model directory (offline_commands.h)
// or on a server (server_commands.h). generate_command.h reads it from the command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nibble::cli {

struct GenerateOptions {
  // Locally: a Hugging Face model directory. With --server: NAME or NAME:VERSION on that server.
  std::string model;
  std::string store;                    // locally: a model store root; --model may then be NAME[:N]
  std::string prompt;                   // locally, empty starts from BOS; a server needs a prompt
  int32_t max_tokens = 256;             // most tokens to generate
  float temperature = 0.0f;             // 0: greedy
  int32_t top_k = 0;                    // 0: off
  float top_p = 1.0f;                   // (0, 1]
  float min_p = 0.0f;                   // [0, 1]
  std::optional<uint64_t> seed;         // unset: 0 locally, a random one on a server
  std::vector<std::string> stop;        // stop strings (the output ends before the first one)
  std::vector<int32_t> stop_token_ids;  // stop tokens besides EOS (and, locally, BOS)
};

}  // namespace nibble::cli
