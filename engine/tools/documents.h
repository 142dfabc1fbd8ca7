// Splitting a text corpus into documents: by a separator string (TinyStories' "<|endoftext|>"), or one
// document per line of a JSONL file's "text" field. Used by perplexity and by calibration, so both read
// text the same way. Pure functions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble {

// Splits `text` on every occurrence of `separator` (the whole text is one document when it is empty).
// Each document is trimmed of surrounding whitespace; empty documents are dropped.
std::vector<std::string> SplitDocuments(absl::string_view text, absl::string_view separator);

// One document per non-empty line of JSONL, from its string field `field`; a line that is not a JSON
// object with that string field is InvalidArgument naming the line number.
absl::StatusOr<std::vector<std::string>> JsonlDocuments(absl::string_view text, absl::string_view field = "text");

// Each document as [BOS] + its token ids (the perplexity and calibration protocol), without the BOS when the
// tokenizer adds none (bos_id() -1, as a tokenizer.json whose post-processor adds no BOS); invalid UTF-8 is
// InvalidArgument naming the document's index.
absl::StatusOr<std::vector<std::vector<int32_t>>> TokenizeDocuments(const Tokenizer& tokenizer,
                                                                    const std::vector<std::string>& documents);

}  // namespace nibble
