#include "engine/tools/llama2c_tokenizer.h"

#include <cmath>
#include <cstring>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

constexpr size_t kSentencePiecePieceLimit = 8000;  // SentencePiece refuses pieces of this many bytes or more
constexpr char kWordBoundary[] = "\xE2\x96\x81";   // U+2581 "▁", SentencePiece's escaped space

template <typename T>
T ReadScalar(absl::string_view contents, size_t offset) {
  T value;
  std::memcpy(&value, contents.data() + offset, sizeof(T));  // llama2.c writes native (little-endian) values
  return value;
}

bool IsBytePiece(absl::string_view text) {
  const auto upper_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return text.size() == 6 && text.substr(0, 3) == "<0x" && upper_hex(text[3]) && upper_hex(text[4]) && text[5] == '>';
}

// The SentencePiece piece that tokenizer.py wrote as `text`.
SentencePieceEntry ToEntry(absl::string_view text, float score) {
  if (text == "\n<s>\n" || text == "<s>") return {"<s>", score, SentencePieceType::kControl};
  if (text == "\n</s>\n" || text == "</s>") return {"</s>", score, SentencePieceType::kControl};
  if (text == "<unk>") return {"<unk>", score, SentencePieceType::kUnknown};
  if (IsBytePiece(text)) return {std::string(text), score, SentencePieceType::kByte};
  return {absl::StrReplaceAll(text, {{" ", kWordBoundary}}), score, SentencePieceType::kNormal};
}

// The tokens of the file, in order, checked record by record.
absl::StatusOr<SentencePieceBpeModel> ReadRecords(absl::string_view contents, absl::string_view name,
                                                  int64_t vocab_size) {
  if (contents.size() < sizeof(int32_t)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", contents.size(), " bytes is too short for tokenizer.bin's max_token_length"));
  }
  const int32_t max_token_length = ReadScalar<int32_t>(contents, 0);
  if (max_token_length <= 0 || max_token_length > kLlama2cLongestToken) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": tokenizer.bin's max_token_length is ", max_token_length,
                                                   "; it must be 1 to ", kLlama2cLongestToken));
  }
  SentencePieceBpeModel model;
  size_t offset = sizeof(int32_t);
  for (int64_t index = 0; index < vocab_size; ++index) {
    const auto token = [&, record = offset] {
      return absl::StrCat(name, ": token ", index, " (at byte ", record, ")");
    };
    const size_t left = contents.size() - offset;
    if (left == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": the file ends after ", index, " tokens, but the model's vocab_size is ", vocab_size));
    }
    if (left < sizeof(float) + sizeof(int32_t)) {
      return absl::InvalidArgumentError(
          absl::StrCat(token(), " is cut off: ", left, " bytes are left of its 8-byte score and length"));
    }
    const float score = ReadScalar<float>(contents, offset);
    const int32_t length = ReadScalar<int32_t>(contents, offset + sizeof(float));
    offset += sizeof(float) + sizeof(int32_t);
    if (!std::isfinite(score)) {
      return absl::InvalidArgumentError(absl::StrCat(token(), " has score ", score, "; scores must be finite"));
    }
    if (length <= 0 || length > max_token_length) {
      return absl::InvalidArgumentError(
          absl::StrCat(token(), " has length ", length, "; it must be 1 to max_token_length (", max_token_length, ")"));
    }
    if (contents.size() - offset < static_cast<size_t>(length)) {
      return absl::InvalidArgumentError(absl::StrCat(token(), " is cut off: it has length ", length, ", but only ",
                                                     contents.size() - offset, " bytes are left"));
    }
    const absl::string_view text = contents.substr(offset, length);
    offset += length;
    if (text.find('\0') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(token(), " holds a NUL byte, which SentencePiece refuses"));
    }
    SentencePieceEntry entry = ToEntry(text, score);
    if (entry.piece.size() >= kSentencePiecePieceLimit) {
      return absl::InvalidArgumentError(absl::StrCat(token(), " is ", entry.piece.size(),
                                                     " bytes as a SentencePiece piece; SentencePiece refuses ",
                                                     kSentencePiecePieceLimit, " or more"));
    }
    model.pieces.push_back(std::move(entry));
  }
  if (offset != contents.size()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", contents.size() - offset, " bytes follow token ",
                                                   vocab_size - 1, ", the last of the model's vocab_size ",
                                                   vocab_size));
  }
  return model;
}

// What SentencePiece needs of a vocabulary: unique pieces, one "<unk>", all byte pieces or none.
absl::Status CheckVocabulary(const SentencePieceBpeModel& model, absl::string_view name) {
  absl::flat_hash_map<absl::string_view, size_t> first_index;
  int byte_pieces = 0;
  bool has_unknown = false;
  for (size_t index = 0; index < model.pieces.size(); ++index) {
    const SentencePieceEntry& entry = model.pieces[index];
    const auto [at, inserted] = first_index.emplace(entry.piece, index);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": token ", index, " (", QuotedPrefix(entry.piece), ") repeats token ", at->second));
    }
    byte_pieces += entry.type == SentencePieceType::kByte;
    has_unknown = has_unknown || entry.type == SentencePieceType::kUnknown;
  }
  if (!has_unknown) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no token is <unk>; SentencePiece needs the unknown piece"));
  }
  if (byte_pieces != 0 && byte_pieces != 256) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", byte_pieces,
                                                   " of the 256 byte pieces <0x00>..<0xFF> are present; byte "
                                                   "fallback needs all of them (or none)"));
  }
  return absl::OkStatus();
}

}  // namespace

bool StartsLikeLlama2cTokenizer(absl::string_view contents) {
  if (contents.size() < sizeof(int32_t)) return false;
  const int32_t max_token_length = ReadScalar<int32_t>(contents, 0);
  return max_token_length > 0 && max_token_length <= kLlama2cLongestToken;
}

absl::StatusOr<SentencePieceBpeModel> ConvertLlama2cTokenizer(absl::string_view contents, absl::string_view name,
                                                              int64_t vocab_size) {
  NIBBLE_ASSIGN_OR_RETURN(SentencePieceBpeModel model, ReadRecords(contents, name, vocab_size));
  NIBBLE_RETURN_IF_ERROR(CheckVocabulary(model, name));
  const std::string space_run = absl::StrCat(kWordBoundary, kWordBoundary);
  model.remove_extra_whitespaces = true;
  for (const SentencePieceEntry& entry : model.pieces) {
    if (entry.piece.find(space_run) != std::string::npos) model.remove_extra_whitespaces = false;
  }
  return model;
}

}  // namespace nibble
