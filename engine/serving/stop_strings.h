// Stop strings for streamed text: finds a request's stop strings in the text deltas a TextStreamer
// produces, even when one spans several tokens, and holds back text that might turn out to begin one.
//
// Push each delta; the result is the text safe to send now and whether a stop string was found. When a
// delta completes a stop string, the text ends just before the earliest stop string in the text so far
// (as in vLLM and TGI, the stop string itself is not sent) and generation should end; later pushes return
// nothing. When generation ends for another reason, Finish
// returns what was held back. With valid UTF-8 deltas and stop strings, every returned piece is valid
// UTF-8: a held-back suffix or a match always starts where a stop string's first character does.
//
// One filter per generation; not thread-safe. Copies the stop strings.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace nibble {

class StopStringFilter {
 public:
  struct Output {
    std::string text;      // text to send now
    bool stopped = false;  // a stop string was found: `text` ends just before it
  };

  // Empty stop strings are ignored.
  explicit StopStringFilter(std::vector<std::string> stop_strings);

  Output Push(absl::string_view delta);
  // The text held back because it began a stop string that never completed.
  std::string Finish();

 private:
  // Length of the longest suffix of held_ that is a proper prefix of a stop string.
  size_t LongestPartialMatch() const;

  std::vector<std::string> stop_strings_;
  std::string held_;  // text not sent yet: it might be the start of a stop string
  bool stopped_ = false;
};

}  // namespace nibble
