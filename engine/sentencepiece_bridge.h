// A thin, abseil-free wrapper over libsentencepiece's SentencePieceProcessor.
//
// Why it exists: Debian's sentencepiece_processor.h declares `namespace absl { using std::string_view; }`,
// which collides with Debian's abseil (built with ABSL_OPTION_USE_STD_STRING_VIEW=0, where
// absl::string_view is its own class). No translation unit can include both, so the library is only ever
// included by sentencepiece_bridge.cc, which includes no abseil header, and this header speaks only std
// types. Use SentencePieceTokenizer (sentencepiece_tokenizer.h); nothing else should need this class.
//
// Owns its processor. Immutable after Load: every method is const and safe to call from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace nibble {

class SentencePieceBridge {
 public:
  // Loads a serialized SentencePiece model from `path`; nullptr with the library's message in *error
  // when that fails.
  static std::unique_ptr<SentencePieceBridge> Load(const std::string& path, std::string* error);
  ~SentencePieceBridge();
  SentencePieceBridge(const SentencePieceBridge&) = delete;
  SentencePieceBridge& operator=(const SentencePieceBridge&) = delete;

  // SentencePieceProcessor::Encode (no BOS/EOS); false with the library's message in *error on failure.
  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const;
  // SentencePieceProcessor::DecodeIds. Every id must be in [0, piece_size()).
  std::string DecodeIds(const std::vector<int>& ids) const;

  int piece_size() const;
  int bos_id() const;  // -1 when the model has none
  int eos_id() const;  // -1 when the model has none
  int unk_id() const;
  // Piece queries; `id` must be in [0, piece_size()).
  const std::string& IdToPiece(int id) const;
  bool IsControl(int id) const;
  bool IsUnknown(int id) const;
  bool IsByte(int id) const;

 private:
  explicit SentencePieceBridge(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace nibble
