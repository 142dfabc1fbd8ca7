#include "engine/tokenizer/synth_tokenizer.h"

#include <bit>
#include <cctype>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/file_io.h"

namespace nibble {
namespace {

constexpr int64_t kMaxVocabSize = int64_t{1} << 24;
constexpr char kWordBoundary[] = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's escaped space

// sentencepiece_model.proto's SentencePiece.Type.
enum class PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };

// Protocol buffer wire format (https://protobuf.dev/programming-guides/encoding/).
class ProtoWriter {
 public:
  void Varint(int field, uint64_t value) {
    Key(field, 0);
    RawVarint(value);
  }
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

std::string EncodePiece(const std::string& piece, float score, PieceType type) {
  ProtoWriter message;  // SentencePiece {1: piece, 2: score, 3: type}
  message.Bytes(1, piece);
  message.Float(2, score);
  message.Varint(3, static_cast<uint64_t>(type));
  return message.bytes();
}

// The `count` normal pieces: single characters, then earlier pieces extended by one character.
std::vector<std::string> NormalPieces(int64_t count) {
  std::vector<std::string> characters;
  for (char c = 'a'; c <= 'z'; ++c) characters.emplace_back(1, c);
  for (char c = 'A'; c <= 'Z'; ++c) characters.emplace_back(1, c);
  for (char c = '0'; c <= '9'; ++c) characters.emplace_back(1, c);
  for (char c = '!'; c <= '~'; ++c) {
    if (!std::isalnum(static_cast<unsigned char>(c))) characters.emplace_back(1, c);
  }
  std::vector<std::string> pieces = {kWordBoundary};
  pieces.insert(pieces.end(), characters.begin(), characters.end());
  // Each round extends every piece of the previous round by each character ("▁" only starts pieces).
  size_t round_begin = 0;
  while (static_cast<int64_t>(pieces.size()) < count) {
    const size_t round_end = pieces.size();
    for (size_t i = round_begin; i < round_end && static_cast<int64_t>(pieces.size()) < count; ++i) {
      for (const std::string& c : characters) {
        if (static_cast<int64_t>(pieces.size()) == count) break;
        pieces.push_back(pieces[i] + c);
      }
    }
    round_begin = round_end;
  }
  pieces.resize(static_cast<size_t>(count));
  return pieces;
}

std::string SerializeModel(int64_t vocab_size) {
  ProtoWriter model;  // ModelProto
  model.Bytes(1, EncodePiece("<unk>", 0.0f, PieceType::kUnknown));
  model.Bytes(1, EncodePiece("<s>", 0.0f, PieceType::kControl));
  model.Bytes(1, EncodePiece("</s>", 0.0f, PieceType::kControl));
  for (int byte = 0; byte < 256; ++byte) {
    model.Bytes(1, EncodePiece(absl::StrFormat("<0x%02X>", byte), 0.0f, PieceType::kByte));
  }
  const std::vector<std::string> normal = NormalPieces(vocab_size - kMinSynthVocabSize);
  for (size_t i = 0; i < normal.size(); ++i) {
    model.Bytes(1, EncodePiece(normal[i], -static_cast<float>(i), PieceType::kNormal));
  }

  ProtoWriter trainer;   // TrainerSpec
  trainer.Varint(3, 2);  // model_type: BPE
  trainer.Varint(4, static_cast<uint64_t>(vocab_size));
  trainer.Bool(35, true);  // byte_fallback
  trainer.Varint(40, 0);   // unk_id
  trainer.Varint(41, 1);   // bos_id
  trainer.Varint(42, 2);   // eos_id
  model.Bytes(2, trainer.bytes());

  ProtoWriter normalizer;  // NormalizerSpec
  normalizer.Bytes(1, "identity");
  normalizer.Bool(3, true);   // add_dummy_prefix
  normalizer.Bool(4, false);  // remove_extra_whitespaces
  normalizer.Bool(5, true);   // escape_whitespaces
  model.Bytes(3, normalizer.bytes());
  return model.bytes();
}

}  // namespace

absl::Status WriteSynthTokenizer(const std::filesystem::path& path, int64_t vocab_size) {
  if (vocab_size < kMinSynthVocabSize || vocab_size > kMaxVocabSize) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": a synthetic tokenizer needs between ",
                                                   kMinSynthVocabSize, " and ", kMaxVocabSize, " pieces, not ",
                                                   vocab_size));
  }
  return WriteFileContents(path, SerializeModel(vocab_size));
}

}  // namespace nibble
