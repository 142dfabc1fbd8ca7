#include "engine/sentencepiece_probe.h"

#include <sentencepiece_processor.h>

namespace nibble::testing {

SentencePieceProbe ProbeSentencePiece(const std::string& model_path) {
  SentencePieceProbe probe;
  sentencepiece::SentencePieceProcessor processor;
  if (const auto status = processor.Load(model_path); !status.ok()) {
    probe.error = status.ToString();
    return probe;
  }
  for (int id = 0; id < processor.GetPieceSize(); ++id) {
    probe.pieces.push_back({processor.IdToPiece(id), processor.GetScore(id), processor.IsUnknown(id),
                            processor.IsControl(id), processor.IsByte(id)});
  }
  probe.unk_id = processor.unk_id();
  probe.bos_id = processor.bos_id();
  probe.eos_id = processor.eos_id();
  return probe;
}

SentencePieceEncoding EncodeWithSentencePiece(const std::string& model_path, const std::string& text) {
  SentencePieceEncoding encoding;
  sentencepiece::SentencePieceProcessor processor;
  if (const auto status = processor.Load(model_path); !status.ok()) {
    encoding.error = status.ToString();
    return encoding;
  }
  if (const auto status = processor.Encode(text, &encoding.ids); !status.ok()) {
    encoding.error = status.ToString();
    return encoding;
  }
  for (int id : encoding.ids) encoding.pieces.push_back(processor.IdToPiece(id));
  if (const auto status = processor.Decode(encoding.ids, &encoding.decoded); !status.ok()) {
    encoding.error = status.ToString();
  }
  return encoding;
}

std::string DecodeWithSentencePiece(const std::string& model_path, const std::vector<int>& ids) {
  sentencepiece::SentencePieceProcessor processor;
  if (const auto status = processor.Load(model_path); !status.ok()) return "[" + status.ToString() + "]";
  std::string text;
  if (const auto status = processor.Decode(ids, &text); !status.ok()) return "[" + status.ToString() + "]";
  return text;
}

}  // namespace nibble::testing
