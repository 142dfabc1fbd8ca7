#include "engine/tokenizer/hf_pre_tokenizer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/base/status_macros.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/hf_pattern.h"
#include "engine/tokenizer/json_fields.h"

namespace nibble {
namespace {

using nlohmann::json;

// GPT-2's pre-tokenization regex, which ByteLevel applies when use_regex is set.
constexpr absl::string_view kByteLevelRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// What happens to the matches of a split pattern (the "delimiters"), as tokenizers' SplitDelimiterBehavior.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  size_t begin;
  size_t end;
  bool is_delimiter;
};

// `piece` cut at the matches of `pattern`, the matches treated as `behavior` says, appended to `out`.
absl::Status SplitPiece(const std::string& piece, const HfPattern& pattern, bool invert, SplitBehavior behavior,
                        std::vector<std::string>& out) {
  std::vector<Span> spans;
  size_t covered = 0;
  NIBBLE_RETURN_IF_ERROR(pattern.FindAll(piece, [&](size_t begin, size_t end) {
    if (begin > covered) spans.push_back({covered, begin, invert});
    spans.push_back({begin, end, !invert});
    covered = end;
  }));
  if (covered < piece.size()) spans.push_back({covered, piece.size(), invert});

  std::vector<Span> kept;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Span& span : spans) {
        if (!span.is_delimiter) kept.push_back(span);
      }
      break;
    case SplitBehavior::kIsolated:
      kept = spans;
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& span : spans) {
        if (span.is_delimiter && !kept.empty()) {
          kept.back().end = span.end;
        } else {
          kept.push_back(span);
        }
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_delimiter && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back(*it);
        }
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case SplitBehavior::kContiguous: {
      bool previous_delimiter = false;
      for (const Span& span : spans) {
        if (span.is_delimiter && previous_delimiter) {
          kept.back().end = span.end;
        } else {
          kept.push_back(span);
        }
        previous_delimiter = span.is_delimiter;
      }
      break;
    }
  }
  for (const Span& span : kept) out.push_back(piece.substr(span.begin, span.end - span.begin));
  return absl::OkStatus();
}

absl::Status SplitAll(std::vector<std::string>& pieces, const HfPattern& pattern, bool invert, SplitBehavior behavior) {
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (const std::string& piece : pieces) NIBBLE_RETURN_IF_ERROR(SplitPiece(piece, pattern, invert, behavior, out));
  pieces = std::move(out);
  return absl::OkStatus();
}

class SplitPreTokenizer final : public HfPreTokenizer {
 public:
  SplitPreTokenizer(HfPattern pattern, bool invert, SplitBehavior behavior)
      : pattern_(std::move(pattern)), invert_(invert), behavior_(behavior) {}
  absl::Status PreTokenize(std::vector<std::string>& pieces, bool) const override {
    return SplitAll(pieces, pattern_, invert_, behavior_);
  }

 private:
  HfPattern pattern_;
  bool invert_;
  SplitBehavior behavior_;
};

class ByteLevelPreTokenizer final : public HfPreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<HfPattern> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  absl::Status PreTokenize(std::vector<std::string>& pieces, bool) const override {
    if (add_prefix_space_) {
      for (std::string& piece : pieces) {
        if (!absl::StartsWith(piece, " ")) piece.insert(0, " ");
      }
    }
    if (regex_) NIBBLE_RETURN_IF_ERROR(SplitAll(pieces, *regex_, false, SplitBehavior::kIsolated));
    for (std::string& piece : pieces) piece = BytesToByteLevel(piece);
    return absl::OkStatus();
  }

 private:
  bool add_prefix_space_;
  std::optional<HfPattern> regex_;
};

class MetaspacePreTokenizer final : public HfPreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, std::optional<HfPattern> split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(std::move(split)) {}
  absl::Status PreTokenize(std::vector<std::string>& pieces, bool starts_text) const override {
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string& piece = pieces[i];
      piece = absl::StrReplaceAll(piece, {{" ", replacement_}});
      const bool prepend = prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && starts_text && i == 0);
      if (prepend && !absl::StartsWith(piece, replacement_)) piece.insert(0, replacement_);
    }
    if (split_) NIBBLE_RETURN_IF_ERROR(SplitAll(pieces, *split_, false, SplitBehavior::kMergedWithNext));
    return absl::OkStatus();
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  std::optional<HfPattern> split_;  // the replacement as a String pattern, when the pieces split at it
};

class SequencePreTokenizer final : public HfPreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<HfPreTokenizer>> steps) : steps_(std::move(steps)) {}
  absl::Status PreTokenize(std::vector<std::string>& pieces, bool starts_text) const override {
    for (const auto& step : steps_) NIBBLE_RETURN_IF_ERROR(step->PreTokenize(pieces, starts_text));
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<HfPreTokenizer>> steps_;
};

absl::Status Malformed(const std::string& source, absl::string_view type, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": pre_tokenizer ", type, ": ", problem));
}

absl::StatusOr<bool> BoolField(const json& config, const char* field, bool fallback, const std::string& source,
                               absl::string_view type) {
  return OptionalBool(config, field, fallback, source, absl::StrCat("pre_tokenizer ", type));
}

