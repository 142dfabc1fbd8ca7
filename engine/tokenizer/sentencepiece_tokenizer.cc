#include "engine/tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"
#include "engine/base/utf8.h"
#include "engine/tokenizer/generation_config.h"
#include "engine/tokenizer/sentencepiece_bridge.h"

namespace nibble {
namespace {

static_assert(std::is_same_v<int, int32_t>, "libsentencepiece's int ids are moved into int32_t vectors");

// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's stand-in for a space inside pieces.
constexpr absl::string_view kMetaSpace = "\xE2\x96\x81";

// What one token adds to the text.
struct TokenText {
  std::string bytes;        // mid-text
  size_t leading_skip = 0;  // bytes of `bytes` dropped at the start of the text (the space of a "▁")
  bool is_byte = false;     // a byte-fallback piece
};

// The longest input one token stands for. SentencePiece matches pieces against the text with "▁" for a
// space, so a piece covers as many input bytes as its text has; a character no piece holds becomes one byte
// token per byte with byte fallback (the unknown piece then never stands for input), and without it joins a
// run of unknown characters that one unknown token covers, however long.
int32_t MaxTokenBytes(const SentencePieceBridge& library, const std::vector<TokenText>& texts) {
  size_t longest = 1;
  bool byte_fallback = false;
  for (int id = 0; id < static_cast<int>(texts.size()); ++id) {
    if (!library.IsUnknown(id)) longest = std::max(longest, texts[id].bytes.size());
    byte_fallback = byte_fallback || texts[id].is_byte;
  }
  return byte_fallback ? static_cast<int32_t>(longest) : std::numeric_limits<int32_t>::max();
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // `generation_eos_ids`: more ids that end generation (generation_config.json's), after the model's own EOS.
  SentencePieceTokenizer(std::unique_ptr<SentencePieceBridge> library, std::vector<TokenText> token_texts,
                         std::string source, const std::vector<int32_t>& generation_eos_ids)
      : library_(std::move(library)),
        token_texts_(std::move(token_texts)),
        source_(std::move(source)),
        max_token_bytes_(MaxTokenBytes(*library_, token_texts_)) {
    if (library_->eos_id() >= 0) eos_ids_.push_back(library_->eos_id());
    for (const int32_t id : generation_eos_ids) {
      if (std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) eos_ids_.push_back(id);
    }
  }

  std::string Decode(std::span<const int32_t> tokens) const override {
    std::vector<int> ids;
    ids.reserve(tokens.size());
    for (const int32_t token : tokens) ids.push_back(InVocabulary(token) ? token : library_->unk_id());
    return library_->DecodeIds(ids);
  }

  int32_t max_token_bytes() const override { return max_token_bytes_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(token_texts_.size()); }
  int32_t bos_id() const override { return library_->bos_id(); }
  int32_t eos_id() const override { return library_->eos_id(); }
  std::span<const int32_t> eos_ids() const override { return eos_ids_; }

  absl::StatusOr<std::string> IdToPiece(int32_t id) const override {
    if (!InVocabulary(id)) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size(), ") of ", source_));
    }
    return library_->IdToPiece(id);
  }

  absl::string_view TokenBytes(int32_t id) const override { return Text(id).bytes; }

  absl::string_view LeadingTokenBytes(int32_t id) const override {
    const TokenText& text = Text(id);
    return absl::string_view(text.bytes).substr(text.leading_skip);
  }

  bool IsByteToken(int32_t id) const override { return Text(id).is_byte; }
  bool StripsLeadingSpaceOnce() const override { return false; }

 protected:
  absl::StatusOr<std::vector<int32_t>> EncodeValidUtf8(absl::string_view text) const override {
    std::vector<int> ids;
    std::string error;
    if (!library_->Encode(std::string_view(text.data(), text.size()), &ids, &error)) {
      return absl::InternalError(absl::StrCat(source_, ": SentencePiece could not encode the text: ", error));
    }
    return ids;
  }

 private:
  bool InVocabulary(int32_t id) const { return id >= 0 && id < vocab_size(); }
  const TokenText& Text(int32_t id) const { return token_texts_[InVocabulary(id) ? id : library_->unk_id()]; }

  std::unique_ptr<SentencePieceBridge> library_;
  std::vector<TokenText> token_texts_;  // indexed by id
  std::string source_;                  // the model file, for messages
  int32_t max_token_bytes_;             // the longest piece's UTF-8 bytes
  std::vector<int32_t> eos_ids_;        // eos_id(), when the model has one, then generation_config.json's
};

