// UTF-8 checks for prompts and for streaming text: validation, holding back a character that is still
// incomplete, and replacing bytes that can never form a character with U+FFFD.
//
// "Valid" is strict UTF-8 (Unicode table 3-7): no overlong forms, no surrogates (U+D800..U+DFFF), nothing
// above U+10FFFF, no truncated sequences. Pure functions on borrowed bytes: thread-safe, never allocate
// except for the string ReplaceInvalidUtf8 returns.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace nibble {

// U+FFFD REPLACEMENT CHARACTER, UTF-8 encoded.
inline constexpr absl::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Length of the longest prefix of `text` that is valid UTF-8: text.size() when all of it is, otherwise the
// offset of the first byte that does not start a complete, valid character.
size_t ValidUtf8PrefixLength(absl::string_view text);

bool IsValidUtf8(absl::string_view text);

// Length of the longest prefix of `text` that does not end inside a character that more bytes could still
// complete: text.size() minus the length of a trailing proper prefix of a valid encoding (0 to 3 bytes).
// Bytes that can never become valid (a stray continuation byte, an overlong or surrogate start) are not
// held back: ReplaceInvalidUtf8 turns them into U+FFFD whatever follows. Splitting at this length never
// changes the result: ReplaceInvalidUtf8(text) == ReplaceInvalidUtf8(head) + ReplaceInvalidUtf8(tail).
size_t CompleteUtf8Prefix(absl::string_view text);

// `text` with every byte that is not part of a complete, valid character replaced by U+FFFD, one per byte
// (as SentencePiece's decoder does: "\xE6\x97" becomes two replacement characters). Valid text comes back
// unchanged. For final flushes of streamed text.
std::string ReplaceInvalidUtf8(absl::string_view text);

}  // namespace nibble
