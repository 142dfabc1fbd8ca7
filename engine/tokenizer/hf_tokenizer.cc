#include "engine/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "engine/base/utf8.h"
#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/generation_config.h"
#include "engine/tokenizer/hf_decoder.h"
#include "engine/tokenizer/hf_normalizer.h"
#include "engine/tokenizer/hf_pre_tokenizer.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/text_streamer.h"
#include "nlohmann/json.hpp"

namespace nibble {
namespace {

using nlohmann::json;

// Everything a loaded tokenizer.json holds, as HfTokenizer uses it.
struct HfParts {
  BpeModel model;
  std::unique_ptr<HfNormalizer> normalizer;
  std::unique_ptr<HfPreTokenizer> pre_tokenizer;
  std::vector<AddedToken> added_tokens;
  std::vector<std::string> pieces;    // id -> vocabulary entry ("" where no id)
  std::vector<DecodedToken> decoded;  // id -> what it adds to the text
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;
  std::string source;
};

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(HfParts parts)
      : parts_(std::move(parts)),
        raw_matcher_(parts_.added_tokens, /*normalized=*/false),
        normalized_matcher_(parts_.added_tokens, /*normalized=*/true) {
    for (const AddedToken& token : parts_.added_tokens) {
      if (token.normalized) has_normalized_tokens_ = true;
    }
    const std::optional<int32_t> unk = parts_.model.unk_id();
    fallback_.bytes = fallback_.leading_bytes = std::string(kReplacementCharacter);
    if (unk && InVocabulary(*unk)) fallback_ = parts_.decoded[*unk];
    max_token_bytes_ = MaxTokenBytes();
  }

  std::string Decode(std::span<const int32_t> tokens) const override {
    TextStreamer streamer(*this, StreamStart::kStartsText);
    std::string text;
    for (const int32_t token : tokens) text += streamer.Push(token);
    return text + streamer.Finish();
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(parts_.pieces.size()); }
  int32_t bos_id() const override { return parts_.bos_id; }
  int32_t eos_id() const override { return parts_.eos_ids.empty() ? -1 : parts_.eos_ids.front(); }
  std::span<const int32_t> eos_ids() const override { return parts_.eos_ids; }

  absl::StatusOr<std::string> IdToPiece(int32_t id) const override {
    if (!InVocabulary(id)) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size(), ") of ", parts_.source));
    }
    return parts_.pieces[id];
  }

  absl::string_view TokenBytes(int32_t id) const override { return Text(id).bytes; }
  absl::string_view LeadingTokenBytes(int32_t id) const override { return Text(id).leading_bytes; }
  bool IsByteToken(int32_t id) const override { return Text(id).may_split_character; }
  bool StripsLeadingSpaceOnce() const override { return true; }
  int32_t max_token_bytes() const override { return max_token_bytes_; }

 protected:
  absl::StatusOr<std::vector<int32_t>> EncodeValidUtf8(absl::string_view text) const override {
    std::vector<int32_t> ids;
    for (const TextSegment& segment : raw_matcher_.Split(text)) {
      if (segment.id >= 0) {
        ids.push_back(segment.id);
        continue;
      }
      std::string normalized(segment.text);
      if (parts_.normalizer != nullptr) {
        NIBBLE_ASSIGN_OR_RETURN(normalized, parts_.normalizer->Normalize(std::move(normalized)));
      }
      if (!has_normalized_tokens_) {
        NIBBLE_RETURN_IF_ERROR(EncodePlain(normalized, segment.offset == 0, ids));
        continue;
      }
      for (const TextSegment& part : normalized_matcher_.Split(normalized)) {
        if (part.id >= 0) {
          ids.push_back(part.id);
        } else {
          NIBBLE_RETURN_IF_ERROR(EncodePlain(part.text, segment.offset == 0 && part.offset == 0, ids));
        }
      }
    }
    return ids;
  }

 private:
  // The longest text one token stands for, as Tokenizer::max_token_bytes() defines it: the longest decoded
  // vocabulary entry or added token's content. An unknown token without byte fallback can stand for any
  // character (or, fused, a run of them): no bound then.
  int32_t MaxTokenBytes() const {
    if (parts_.model.unk_id() && !parts_.model.byte_fallback()) return std::numeric_limits<int32_t>::max();
    size_t longest = 1;
    for (const DecodedToken& token : parts_.decoded)
      longest = std::max({longest, token.bytes.size(), token.leading_bytes.size()});
    for (const AddedToken& token : parts_.added_tokens) longest = std::max(longest, token.content.size());
    return static_cast<int32_t>(longest);
  }

  // Pre-tokenizes normalized text free of added tokens and runs the model on each piece.
  absl::Status EncodePlain(absl::string_view text, bool starts_text, std::vector<int32_t>& ids) const {
    std::vector<std::string> pieces = {std::string(text)};
    if (parts_.pre_tokenizer != nullptr) {
      if (absl::Status status = parts_.pre_tokenizer->PreTokenize(pieces, starts_text); !status.ok()) {
        return absl::Status(status.code(), absl::StrCat(parts_.source, ": pre_tokenizer: ", status.message()));
      }
    }
    for (const std::string& piece : pieces) {
      if (absl::Status status = parts_.model.Encode(piece, ids); !status.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(parts_.source, ": ", status.message()));
      }
    }
    return absl::OkStatus();
  }

  bool InVocabulary(int32_t id) const { return id >= 0 && id < vocab_size(); }
  const DecodedToken& Text(int32_t id) const { return InVocabulary(id) ? parts_.decoded[id] : fallback_; }

  HfParts parts_;
  AddedTokenMatcher raw_matcher_;
  AddedTokenMatcher normalized_matcher_;
  bool has_normalized_tokens_ = false;
  int32_t max_token_bytes_ = 1;
  DecodedToken fallback_;  // what ids outside the vocabulary decode as
};

