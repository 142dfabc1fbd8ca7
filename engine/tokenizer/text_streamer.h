// Turns generated tokens into text deltas for streaming, one token at a time.
//
// Each Push returns the text that is safe to show now: it never ends inside a UTF-8 character. Byte
// tokens may carry one byte of a multi-byte character at a time ("日" as <0xE6><0x97><0xA5>), so their
// bytes are held back until the character completes; bytes that can no longer complete a character
// become U+FFFD, one per byte, exactly as Tokenizer::Decode shows them. Finish flushes what is held.
// Invariant (the tests check it): for any token sequence, the Push outputs plus Finish's concatenate to
// Decode(tokens) when the stream starts the text, and every returned piece is valid UTF-8.
//
// One streamer per generation. Not thread-safe; keeps a reference to the tokenizer, which must outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "engine/tokenizer/tokenizer.h"

namespace nibble {

enum class StreamStart {
  // Nothing precedes the generated tokens (an empty prompt, or ids that decode to no text): the first
  // piece's leading space is dropped, as Decode drops it (Tokenizer::LeadingTokenBytes).
  kStartsText,
  // The tokens continue a prompt's text, which ends on a character boundary: the first piece keeps its
  // leading space ("▁time" after "Once upon a" gives " time").
  kContinuesText,
};

class TextStreamer {
 public:
  TextStreamer(const Tokenizer& tokenizer, StreamStart start);

  // Text that `token` completes; often empty while a character is incomplete, and for control tokens.
  std::string Push(int32_t token);
  // Everything still held back, incomplete bytes as U+FFFD. Pushing more afterwards continues the text.
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  bool text_started_;    // whether a token has started the text (Tokenizer::StripsLeadingSpaceOnce)
  std::string pending_;  // bytes of byte tokens held back: an incomplete character, at most 3 bytes
};

}  // namespace nibble
