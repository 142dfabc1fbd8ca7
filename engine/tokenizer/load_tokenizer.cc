#include "engine/tokenizer/load_tokenizer.h"

#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"

namespace nibble {

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::filesystem::path& model_dir) {
  std::error_code error;
  const std::filesystem::path sentencepiece_model = model_dir / "tokenizer.model";
  if (std::filesystem::exists(sentencepiece_model, error)) return LoadSentencePieceTokenizer(sentencepiece_model);
  if (std::filesystem::exists(model_dir / "tokenizer.json", error)) {
    return absl::UnimplementedError(
        absl::StrCat((model_dir / "tokenizer.json").string(),
                     ": Hugging Face tokenizer.json is not supported yet; add the SentencePiece tokenizer.model"));
  }
  return absl::NotFoundError(absl::StrCat(model_dir.string(), ": no tokenizer.model in the model directory"));
}

}  // namespace nibble
