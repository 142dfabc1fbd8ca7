// Test helper: loads a SentencePiece model with the real sentencepiece library and reports what it sees,
// through plain std types only. sentencepiece_processor.h declares `namespace absl { using
// std::string_view; }`, which clashes with Debian's abseil (built with its own absl::string_view class), so
// sentencepiece and abseil headers cannot meet in one translation unit; this one includes no abseil.
#pragma once

#include <string>
#include <vector>

namespace nibble::testing {

struct SentencePiecePiece {
  std::string piece;
  float score = 0.0f;
  bool unknown = false;
  bool control = false;
  bool byte = false;
};

struct SentencePieceProbe {
  std::string error;  // empty when the model loaded
  std::vector<SentencePiecePiece> pieces;
  int unk_id = -1, bos_id = -1, eos_id = -1;
};

struct SentencePieceEncoding {
  std::string error;
  std::vector<int> ids;
  std::vector<std::string> pieces;
  std::string decoded;  // the ids decoded back to text
};

SentencePieceProbe ProbeSentencePiece(const std::string& model_path);
SentencePieceEncoding EncodeWithSentencePiece(const std::string& model_path, const std::string& text);
// The text of `ids` (an error message in brackets when the model does not load).
std::string DecodeWithSentencePiece(const std::string& model_path, const std::vector<int>& ids);

}  // namespace nibble::testing
