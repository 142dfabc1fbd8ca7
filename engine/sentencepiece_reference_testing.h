// Test-only: libsentencepiece called directly, the independent reference the tokenizer tests compare
// nibble's Tokenizer against. Abseil-free for the reason given in sentencepiece_bridge.h.
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

class SentencePieceReference {
 public:
  // Loads `model_path`; ok() says whether that worked.
  explicit SentencePieceReference(const std::string& model_path);
  ~SentencePieceReference();

  bool ok() const { return ok_; }
  std::vector<int> EncodeAsIds(std::string_view text) const;
  std::string DecodeIds(const std::vector<int>& ids) const;
  int GetPieceSize() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  bool ok_ = false;
};

}  // namespace nibble::testing
