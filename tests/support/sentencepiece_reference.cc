// Includes libsentencepiece and no abseil header (see the header for why).
#include "tests/support/sentencepiece_reference.h"

#include <sentencepiece_processor.h>

namespace nibble::testing {

SentencePieceReference::SentencePieceReference(const std::string& model_path)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  if (const auto status = processor_->Load(model_path); !status.ok()) error_ = status.ToString();
}

SentencePieceReference::~SentencePieceReference() = default;

std::vector<SentencePiecePiece> SentencePieceReference::Pieces() const {
  std::vector<SentencePiecePiece> pieces;
  for (int id = 0; id < processor_->GetPieceSize(); ++id) {
    pieces.push_back({processor_->IdToPiece(id), processor_->GetScore(id), processor_->IsUnknown(id),
                      processor_->IsControl(id), processor_->IsByte(id)});
  }
  return pieces;
}

int SentencePieceReference::GetPieceSize() const { return processor_->GetPieceSize(); }
int SentencePieceReference::unk_id() const { return processor_->unk_id(); }
int SentencePieceReference::bos_id() const { return processor_->bos_id(); }
int SentencePieceReference::eos_id() const { return processor_->eos_id(); }

std::vector<int> SentencePieceReference::EncodeAsIds(std::string_view text) const {
  return processor_->EncodeAsIds(text);
}

std::vector<std::string> SentencePieceReference::EncodeAsPieces(std::string_view text) const {
  return processor_->EncodeAsPieces(text);
}

std::string SentencePieceReference::DecodeIds(const std::vector<int>& ids) const { return processor_->DecodeIds(ids); }

}  // namespace nibble::testing
