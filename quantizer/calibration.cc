#include "quantizer/calibration.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_store.h"
#include "engine/tools/documents.h"

namespace nibble {

absl::StatusOr<CalibrationSet> LoadCalibration(const std::filesystem::path& path, const Tokenizer& tokenizer,
                                               CalibrationOptions options) {
  if (options.n_samples < 1 || options.seqlen < 2 || options.max_document_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("calibration: n_samples (", options.n_samples,
                                                   ") must be >= 1, seqlen (", options.seqlen, ") >= 2"));
  }
  NIBBLE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  std::vector<std::string> documents;
  if (options.jsonl || absl::EndsWith(path.string(), ".jsonl")) {
    absl::StatusOr<std::vector<std::string>> lines = JsonlDocuments(text);
    if (!lines.ok()) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", lines.status().message()));
    documents = std::move(*lines);
  } else {
    documents = SplitDocuments(text, options.separator);
  }
  absl::StatusOr<std::vector<std::vector<int32_t>>> tokenized = TokenizeDocuments(tokenizer, documents);
  if (!tokenized.ok())
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", tokenized.status().message()));

  CalibrationSet set;
  set.documents = static_cast<int64_t>(tokenized->size());
  std::vector<int32_t> stream;
  for (const std::vector<int32_t>& document : *tokenized) {
    if (set.documents_used == options.n_samples) break;
    if (document.empty() || document.size() > static_cast<size_t>(options.max_document_tokens)) continue;
    stream.insert(stream.end(), document.begin(), document.end());
    ++set.documents_used;
  }
  set.tokens_used = static_cast<int64_t>(stream.size());
  for (size_t begin = 0; begin + static_cast<size_t>(options.seqlen) <= stream.size(); begin += options.seqlen) {
    set.blocks.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(begin),
                            stream.begin() + static_cast<std::ptrdiff_t>(begin + options.seqlen));
  }
  if (set.blocks.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": calibration text yields no block of ",
                                                   options.seqlen, " tokens (", set.documents, " documents, ",
                                                   set.documents_used, " of at most ", options.max_document_tokens,
                                                   " tokens kept, ", set.tokens_used, " tokens)"));
  }
  NIBBLE_ASSIGN_OR_RETURN(set.source_sha256, Sha256OfFile(path));
  return set;
}

}  // namespace nibble
