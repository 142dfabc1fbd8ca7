// libnibble_sentencepiece.so: SentencePieceBridge over libsentencepiece (see sentencepiece_bridge.h for why
// this is a module of its own). Includes libsentencepiece and no abseil header.
#include <sentencepiece_processor.h>

#include <exception>
#include <string>

#include "engine/tokenizer/sentencepiece_bridge.h"

namespace nibble {
namespace {

class LibraryBridge : public SentencePieceBridge {
 public:
  explicit LibraryBridge(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
      : processor_(std::move(processor)) {}

  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const override {
    const sentencepiece::util::Status status = processor_->Encode(text, ids);
    if (!status.ok()) {
      *error = status.ToString();
      return false;
    }
    return true;
  }
  std::string DecodeIds(const std::vector<int>& ids) const override { return processor_->DecodeIds(ids); }
  int piece_size() const override { return processor_->GetPieceSize(); }
  int bos_id() const override { return processor_->bos_id(); }
  int eos_id() const override { return processor_->eos_id(); }
  int unk_id() const override { return processor_->unk_id(); }
  const std::string& IdToPiece(int id) const override { return processor_->IdToPiece(id); }
  bool IsControl(int id) const override { return processor_->IsControl(id); }
  bool IsUnknown(int id) const override { return processor_->IsUnknown(id); }
  bool IsByte(int id) const override { return processor_->IsByte(id); }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace
}  // namespace nibble

extern "C" nibble::SentencePieceBridge* nibble_sentencepiece_load(const char* path, std::string* error) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  // The library throws on some malformed models rather than returning a status (darts-clone's "zero-length
  // key" for a piece that starts with NUL, found by tests/fuzz): no exception may leave the module.
  try {
    const sentencepiece::util::Status status = processor->Load(path);
    if (!status.ok()) {
      *error = status.ToString();
      return nullptr;
    }
  } catch (const std::exception& exception) {
    *error = std::string("the model is malformed: ") + exception.what();
    return nullptr;
  }
  return new nibble::LibraryBridge(std::move(processor));
}
