// GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable Unicode character
// (printable ASCII and Latin-1 stand for themselves, the rest map to U+0100 upwards: ' ' is "Ġ", '\n' "Ċ"),
// so that byte-level BPE vocabularies are text. Pure functions over a constant table: thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace nibble {

// The byte-level characters (UTF-8) of the bytes of `bytes`, one character per byte.
std::string BytesToByteLevel(absl::string_view bytes);

// The bytes the byte-level characters of `text` stand for; nullopt when `text` holds a character outside
// the alphabet (such a string cannot be a byte-level piece). `text` must be valid UTF-8.
std::optional<std::string> ByteLevelToBytes(absl::string_view text);

}  // namespace nibble