absl::Status Malformed(const std::string& source, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", problem));
}

absl::StatusOr<json> ReadJson(const std::filesystem::path& path) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Malformed(path.string(), "not valid JSON");
  return parsed;
}

// An optional file beside tokenizer.json: null when absent.
absl::StatusOr<json> ReadOptionalJson(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return json();
  return ReadJson(path);
}

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokens(const json& config, const std::string& source) {
  std::vector<AddedToken> tokens;
  if (config.is_null()) return tokens;
  if (!config.is_array()) return Malformed(source, "\"added_tokens\" must be an array");
  for (const json& entry : config) {
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() || !entry.contains("content") ||
        !entry["content"].is_string() || entry["id"].get<int64_t>() < 0 ||
        entry["id"].get<int64_t>() >= (int64_t{1} << 30)) {
      return Malformed(source, "an added token needs an id and a content");
    }
    AddedToken token;
    token.id = static_cast<int32_t>(entry["id"].get<int64_t>());
    token.content = entry["content"].get<std::string>();
    const std::string component = absl::StrCat("added token ", token.id);
    NIBBLE_ASSIGN_OR_RETURN(token.special, OptionalBool(entry, "special", false, source, component));
    NIBBLE_ASSIGN_OR_RETURN(token.lstrip, OptionalBool(entry, "lstrip", false, source, component));
    NIBBLE_ASSIGN_OR_RETURN(token.rstrip, OptionalBool(entry, "rstrip", false, source, component));
    NIBBLE_ASSIGN_OR_RETURN(token.normalized, OptionalBool(entry, "normalized", !token.special, source, component));
    NIBBLE_ASSIGN_OR_RETURN(const bool single_word, OptionalBool(entry, "single_word", false, source, component));
    if (single_word) {
      return Malformed(source, absl::StrCat("added token ", token.id, ": single_word is not supported"));
    }
    if (!IsValidUtf8(token.content)) return Malformed(source, absl::StrCat("added token ", token.id, " is not UTF-8"));
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// A token named in tokenizer_config.json: "text", {"content": "text"} or null.
std::optional<std::string> NamedToken(const json& config, const char* field) {
  if (!config.is_object() || !config.contains(field)) return std::nullopt;
  const json& value = config[field];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return std::nullopt;
}

// The special token the post-processor's single-sequence template starts with, if any.
std::optional<std::string> TemplateFirstToken(const json& post_processor) {
  // Only BOS is read from the post-processor: one of any other shape names none.
  if (!post_processor.is_object() || !post_processor.contains("type") || !post_processor["type"].is_string()) {
    return std::nullopt;
  }
  const std::string type = post_processor["type"].get<std::string>();
  if (type == "Sequence" && post_processor.contains("processors") && post_processor["processors"].is_array()) {
    for (const json& processor : post_processor["processors"]) {
      if (std::optional<std::string> first = TemplateFirstToken(processor)) return first;
    }
    return std::nullopt;
  }
  if (type != "TemplateProcessing" || !post_processor.contains("single")) return std::nullopt;
  const json& single = post_processor["single"];
  if (!single.is_array() || single.empty() || !single[0].is_object() || !single[0].contains("SpecialToken")) {
    return std::nullopt;
  }
  const json& special = single[0]["SpecialToken"];
  if (!special.is_object() || !special.contains("id") || !special["id"].is_string()) return std::nullopt;
  return special["id"].get<std::string>();
}

absl::Status ResolveBosEos(const json& tokenizer, const std::filesystem::path& dir,
                           const absl::flat_hash_map<std::string, int32_t>& ids_by_piece, HfParts& parts) {
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  NIBBLE_ASSIGN_OR_RETURN(const json config, ReadOptionalJson(config_path));
  auto id_of = [&](const std::string& piece, const std::filesystem::path& file,
                   const char* field) -> absl::StatusOr<int32_t> {
    const auto it = ids_by_piece.find(piece);
    if (it == ids_by_piece.end()) {
      return Malformed(file.string(), absl::StrCat(field, " \"", piece.substr(0, 40), "\" is not in ", parts.source));
    }
    return it->second;
  };

  const std::optional<std::string> template_first = TemplateFirstToken(tokenizer.value("post_processor", json()));
  std::optional<std::string> bos = NamedToken(config, "bos_token");
  bool adds_bos = false;
  if (config.is_object() && config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    adds_bos = config["add_bos_token"].get<bool>();
  } else if (template_first) {
    adds_bos = !bos || *bos == *template_first;
    if (!bos) bos = template_first;
  }
  if (adds_bos && bos) {
    NIBBLE_ASSIGN_OR_RETURN(parts.bos_id, id_of(*bos, config_path, "bos_token"));
  }

  NIBBLE_ASSIGN_OR_RETURN(parts.eos_ids, ReadGenerationEosIds(dir, static_cast<int64_t>(parts.pieces.size())));
  if (const std::optional<std::string> eos = NamedToken(config, "eos_token")) {
    NIBBLE_ASSIGN_OR_RETURN(const int32_t id, id_of(*eos, config_path, "eos_token"));
    if (std::find(parts.eos_ids.begin(), parts.eos_ids.end(), id) == parts.eos_ids.end()) parts.eos_ids.push_back(id);
  }
  return absl::OkStatus();
}

absl::StatusOr<HfParts> ParseTokenizer(const json& tokenizer, const std::filesystem::path& path) {
  HfParts parts;
  parts.source = path.string();
  const std::string& source = parts.source;
  if (!tokenizer.is_object()) return Malformed(source, "not a tokenizer.json object");
  if (tokenizer.contains("truncation") && !tokenizer["truncation"].is_null()) {
    return Malformed(source, "truncation is not supported");
  }
  NIBBLE_ASSIGN_OR_RETURN(parts.model, BpeModel::Parse(tokenizer.value("model", json()), source));
  NIBBLE_ASSIGN_OR_RETURN(parts.normalizer, ParseHfNormalizer(tokenizer.value("normalizer", json()), source));
  NIBBLE_ASSIGN_OR_RETURN(parts.pre_tokenizer, ParseHfPreTokenizer(tokenizer.value("pre_tokenizer", json()), source));
  NIBBLE_ASSIGN_OR_RETURN(const HfDecoder decoder, ParseHfDecoder(tokenizer.value("decoder", json()), source));
  NIBBLE_ASSIGN_OR_RETURN(parts.added_tokens, ParseAddedTokens(tokenizer.value("added_tokens", json()), source));

  // The vocabulary: the model's pieces, then the added tokens (which may extend it).
  const auto& model_pieces = parts.model.pieces();
  size_t size = model_pieces.size();
  for (const AddedToken& token : parts.added_tokens) size = std::max(size, static_cast<size_t>(token.id) + 1);
  parts.pieces.assign(size, std::string());
  std::vector<bool> has_piece(size, false), special(size, false);
  absl::flat_hash_map<std::string, int32_t> ids_by_piece;
  for (size_t id = 0; id < model_pieces.size(); ++id) {
    if (!model_pieces[id]) continue;
    parts.pieces[id] = *model_pieces[id];
    has_piece[id] = true;
    ids_by_piece.try_emplace(*model_pieces[id], static_cast<int32_t>(id));
  }
  for (const AddedToken& token : parts.added_tokens) {
    parts.pieces[token.id] = token.content;
    has_piece[token.id] = true;
    special[token.id] = token.special;
    ids_by_piece[token.content] = token.id;
  }
  DecodedToken replacement;
  replacement.bytes = replacement.leading_bytes = std::string(kReplacementCharacter);
  const std::optional<int32_t> unk = parts.model.unk_id();
  parts.decoded.resize(size);
  for (size_t id = 0; id < size; ++id) {
    if (special[id]) continue;     // special tokens add nothing to decoded text
    if (!has_piece[id]) continue;  // filled in below, once the unknown token is decoded
    NIBBLE_ASSIGN_OR_RETURN(parts.decoded[id], decoder.DecodeToken(parts.pieces[id]));
  }
  for (size_t id = 0; id < size; ++id) {
    if (!has_piece[id]) parts.decoded[id] = unk ? parts.decoded[*unk] : replacement;
  }
  NIBBLE_RETURN_IF_ERROR(ResolveBosEos(tokenizer, path.parent_path(), ids_by_piece, parts));
  return parts;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::filesystem::path& tokenizer_json) {
  std::error_code error;
  if (!std::filesystem::exists(tokenizer_json, error)) {
    return absl::NotFoundError(absl::StrCat(tokenizer_json.string(), ": cannot open (no such file)"));
  }
  NIBBLE_ASSIGN_OR_RETURN(const json tokenizer, ReadJson(tokenizer_json));
  NIBBLE_ASSIGN_OR_RETURN(HfParts parts, ParseTokenizer(tokenizer, tokenizer_json));
  return std::make_unique<HfTokenizer>(std::move(parts));
}

}  // namespace nibble
