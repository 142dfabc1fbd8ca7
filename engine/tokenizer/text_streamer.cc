#include "engine/tokenizer/text_streamer.h"

#include "engine/base/utf8.h"

namespace nibble {

TextStreamer::TextStreamer(const Tokenizer& tokenizer, StreamStart start)
    : tokenizer_(tokenizer), text_started_(start == StreamStart::kContinuesText) {}

std::string TextStreamer::Push(int32_t token) {
  if (tokenizer_.IsByteToken(token)) {
    // A byte always shows up in the text (as part of a character or as U+FFFD), so the text has started.
    const absl::string_view byte = tokenizer_.TokenBytes(token);
    pending_.append(byte.data(), byte.size());
    text_started_ = true;
    const size_t complete = CompleteUtf8Prefix(pending_);
    std::string text = ReplaceInvalidUtf8(absl::string_view(pending_).substr(0, complete));
    pending_.erase(0, complete);
    return text;
  }
  // Any other token ends the run of byte tokens: what is held back can no longer complete.
  std::string text = Finish();
  const absl::string_view bytes = text_started_ ? tokenizer_.TokenBytes(token) : tokenizer_.LeadingTokenBytes(token);
  text.append(bytes.data(), bytes.size());
  const bool starts_text = tokenizer_.StripsLeadingSpaceOnce() ? !tokenizer_.TokenBytes(token).empty() : !bytes.empty();
  if (starts_text) text_started_ = true;
  return text;
}

std::string TextStreamer::Finish() {
  std::string text = ReplaceInvalidUtf8(pending_);
  pending_.clear();
  return text;
}

}  // namespace nibble
