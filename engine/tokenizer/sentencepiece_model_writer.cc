#include "engine/tokenizer/sentencepiece_model_writer.h"

#include <bit>
#include <cstdint>

namespace nibble {
namespace {

// Protocol buffer wire format (https://protobuf.dev/programming-guides/encoding/).
class ProtoWriter {
 public:
  void Varint(int field, uint64_t value) {
    Key(field, 0);
    RawVarint(value);
  }
  // int32 fields: negative values are sign-extended to 64 bits, as protobuf does.
  void Int32(int field, int32_t value) { Varint(field, static_cast<uint64_t>(static_cast<int64_t>(value))); }
  void Bool(int field, bool value) { Varint(field, value ? 1 : 0); }
  void Float(int field, float value) {
    Key(field, 5);
    const auto bits = std::bit_cast<uint32_t>(value);
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  }
  void Bytes(int field, const std::string& bytes) {
    Key(field, 2);
    RawVarint(bytes.size());
    out_ += bytes;
  }
  const std::string& bytes() const { return out_; }

 private:
  void Key(int field, int wire_type) {
    RawVarint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type));
  }
  void RawVarint(uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(static_cast<char>((value & 0x7F) | 0x80));
      value >>= 7;
    }
    out_.push_back(static_cast<char>(value));
  }

  std::string out_;
};

std::string EncodePiece(const SentencePieceEntry& entry) {
  ProtoWriter message;  // SentencePiece {1: piece, 2: score, 3: type}
  message.Bytes(1, entry.piece);
  message.Float(2, entry.score);
  message.Varint(3, static_cast<uint64_t>(entry.type));
  return message.bytes();
}

// The id of the piece `text` of `type`, or -1.
int32_t IdOf(const SentencePieceBpeModel& model, SentencePieceType type, const std::string& text) {
  for (size_t id = 0; id < model.pieces.size(); ++id) {
    const SentencePieceEntry& entry = model.pieces[id];
    if (entry.type == type && (text.empty() || entry.piece == text)) return static_cast<int32_t>(id);
  }
  return -1;
}

}  // namespace

std::string SerializeSentencePieceBpeModel(const SentencePieceBpeModel& model) {
  ProtoWriter proto;  // ModelProto
  bool has_byte_pieces = false;
  for (const SentencePieceEntry& entry : model.pieces) {
    proto.Bytes(1, EncodePiece(entry));
    has_byte_pieces = has_byte_pieces || entry.type == SentencePieceType::kByte;
  }

  ProtoWriter trainer;   // TrainerSpec
  trainer.Varint(3, 2);  // model_type: BPE
  trainer.Varint(4, model.pieces.size());
  trainer.Bool(35, has_byte_pieces);                                    // byte_fallback
  trainer.Int32(40, IdOf(model, SentencePieceType::kUnknown, ""));      // unk_id
  trainer.Int32(41, IdOf(model, SentencePieceType::kControl, "<s>"));   // bos_id
  trainer.Int32(42, IdOf(model, SentencePieceType::kControl, "</s>"));  // eos_id
  proto.Bytes(2, trainer.bytes());

  ProtoWriter normalizer;  // NormalizerSpec
  normalizer.Bytes(1, "identity");
  normalizer.Bool(3, true);                            // add_dummy_prefix
  normalizer.Bool(4, model.remove_extra_whitespaces);  // remove_extra_whitespaces
  normalizer.Bool(5, true);                            // escape_whitespaces
  proto.Bytes(3, normalizer.bytes());
  return proto.bytes();
}

}  // namespace nibble
