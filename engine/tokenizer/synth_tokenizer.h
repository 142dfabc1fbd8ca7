// A synthetic SentencePiece BPE tokenizer of any vocabulary size, for synthetic models (`nibble synth`).
//
// Pieces, in id order: <unk> (0, UNKNOWN), <s> (1, CONTROL), </s> (2, CONTROL), the 256 byte-fallback pieces
// <0x00>..<0xFF> (BYTE), then NORMAL pieces with decreasing scores that BPE merges can reach: "▁" and the 94
// printable ASCII characters, then those characters extended by one more character at a time ("▁a", "ab",
// ..., "▁ab", ...), each piece the concatenation of an earlier piece and a character. Any text round-trips:
// characters without a piece fall back to their UTF-8 bytes. Normalizer: identity, dummy prefix, whitespace
// escaped as "▁", extra whitespace kept (as Llama's tokenizer). Written by sentencepiece_model_writer.h. Pure; any
// thread.
#pragma once

#include <cstdint>
#include <filesystem>

#include "absl/status/status.h"

namespace nibble {

// Smallest vocabulary: the three special pieces and the 256 byte pieces.
inline constexpr int64_t kMinSynthVocabSize = 3 + 256;

// Writes the tokenizer with exactly `vocab_size` pieces (at least kMinSynthVocabSize, at most 2^24).
absl::Status WriteSynthTokenizer(const std::filesystem::path& path, int64_t vocab_size);

}  // namespace nibble
