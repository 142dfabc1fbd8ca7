// Includes libsentencepiece and no abseil header (see sentencepiece_bridge.h for why).
#include "engine/sentencepiece_reference_testing.h"

#include <sentencepiece_processor.h>

namespace nibble::testing {

SentencePieceReference::SentencePieceReference(const std::string& model_path)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()),
      ok_(processor_->Load(model_path).ok()) {}

SentencePieceReference::~SentencePieceReference() = default;

std::vector<int> SentencePieceReference::EncodeAsIds(std::string_view text) const {
  return processor_->EncodeAsIds(text);
}

std::string SentencePieceReference::DecodeIds(const std::vector<int>& ids) const {
  return processor_->DecodeIds(ids);
}

int SentencePieceReference::GetPieceSize() const { return processor_->GetPieceSize(); }

}  // namespace nibble::testing
