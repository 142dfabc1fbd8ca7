#include "engine/tokenizer/synth_tokenizer.h"

#include <cctype>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/file_io.h"
#include "engine/tokenizer/sentencepiece_model_writer.h"

namespace nibble {
namespace {

constexpr int64_t kMaxVocabSize = int64_t{1} << 24;
constexpr char kWordBoundary[] = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's escaped space

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

SentencePieceBpeModel SynthModel(int64_t vocab_size) {
  SentencePieceBpeModel model;
  model.pieces = {{"<unk>", 0.0f, SentencePieceType::kUnknown},
                  {"<s>", 0.0f, SentencePieceType::kControl},
                  {"</s>", 0.0f, SentencePieceType::kControl}};
  for (int byte = 0; byte < 256; ++byte) {
    model.pieces.push_back({absl::StrFormat("<0x%02X>", byte), 0.0f, SentencePieceType::kByte});
  }
  const std::vector<std::string> normal = NormalPieces(vocab_size - kMinSynthVocabSize);
  for (size_t i = 0; i < normal.size(); ++i) {
    model.pieces.push_back({normal[i], -static_cast<float>(i), SentencePieceType::kNormal});
  }
  model.remove_extra_whitespaces = false;  // as Llama's tokenizer
  return model;
}

}  // namespace

absl::Status WriteSynthTokenizer(const std::filesystem::path& path, int64_t vocab_size) {
  if (vocab_size < kMinSynthVocabSize || vocab_size > kMaxVocabSize) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": a synthetic tokenizer needs between ",
                                                   kMinSynthVocabSize, " and ", kMaxVocabSize, " pieces, not ",
                                                   vocab_size));
  }
  return WriteFileContents(path, SerializeSentencePieceBpeModel(SynthModel(vocab_size)));
}

}  // namespace nibble
