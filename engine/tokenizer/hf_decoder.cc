#include "engine/tokenizer/hf_decoder.h"

#include <cstdint>
#include <optional>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/base/status_macros.h"
#include "engine/base/utf8.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/hf_pattern.h"
#include "engine/tokenizer/json_fields.h"

namespace nibble {

using nlohmann::json;

namespace {

struct ReplaceStep {
  std::shared_ptr<const HfPattern> pattern;
  std::string content;
};
struct ByteFallbackStep {};
struct ByteLevelStep {};
struct MetaspaceStep {
  std::string replacement;
  bool drops_leading_space;
};
struct StripStep {
  std::string content;  // one character
  int start;            // how many of it to strip from the start ...
  int stop;             // ... and from the end
  bool whole_text;      // after Fuse: only the text's start is stripped
};

// "<0xNN>" -> the byte.
std::optional<char> FallbackByte(absl::string_view piece) {
  int value = 0;
  if (piece.size() != 6 || !absl::StartsWith(piece, "<0x") || piece.back() != '>' ||
      !absl::SimpleHexAtoi(piece.substr(3, 2), &value)) {
    return std::nullopt;
  }
  return static_cast<char>(value);
}

std::string Strip(std::string text, absl::string_view content, int start, int stop) {
  for (int i = 0; i < start && absl::StartsWith(text, content); ++i) text.erase(0, content.size());
  for (int i = 0; i < stop && absl::EndsWith(text, content); ++i) text.resize(text.size() - content.size());
  return text;
}

absl::Status Malformed(const std::string& source, absl::string_view type, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": decoder ", type, ": ", problem));
}

// Whether `text` is exactly one UTF-8 character: such a Replace gives the same result token by token as on
// the fused text.
bool IsOneCharacter(const std::string& text) {
  if (text.empty() || !IsValidUtf8(text)) return false;
  const auto lead = static_cast<unsigned char>(text[0]);
  const size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  return text.size() == length;
}

}  // namespace

struct HfDecoder::Step {
  std::variant<ReplaceStep, ByteFallbackStep, ByteLevelStep, MetaspaceStep, StripStep> kind;
};

HfDecoder::HfDecoder(std::vector<Step> steps) : steps_(std::move(steps)) {}
HfDecoder::~HfDecoder() = default;
HfDecoder::HfDecoder(HfDecoder&&) noexcept = default;

absl::StatusOr<DecodedToken> HfDecoder::DecodeToken(absl::string_view piece) const {
  DecodedToken token{std::string(piece), std::string(piece), false};
  bool is_fallback_byte = false;
  for (const Step& step : steps_) {
    if (const auto* replace = std::get_if<ReplaceStep>(&step.kind)) {
      NIBBLE_ASSIGN_OR_RETURN(token.bytes, ReplaceAll(*replace->pattern, token.bytes, replace->content));
      NIBBLE_ASSIGN_OR_RETURN(token.leading_bytes,
                              ReplaceAll(*replace->pattern, token.leading_bytes, replace->content));
    } else if (std::holds_alternative<ByteFallbackStep>(step.kind)) {
      if (const std::optional<char> byte = FallbackByte(token.bytes)) {
        token.bytes = token.leading_bytes = std::string(1, *byte);
        is_fallback_byte = true;
      }
    } else if (std::holds_alternative<ByteLevelStep>(step.kind)) {
      // A piece holding characters outside the byte-level alphabet (an added token) keeps its own bytes.
      if (std::optional<std::string> bytes = ByteLevelToBytes(token.bytes)) token.bytes = *std::move(bytes);
      if (std::optional<std::string> bytes = ByteLevelToBytes(token.leading_bytes)) {
        token.leading_bytes = *std::move(bytes);
      }
    } else if (const auto* metaspace = std::get_if<MetaspaceStep>(&step.kind)) {
      token.bytes = absl::StrReplaceAll(token.bytes, {{metaspace->replacement, " "}});
      token.leading_bytes = absl::StrReplaceAll(token.leading_bytes, {{metaspace->replacement, " "}});
      if (metaspace->drops_leading_space && absl::StartsWith(token.leading_bytes, " ")) {
        token.leading_bytes.erase(0, 1);
      }
    } else if (const auto* strip = std::get_if<StripStep>(&step.kind)) {
      if (!strip->whole_text) token.bytes = Strip(std::move(token.bytes), strip->content, strip->start, strip->stop);
      token.leading_bytes =
          Strip(std::move(token.leading_bytes), strip->content, strip->start, strip->whole_text ? 0 : strip->stop);
    }
  }
  token.may_split_character = is_fallback_byte || !IsValidUtf8(token.bytes) || !IsValidUtf8(token.leading_bytes);
  return token;
}

