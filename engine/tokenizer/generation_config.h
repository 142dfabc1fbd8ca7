// The end-of-generation ids a model directory's optional generation_config.json lists (`eos_token_id`: one
// id or a list; Llama 3 lists several, llama2.c imports list EOS and BOS). Shared by every tokenizer format
// (hf_tokenizer.h, sentencepiece_tokenizer.h) so that each reads the file alike. A pure function of the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"

namespace nibble {

// The ids of `dir`/generation_config.json's `eos_token_id`, in its order; empty when the file or the field is
// absent. InvalidArgument naming the file when it is not JSON or an id is not an integer in [0, vocab_size).
absl::StatusOr<std::vector<int32_t>> ReadGenerationEosIds(const std::filesystem::path& dir, int64_t vocab_size);

}  // namespace nibble
