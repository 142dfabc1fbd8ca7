#include "tests/fuzz/exercise_tokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/utf8.h"
#include "engine/tokenizer/text_streamer.h"
#include "tests/fuzz/fuzz_input.h"

namespace nibble::fuzz {

void ExerciseTokenizer(const Tokenizer& tokenizer, absl::string_view text) {
  const int32_t vocab = tokenizer.vocab_size();
  Check(vocab > 0, "a loaded tokenizer has an empty vocabulary");
  Check(tokenizer.max_token_bytes() > 0, "max_token_bytes is not positive");
  for (const int32_t eos : tokenizer.eos_ids()) Check(eos >= 0 && eos < vocab, "an EOS id is outside the vocabulary");
  Check(tokenizer.bos_id() >= -1 && tokenizer.bos_id() < vocab, "the BOS id is outside the vocabulary");

  if (absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text); ids.ok()) {
    for (const int32_t id : *ids) {
      Check(id >= 0 && id < vocab, "Encode gave an id outside the vocabulary");
      Check(tokenizer.IdToPiece(id).ok(), "an encoded id has no piece");
    }
    tokenizer.Decode(*ids);
  }

  // Ids from the text's bytes: around 0 (negative ones included) and around the end of the vocabulary.
  std::vector<int32_t> ids;
  for (const char c : text.substr(0, 64)) {
    const int32_t byte = static_cast<uint8_t>(c);
    ids.push_back(byte % 2 == 0 ? byte / 2 - 16 : vocab - 64 + byte / 2);
  }
  // text_streamer.h's invariant: the streamed pieces are valid UTF-8 and add up to Decode.
  TextStreamer streamer(tokenizer, StreamStart::kStartsText);
  std::string streamed;
  for (const int32_t id : ids) {
    tokenizer.TokenBytes(id);
    tokenizer.LeadingTokenBytes(id);
    tokenizer.IsByteToken(id);
    Check(tokenizer.IdToPiece(id).ok() == (id >= 0 && id < vocab), "IdToPiece disagrees with vocab_size");
    const std::string piece = streamer.Push(id);
    Check(IsValidUtf8(piece), "a streamed piece is not valid UTF-8");
    streamed += piece;
  }
  streamed += streamer.Finish();
  Check(streamed == tokenizer.Decode(ids), "the streamed text differs from Decode");
}

}  // namespace nibble::fuzz