namespace {

// Appends the steps of `config` to `steps`; `fused`: a Fuse came before (and is set by one).
absl::Status ParseSteps(const json& config, const std::string& source, std::vector<HfDecoder::Step>& steps,
                        bool& fused);

}  // namespace

absl::StatusOr<HfDecoder> ParseHfDecoder(const json& config, const std::string& source) {
  if (config.is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": the tokenizer has no decoder (nibble needs one)"));
  }
  std::vector<HfDecoder::Step> steps;
  bool fused = false;
  NIBBLE_RETURN_IF_ERROR(ParseSteps(config, source, steps, fused));
  return HfDecoder(std::move(steps));
}

namespace {

absl::Status ParseSteps(const json& config, const std::string& source, std::vector<HfDecoder::Step>& steps,
                        bool& fused) {
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": a decoder has no \"type\""));
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "Sequence") {
    if (!config.contains("decoders") || !config["decoders"].is_array()) {
      return Malformed(source, type, "\"decoders\" must be an array");
    }
    for (const json& step : config["decoders"]) NIBBLE_RETURN_IF_ERROR(ParseSteps(step, source, steps, fused));
    return absl::OkStatus();
  }
  if (type == "Fuse") {
    fused = true;
    return absl::OkStatus();
  }
  if (type == "ByteFallback" || type == "ByteLevel") {
    if (fused) return Malformed(source, type, "after Fuse is not supported");
    if (type == "ByteFallback") {
      steps.push_back({ByteFallbackStep{}});
    } else {
      steps.push_back({ByteLevelStep{}});
    }
    return absl::OkStatus();
  }
  if (type == "Replace") {
    if (!config.contains("content") || !config["content"].is_string()) {
      return Malformed(source, type, "\"content\" must be a string");
    }
    NIBBLE_ASSIGN_OR_RETURN(HfPattern pattern,
                            HfPattern::Parse(config.value("pattern", json()), source, "decoder Replace"));
    if (fused && !(pattern.literal() && IsOneCharacter(*pattern.literal()))) {
      return Malformed(source, type, "after Fuse only a one-character String pattern is supported");
    }
    steps.push_back(
        {ReplaceStep{std::make_shared<const HfPattern>(std::move(pattern)), config["content"].get<std::string>()}});
    return absl::OkStatus();
  }
  if (type == "Metaspace") {
    if (fused) return Malformed(source, type, "after Fuse is not supported");
    NIBBLE_ASSIGN_OR_RETURN(const std::string replacement,
                            OptionalString(config, "replacement", "\xE2\x96\x81", source, "decoder Metaspace"));
    bool drops_leading_space = true;
    if (config.contains("prepend_scheme") && config["prepend_scheme"].is_string()) {
      drops_leading_space = config["prepend_scheme"].get<std::string>() != "never";
    } else if (config.contains("add_prefix_space") && config["add_prefix_space"].is_boolean()) {
      drops_leading_space = config["add_prefix_space"].get<bool>();
    }
    steps.push_back({MetaspaceStep{replacement, drops_leading_space}});
    return absl::OkStatus();
  }
  if (type == "Strip") {
    NIBBLE_ASSIGN_OR_RETURN(const std::string content, OptionalString(config, "content", " ", source, "decoder Strip"));
    NIBBLE_ASSIGN_OR_RETURN(const int64_t start, OptionalInt(config, "start", 0, source, "decoder Strip"));
    NIBBLE_ASSIGN_OR_RETURN(const int64_t stop, OptionalInt(config, "stop", 0, source, "decoder Strip"));
    if (content.empty() || start < 0 || stop < 0 || start > INT32_MAX || stop > INT32_MAX)
      return Malformed(source, type, "needs a content and start, stop in [0, 2^31)");
    if (fused && stop > 0) return Malformed(source, type, "of the text's end (stop > 0 after Fuse) is not supported");
    steps.push_back({StripStep{content, static_cast<int>(start), static_cast<int>(stop), fused}});
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(source, ": decoder type \"", type,
                                                 "\" is not supported (nibble reads ByteLevel, Metaspace, ",
                                                 "ByteFallback, Fuse, Strip, Replace and Sequence)"));
}

}  // namespace

}  // namespace nibble
