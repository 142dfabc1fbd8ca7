// Writes a SentencePiece BPE model (a serialized sentencepiece ModelProto, encoded by hand in the protocol buffer
// wire format: Debian ships no sentencepiece_model.pb.h, and libsentencepiece's own protobuf stays inside its
// module, see sentencepiece_bridge.h). Used by the synthetic tokenizer and by the llama2.c tokenizer.bin import.
//
// What is written: the pieces in id order with their scores and types; TrainerSpec model_type BPE, vocab_size,
// byte_fallback (on exactly when there are byte pieces), unk_id, bos_id ("<s>" when it is a control piece, else
// -1) and eos_id ("</s>" likewise); NormalizerSpec "identity" (no NFKC), add_dummy_prefix, escape_whitespaces
// ("▁") and remove_extra_whitespaces as asked. The caller makes the pieces valid for SentencePiece (non-empty,
// no NUL, unique, exactly one UNKNOWN, all 256 byte pieces <0x00>..<0xFF> or none). Pure; any thread.
#pragma once

#include <string>
#include <vector>

namespace nibble {

// sentencepiece_model.proto's SentencePiece.Type.
enum class SentencePieceType { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };

struct SentencePieceEntry {
  std::string piece;  // UTF-8, spaces as "▁"
  float score = 0.0f;
  SentencePieceType type = SentencePieceType::kNormal;
};

struct SentencePieceBpeModel {
  std::vector<SentencePieceEntry> pieces;  // in id order
  // SentencePiece's remove_extra_whitespaces: strip leading and trailing spaces and collapse runs of them.
  bool remove_extra_whitespaces = false;
};

// The serialized ModelProto.
std::string SerializeSentencePieceBpeModel(const SentencePieceBpeModel& model);

}  // namespace nibble
