// A thin, abseil-free wrapper over libsentencepiece's SentencePieceProcessor.
//
// Why it exists: Debian's sentencepiece_processor.h declares `namespace absl { using std::string_view; }`,
// which collides with Debian's abseil (built with ABSL_OPTION_USE_STD_STRING_VIEW=0, where
// absl::string_view is its own class). No translation unit can include both, so the library is only ever
// included by sentencepiece_bridge.cc, which includes no abseil header, and this header speaks only std
// types. Use SentencePieceTokenizer (sentencepiece_tokenizer.h); nothing else should need this class.
//
// Why it is a loadable module: Debian's libsentencepiece.so carries (and exports) a private copy of
// protobuf-lite 3.14. A process that also loads libprotobuf.so 3.21 (every gRPC service) cannot have both in
// its global symbol scope: whichever comes first, the other's code binds to the wrong protobuf and the
// process dies at start. So libsentencepiece is never linked into nibble_engine: the implementation lives in
// the module libnibble_sentencepiece.so (sentencepiece_module.cc), which Load opens with RTLD_LOCAL, and with
// RTLD_DEEPBIND when the full libprotobuf is in the process, so that libsentencepiece keeps its own copy.
// The module is looked for at $NIBBLE_SENTENCEPIECE_MODULE, then where the build put it, then beside the
// executable.
//
// Owns its processor. Immutable after Load: every method is const and safe to call from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nibble {

class SentencePieceBridge {
 public:
  // Loads a serialized SentencePiece model from `path`; nullptr with the library's message (or why the
  // module could not be opened) in *error when that fails.
  static std::unique_ptr<SentencePieceBridge> Load(const std::string& path, std::string* error);
  virtual ~SentencePieceBridge() = default;

  // SentencePieceProcessor::Encode (no BOS/EOS); false with the library's message in *error on failure.
  virtual bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const = 0;
  // SentencePieceProcessor::DecodeIds. Every id must be in [0, piece_size()).
  virtual std::string DecodeIds(const std::vector<int>& ids) const = 0;

  virtual int piece_size() const = 0;
  virtual int bos_id() const = 0;  // -1 when the model has none
  virtual int eos_id() const = 0;  // -1 when the model has none
  virtual int unk_id() const = 0;
  // Piece queries; `id` must be in [0, piece_size()).
  virtual const std::string& IdToPiece(int id) const = 0;
  virtual bool IsControl(int id) const = 0;
  virtual bool IsUnknown(int id) const = 0;
  virtual bool IsByte(int id) const = 0;
};

}  // namespace nibble

// The module's one entry point (a new bridge, or nullptr with the message in *error).
extern "C" nibble::SentencePieceBridge* nibble_sentencepiece_load(const char* path, std::string* error);
