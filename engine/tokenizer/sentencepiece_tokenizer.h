// The Tokenizer for SentencePiece models (`tokenizer.model`: Llama 1/2, Mistral, TinyLlama), over
// libsentencepiece through SentencePieceBridge.
//
// Encode and Decode are the library's own EncodeAsIds and DecodeIds. For streaming, each token's bytes are
// read from its piece: "▁" becomes a space, "<0xNN>" byte-fallback pieces become that byte, control pieces
// (<s>, </s>) become nothing and the unknown piece becomes whatever DecodeIds shows for it (upstream:
// " ⁇ "). At the start of the text the leading "▁" of a piece is dropped when the library's decoder drops
// it (asked of the library at load time). Ids outside the vocabulary decode, and stream, as the unknown
// piece.
//
// EOS: eos_ids() is the model's own EOS, then every id of the generation_config.json beside the model file
// (generation_config.h; optional).
//
// Lifetime and threading as for every Tokenizer (tokenizer.h).
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble {

// Loads a serialized SentencePiece model and the generation_config.json beside it. NotFound when the file does
// not exist; InvalidArgument naming the file when it is not a usable SentencePiece model (or naming
// generation_config.json when that is malformed).
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::filesystem::path& model_file);

}  // namespace nibble
