// Test-only: libsentencepiece called directly, the independent reference the tokenizer, synth and llama2.c
// tests compare nibble against. Plain std types only, and no abseil header: sentencepiece_processor.h
// declares an absl::string_view of its own, which clashes with Debian's abseil (see
// engine/tokenizer/sentencepiece_bridge.h).
//
// Owns its processor; const methods are safe to call from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace nibble::testing {

struct SentencePiecePiece {
  std::string piece;
  float score = 0.0f;
  bool unknown = false;
  bool control = false;
  bool byte = false;
};

class SentencePieceReference {
 public:
  // Loads `model_path`; ok() says whether that worked and error() why not.
  explicit SentencePieceReference(const std::string& model_path);
  ~SentencePieceReference();

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Every vocabulary entry with its score and type, in id order.
  std::vector<SentencePiecePiece> Pieces() const;
  int GetPieceSize() const;
  int unk_id() const;
  int bos_id() const;
  int eos_id() const;

  std::vector<int> EncodeAsIds(std::string_view text) const;
  std::vector<std::string> EncodeAsPieces(std::string_view text) const;
  std::string DecodeIds(const std::vector<int>& ids) const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string error_;  // empty when the model loaded
};

}  // namespace nibble::testing
