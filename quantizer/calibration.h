// Calibration data (../shared/docs/awq.md §2): documents from a text file split on a separator, or from the
// `text` field of a JSONL file; each tokenized as [BOS] + tokens; empty documents and documents longer than
// `max_document_tokens` skipped; the first `n_samples` kept documents concatenated and cut into blocks of
// `seqlen` tokens, the remainder dropped. Pure functions of their inputs; any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble {

struct CalibrationOptions {
  std::string separator;              // split the text on this string; "" = one document (ignored for JSONL)
  bool jsonl = false;                 // one document per line's "text" field (default: by the file's .jsonl suffix)
  int32_t n_samples = 128;            // kept documents to use
  int32_t seqlen = 512;               // tokens per calibration block
  int32_t max_document_tokens = 512;  // longer documents (BOS included) are skipped
};

struct CalibrationSet {
  std::vector<std::vector<int32_t>> blocks;  // [n_blocks][seqlen]
  int64_t documents = 0;                     // documents in the source
  int64_t documents_used = 0;                // kept and used (at most n_samples)
  int64_t tokens_used = 0;                   // tokens of the used documents, before cutting into blocks
  std::string source_sha256;                 // of the calibration file
};

// Reads and tokenizes `path`. InvalidArgument naming the file when it yields no block (too little text, or
// every document too long), or when the options are out of range.
absl::StatusOr<CalibrationSet> LoadCalibration(const std::filesystem::path& path, const Tokenizer& tokenizer,
                                               CalibrationOptions options);

}  // namespace nibble
