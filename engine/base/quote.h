// Quoting client input (names, strings from a request or a file) in error messages and log lines: at most a
// short prefix, escaped, so that no input can make a message long, multi-line or full of control bytes.
//
// Pure functions: thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace nibble {

// Bytes of the input a quote shows, before escaping.
inline constexpr size_t kQuotedPrefixBytes = 48;

// `text` in double quotes with C escapes (absl::CHexEscape: \n, \", \xNN for bytes outside printable ASCII);
// input longer than kQuotedPrefixBytes is cut there and marked: "abc..."... (1048576 bytes). The result is at
// most 4 * kQuotedPrefixBytes + 40 bytes long.
std::string QuotedPrefix(absl::string_view text);

}  // namespace nibble
