// The Tokenizer for Hugging Face `tokenizer.json` files (Llama 3, Qwen 2/3, Mistral, Gemma, GPT-2 style):
// a BPE model (bpe_model.h) behind added tokens (added_tokens.h), a normalizer (hf_normalizer.h) and a
// pre-tokenizer (hf_pre_tokenizer.h); the decoder (hf_decoder.h) gives each token's bytes.
//
// Encode is the library's encode without special tokens (add_special_tokens=False: no post-processor).
// Decode is its decode with skip_special_tokens=True: special added tokens produce nothing. Two deviations,
// both where the tests' reference (transformers.js) deviates too: bytes that form no character become U+FFFD
// one per byte (tokenizers replaces a whole invalid run), so that streamed text (TextStreamer) and Decode
// always agree; and a Metaspace decoder drops only the first token's leading space (tokenizers drops every
// "▁" of the first token, so "▁▁" + "▁hi" decodes as " hi" there, as "  hi" here: what was encoded).
//
// BOS: the tokenizer_config.json beside the file names `bos_token`; bos_id() is its id when the model
// wants it prepended (`add_bos_token`, or where that is absent, a post-processor template that starts with
// it), -1 otherwise. EOS: every id of generation_config.json's `eos_token_id` (a number or a list), then
// tokenizer_config.json's `eos_token`. Both files are optional.
//
// Lifetime and threading as for every Tokenizer (tokenizer.h).
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble {

// Loads `tokenizer_json` and the tokenizer_config.json and generation_config.json beside it. NotFound when
// the file does not exist; InvalidArgument naming the file (and the component's type) when it is malformed
// or uses a component nibble does not implement.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::filesystem::path& tokenizer_json);

}  // namespace nibble
