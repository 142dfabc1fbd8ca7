// What the tokenizer fuzz targets do with a tokenizer that loaded: encode `text`, decode the result, and decode
// and stream ids taken from the text's bytes (inside and outside the vocabulary), checking the promises of
// engine/tokenizer/tokenizer.h that hold for every input. Aborts (a crash to libFuzzer) on a broken promise.
#pragma once

#include "absl/strings/string_view.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble::fuzz {

void ExerciseTokenizer(const Tokenizer& tokenizer, absl::string_view text);

}  // namespace nibble::fuzz