absl::StatusOr<SplitBehavior> ParseBehavior(const json& config, const std::string& source) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string behavior,
                          OptionalString(config, "behavior", "", source, "pre_tokenizer Split"));
  if (behavior == "Removed") return SplitBehavior::kRemoved;
  if (behavior == "Isolated") return SplitBehavior::kIsolated;
  if (behavior == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (behavior == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (behavior == "Contiguous") return SplitBehavior::kContiguous;
  return Malformed(source, "Split",
                   absl::StrCat("behavior \"", behavior, "\" is not one of Removed, Isolated, ",
                                "MergedWithPrevious, MergedWithNext, Contiguous"));
}

absl::StatusOr<std::unique_ptr<HfPreTokenizer>> ParseMetaspace(const json& config, const std::string& source) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string replacement,
                          OptionalString(config, "replacement", "\xE2\x96\x81", source, "pre_tokenizer Metaspace"));
  if (replacement.empty()) return Malformed(source, "Metaspace", "\"replacement\" is empty");
  MetaspacePreTokenizer::Prepend prepend = MetaspacePreTokenizer::Prepend::kAlways;
  if (config.contains("prepend_scheme") && config["prepend_scheme"].is_string()) {
    const std::string scheme = config["prepend_scheme"].get<std::string>();
    if (scheme == "always") {
      prepend = MetaspacePreTokenizer::Prepend::kAlways;
    } else if (scheme == "first") {
      prepend = MetaspacePreTokenizer::Prepend::kFirst;
    } else if (scheme == "never") {
      prepend = MetaspacePreTokenizer::Prepend::kNever;
    } else {
      return Malformed(source, "Metaspace", absl::StrCat("prepend_scheme \"", scheme, "\" is not always/first/never"));
    }
  } else {
    NIBBLE_ASSIGN_OR_RETURN(const bool add_prefix_space,
                            BoolField(config, "add_prefix_space", true, source, "Metaspace"));
    if (!add_prefix_space) prepend = MetaspacePreTokenizer::Prepend::kNever;
  }
  NIBBLE_ASSIGN_OR_RETURN(const bool split, BoolField(config, "split", true, source, "Metaspace"));
  std::optional<HfPattern> split_pattern;
  if (split) {
    NIBBLE_ASSIGN_OR_RETURN(split_pattern, HfPattern::Parse(json{{"String", replacement}}, source, "Metaspace"));
  }
  return std::make_unique<MetaspacePreTokenizer>(replacement, prepend, std::move(split_pattern));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HfPreTokenizer>> ParseHfPreTokenizer(const json& config, const std::string& source) {
  if (config.is_null()) return nullptr;
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": a pre_tokenizer has no \"type\""));
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "Split") {
    NIBBLE_ASSIGN_OR_RETURN(HfPattern pattern,
                            HfPattern::Parse(config.value("pattern", json()), source, "pre_tokenizer Split"));
    NIBBLE_ASSIGN_OR_RETURN(const SplitBehavior behavior, ParseBehavior(config, source));
    NIBBLE_ASSIGN_OR_RETURN(const bool invert, BoolField(config, "invert", false, source, type));
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), invert, behavior);
  }
  if (type == "ByteLevel") {
    NIBBLE_ASSIGN_OR_RETURN(const bool add_prefix_space, BoolField(config, "add_prefix_space", true, source, type));
    NIBBLE_ASSIGN_OR_RETURN(const bool use_regex, BoolField(config, "use_regex", true, source, type));
    std::optional<HfPattern> regex;
    if (use_regex) {
      NIBBLE_ASSIGN_OR_RETURN(
          regex, HfPattern::Parse(json{{"Regex", std::string(kByteLevelRegex)}}, source, "pre_tokenizer ByteLevel"));
    }
    return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(regex));
  }
  if (type == "Digits") {
    NIBBLE_ASSIGN_OR_RETURN(const bool individual, BoolField(config, "individual_digits", false, source, type));
    NIBBLE_ASSIGN_OR_RETURN(HfPattern digits, HfPattern::Parse(json{{"Regex", "\\p{N}"}}, source, "Digits"));
    return std::make_unique<SplitPreTokenizer>(std::move(digits), false,
                                               individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }
  if (type == "Metaspace") return ParseMetaspace(config, source);
  if (type == "Sequence") {
    if (!config.contains("pretokenizers") || !config["pretokenizers"].is_array()) {
      return Malformed(source, type, "\"pretokenizers\" must be an array");
    }
    std::vector<std::unique_ptr<HfPreTokenizer>> steps;
    for (const json& step : config["pretokenizers"]) {
      NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<HfPreTokenizer> parsed, ParseHfPreTokenizer(step, source));
      if (parsed != nullptr) steps.push_back(std::move(parsed));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  return absl::InvalidArgumentError(absl::StrCat(source, ": pre_tokenizer type \"", type,
                                                 "\" is not supported (nibble reads Split, ByteLevel, Digits, ",
                                                 "Metaspace and Sequence)"));
}

}  // namespace nibble
