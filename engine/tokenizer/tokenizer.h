// Text <-> token ids for a model, behind one interface so that every tokenizer format (SentencePiece
// `tokenizer.model`, Hugging Face `tokenizer.json`) looks the same to the engine and server.
//
// A Tokenizer is immutable once loaded: every method is const and safe to call from many threads at once.
// It is owned through the std::unique_ptr the loaders return; string_views it hands out live as long as it.
// Nothing here throws or aborts on bad input: invalid text is an error status, unknown ids have a defined
// replacement.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nibble {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`, without BOS or EOS (the caller prepends bos_id() where the model wants it).
  // InvalidArgument "prompt is not valid UTF-8 at byte N" when `text` is not valid UTF-8.
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text) const;

  // The text of `tokens`, as the format's reference decoder produces it (for SentencePiece, DecodeIds:
  // control tokens such as BOS and EOS produce nothing, the leading space of the first piece is dropped,
  // byte pieces that do not form a character become U+FFFD). Ids outside [0, vocab_size()) decode as the
  // unknown token does (as U+FFFD where a tokenizer has no unknown token).
  virtual std::string Decode(std::span<const int32_t> tokens) const = 0;

  // The most bytes of input text one token can stand for, so that a text of more than n x max_token_bytes()
  // bytes cannot encode to n tokens or fewer: a cheap length check before encoding (PrepareRequest). It
  // counts text as sent: a normalizer that collapses runs of whitespace may encode such text shorter, and
  // callers refusing by this bound refuse it anyway (an API limit stated in bytes). Where a token can stand
  // for text of any length (an unknown token covering a run of unknown characters, in a model without byte
  // fallback), it is std::numeric_limits<int32_t>::max(): no length check is possible.
  virtual int32_t max_token_bytes() const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the tokenizer has none
  virtual int32_t eos_id() const = 0;  // -1 when the tokenizer has none
  // Every id that ends generation (eos_id() first when there is one; Llama 3's generation_config.json lists
  // several); empty when the tokenizer has none.
  virtual std::span<const int32_t> eos_ids() const = 0;

  // The vocabulary entry of `id` ("▁time", "<0x0A>", "<s>"); OutOfRange outside [0, vocab_size()).
  virtual absl::StatusOr<std::string> IdToPiece(int32_t id) const = 0;

  // What streaming needs (see TextStreamer): the raw bytes token `id` adds to the text when text precedes
  // it ("▁time" -> " time", "<0x0A>" -> "\n", control tokens -> nothing) ...
  virtual absl::string_view TokenBytes(int32_t id) const = 0;
  // ... the bytes it adds when nothing precedes it yet (SentencePiece drops the leading space there) ...
  virtual absl::string_view LeadingTokenBytes(int32_t id) const = 0;
  // ... and whether it is a byte token, whose bytes may hold part of a multi-byte character spread over
  // consecutive byte tokens (a SentencePiece "<0xE6>", a byte-level BPE piece holding "\xE6\x97"). Bytes of
  // every other token are valid UTF-8 on their own, and such a token ends a run of byte tokens (bytes left
  // incomplete before it decode as U+FFFD, one per byte).
  // Ids outside [0, vocab_size()) behave like the unknown token here too.
  virtual bool IsByteToken(int32_t id) const = 0;
  // Which token starts the text, so that later ones keep their leading space: with SentencePiece (false) the
  // first that adds bytes there ("▁" then "▁the" decodes as "the"); where the decoder strips one space from
  // the start of the whole text (Hugging Face's Strip and Metaspace: true) the first whose TokenBytes are
  // not empty ("▁" then "▁the" decodes as " the").
  virtual bool StripsLeadingSpaceOnce() const = 0;

 protected:
  // Encode for text already known to be valid UTF-8.
  virtual absl::StatusOr<std::vector<int32_t>> EncodeValidUtf8(absl::string_view text) const = 0;
};

}  // namespace nibble