// The byte of a byte-fallback piece "<0xNN>".
absl::StatusOr<char> PieceByte(const std::string& piece, const std::string& source) {
  int value = 0;
  if (piece.size() != 6 || !absl::StartsWith(piece, "<0x") || piece.back() != '>' ||
      !absl::SimpleHexAtoi(absl::string_view(piece).substr(3, 2), &value)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": byte piece \"", piece, "\" is not of the form <0xNN>"));
  }
  return static_cast<char>(value);
}

// Whether the library's decoder drops the "▁" of a piece at the start of the text (it does when the model
// adds a dummy prefix or removes extra whitespace when normalizing), asked of a piece that starts with one.
bool DecoderDropsLeadingMetaSpace(const SentencePieceBridge& library) {
  for (int id = 0; id < library.piece_size(); ++id) {
    if (library.IsControl(id) || library.IsUnknown(id) || library.IsByte(id)) continue;
    const std::string& piece = library.IdToPiece(id);
    if (absl::StartsWith(piece, kMetaSpace)) return !absl::StartsWith(library.DecodeIds({id}), " ");
  }
  return true;  // no piece starts with "▁": nothing to drop either way
}

absl::StatusOr<std::vector<TokenText>> BuildTokenTexts(const SentencePieceBridge& library, const std::string& source) {
  const bool drops_leading_meta_space = DecoderDropsLeadingMetaSpace(library);
  std::vector<TokenText> texts(library.piece_size());
  absl::flat_hash_map<std::string, int> first_id_of_piece;
  for (int id = 0; id < library.piece_size(); ++id) {
    TokenText& text = texts[id];
    const std::string& piece = library.IdToPiece(id);
    // Two ids with one piece (libsentencepiece loads such a model when their types differ) decode and stream
    // differently for the same text: refused.
    if (const auto [first, inserted] = first_id_of_piece.emplace(piece, id); !inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": pieces ", first->second, " and ", id, " are both ", QuotedPrefix(piece)));
    }
    if (library.IsControl(id)) continue;
    if (library.IsByte(id)) {
      NIBBLE_ASSIGN_OR_RETURN(const char byte, PieceByte(piece, source));
      text.bytes.assign(1, byte);
      text.is_byte = true;
      continue;
    }
    if (library.IsUnknown(id)) {
      text.bytes = library.DecodeIds({id});  // the unknown surface, never trimmed
    } else {
      text.bytes = absl::StrReplaceAll(piece, {{kMetaSpace, " "}});
      if (drops_leading_meta_space && absl::StartsWith(piece, kMetaSpace)) text.leading_skip = 1;
    }
    if (!IsValidUtf8(text.bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": piece ", id, " is not valid UTF-8"));
    }
  }
  return texts;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::filesystem::path& model_file) {
  const std::string source = model_file.string();
  std::error_code exists_error;
  if (!std::filesystem::exists(model_file, exists_error)) {
    return absl::NotFoundError(absl::StrCat(source, ": cannot open (no such file)"));
  }
  std::string error;
  std::unique_ptr<SentencePieceBridge> library = SentencePieceBridge::Load(source, &error);
  if (library == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a usable SentencePiece model (", error, ")"));
  }
  const int unk_id = library->unk_id();
  if (unk_id < 0 || unk_id >= library->piece_size()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": the model has no unknown piece"));
  }
  NIBBLE_ASSIGN_OR_RETURN(std::vector<TokenText> token_texts, BuildTokenTexts(*library, source));
  NIBBLE_ASSIGN_OR_RETURN(const std::vector<int32_t> generation_eos_ids,
                          ReadGenerationEosIds(model_file.parent_path(), library->piece_size()));
  return std::make_unique<SentencePieceTokenizer>(std::move(library), std::move(token_texts), source,
                                                  generation_eos_ids);
}

}  // namespace nibble
