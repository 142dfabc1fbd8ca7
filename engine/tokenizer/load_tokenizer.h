// Picking the tokenizer of a model directory by the files it holds. The one place that knows every tokenizer
// format (each format's own header declares its loader).
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble {

// Loads the tokenizer of a Hugging Face model directory: <model_dir>/tokenizer.model (SentencePiece) where
// present, else <model_dir>/tokenizer.json (hf_tokenizer.h). NotFound when the directory has neither; the error names
// the file when it cannot be read or parsed.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::filesystem::path& model_dir);

}  // namespace nibble
