// Includes libsentencepiece and no abseil header (see sentencepiece_bridge.h for why).
#include "engine/sentencepiece_bridge.h"

#include <sentencepiece_processor.h>

namespace nibble {

std::unique_ptr<SentencePieceBridge> SentencePieceBridge::Load(const std::string& path, std::string* error) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status status = processor->Load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return std::unique_ptr<SentencePieceBridge>(new SentencePieceBridge(std::move(processor)));
}

SentencePieceBridge::SentencePieceBridge(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
    : processor_(std::move(processor)) {}

SentencePieceBridge::~SentencePieceBridge() = default;

bool SentencePieceBridge::Encode(std::string_view text, std::vector<int>* ids, std::string* error) const {
  const sentencepiece::util::Status status = processor_->Encode(text, ids);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  return true;
}

std::string SentencePieceBridge::DecodeIds(const std::vector<int>& ids) const { return processor_->DecodeIds(ids); }

int SentencePieceBridge::piece_size() const { return processor_->GetPieceSize(); }
int SentencePieceBridge::bos_id() const { return processor_->bos_id(); }
int SentencePieceBridge::eos_id() const { return processor_->eos_id(); }
int SentencePieceBridge::unk_id() const { return processor_->unk_id(); }
const std::string& SentencePieceBridge::IdToPiece(int id) const { return processor_->IdToPiece(id); }
bool SentencePieceBridge::IsControl(int id) const { return processor_->IsControl(id); }
bool SentencePieceBridge::IsUnknown(int id) const { return processor_->IsUnknown(id); }
bool SentencePieceBridge::IsByte(int id) const { return processor_->IsByte(id); }

}  // namespace nibble
