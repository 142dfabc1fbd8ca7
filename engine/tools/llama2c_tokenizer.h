// Converts llama2.c's own tokenizer.bin (written by its tokenizer.py from a SentencePiece BPE model, read by
// run.c) back into a SentencePiece BPE model, which the engine's SentencePiece tokenizer loads.
//
// The file: an int32 max_token_length, then per token: a float score, an int32 length and that many bytes, in id
// order, native (little-endian). tokenizer.py wrote each SentencePiece piece with "▁" turned into a space and BOS
// and EOS as "\n<s>\n" and "\n</s>\n"; the conversion undoes that. Types, which the file does not store: "<unk>" is
// the unknown piece, "<s>" and "</s>" (with or without the newlines) are control pieces, "<0x00>".."<0xFF>" are
// byte-fallback pieces (run.c's byte fallback), everything else is a normal piece with its score.
//
// The normalizer (not stored either) is SentencePiece's identity with a dummy prefix (run.c's leading space) and
// "▁" for spaces. Whether runs of spaces are kept is read from the vocabulary: a piece holding two spaces ("▁▁"; in
// Llama 2's tokenizer.bin) can only come from training with remove_extra_whitespaces off, so runs are kept;
// otherwise leading, trailing and repeated spaces are removed, SentencePiece's default, with which llama2.c's
// tinystories.py trained its custom vocabularies (tok512.model says so).
//
// Pure functions of their inputs; any thread.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/sentencepiece_model_writer.h"

namespace nibble {

// The longest max_token_length a tokenizer.bin may declare.
inline constexpr int32_t kLlama2cLongestToken = 1 << 16;

// Whether `contents` starts as a tokenizer.bin does: an int32 max_token_length from 1 to kLlama2cLongestToken.
bool StartsLikeLlama2cTokenizer(absl::string_view contents);

// The SentencePiece model of the tokenizer.bin `contents` (read from `name`, for messages), which must hold exactly
// `vocab_size` tokens (the checkpoint's). InvalidArgument naming `name` and, where one is at fault, the token's
// index: the file cut short (inside a record or before `vocab_size` tokens), bytes after the last token, a length
// outside 1..max_token_length, a score that is not finite, a NUL byte in a token, a token that repeats an earlier
// one, no "<unk>", or some but not all of the 256 byte pieces.
absl::StatusOr<SentencePieceBpeModel> ConvertLlama2cTokenizer(absl::string_view contents, absl::string_view name,
                                                              int64_t vocab_size);

}  // namespace nibble
