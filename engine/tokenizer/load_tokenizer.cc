#include "engine/tokenizer/load_tokenizer.h"

#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"

namespace nibble {

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::filesystem::path& model_dir) {
  std::error_code error;
  const std::filesystem::path sentencepiece_model = model_dir / "tokenizer.model";
  if (std::filesystem::exists(sentencepiece_model, error)) return LoadSentencePieceTokenizer(sentencepiece_model);
  const std::filesystem::path hugging_face = model_dir / "tokenizer.json";
  if (std::filesystem::exists(hugging_face, error)) return LoadHfTokenizer(hugging_face);
  return absl::NotFoundError(
      absl::StrCat(model_dir.string(), ": no tokenizer.model or tokenizer.json in the model directory"));
}

}  // namespace nibble
