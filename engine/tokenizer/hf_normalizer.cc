#include "engine/tokenizer/hf_normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/tokenizer/hf_pattern.h"

namespace nibble {
namespace {

using nlohmann::json;

// NFC, NFD, NFKC or NFKD: utf8proc_map with the form's options.
class UnicodeNormalizer final : public HfNormalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}

  absl::StatusOr<std::string> Normalize(std::string text) const override {
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t size =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                     &mapped, static_cast<utf8proc_option_t>(options_));
    if (size < 0) {
      return absl::InvalidArgumentError(absl::StrCat("Unicode normalization failed: ", utf8proc_errmsg(size)));
    }
    std::string out(reinterpret_cast<const char*>(mapped), static_cast<size_t>(size));
    std::free(mapped);
    return out;
  }

 private:
  int options_;
};

class PrependNormalizer final : public HfNormalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  absl::StatusOr<std::string> Normalize(std::string text) const override {
    if (text.empty()) return text;
    return absl::StrCat(prefix_, text);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public HfNormalizer {
 public:
  ReplaceNormalizer(HfPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::StatusOr<std::string> Normalize(std::string text) const override {
    return ReplaceAll(pattern_, text, content_);
  }

 private:
  HfPattern pattern_;
  std::string content_;
};

class SequenceNormalizer final : public HfNormalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<HfNormalizer>> steps) : steps_(std::move(steps)) {}
  absl::StatusOr<std::string> Normalize(std::string text) const override {
    for (const auto& step : steps_) {
      NIBBLE_ASSIGN_OR_RETURN(text, step->Normalize(std::move(text)));
    }
    return text;
  }

 private:
  std::vector<std::unique_ptr<HfNormalizer>> steps_;
};

absl::Status Malformed(const std::string& source, absl::string_view type, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": normalizer ", type, ": ", problem));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HfNormalizer>> ParseHfNormalizer(const json& config, const std::string& source) {
  if (config.is_null()) return nullptr;
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": a normalizer has no \"type\""));
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  if (type == "Prepend") {
    if (!config.contains("prepend") || !config["prepend"].is_string()) {
      return Malformed(source, type, "\"prepend\" must be a string");
    }
    return std::make_unique<PrependNormalizer>(config["prepend"].get<std::string>());
  }
  if (type == "Replace") {
    if (!config.contains("content") || !config["content"].is_string()) {
      return Malformed(source, type, "\"content\" must be a string");
    }
    NIBBLE_ASSIGN_OR_RETURN(HfPattern pattern,
                            HfPattern::Parse(config.value("pattern", json()), source, "normalizer Replace"));
    return std::make_unique<ReplaceNormalizer>(std::move(pattern), config["content"].get<std::string>());
  }
  if (type == "Sequence") {
    if (!config.contains("normalizers") || !config["normalizers"].is_array()) {
      return Malformed(source, type, "\"normalizers\" must be an array");
    }
    std::vector<std::unique_ptr<HfNormalizer>> steps;
    for (const json& step : config["normalizers"]) {
      NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<HfNormalizer> parsed, ParseHfNormalizer(step, source));
      if (parsed != nullptr) steps.push_back(std::move(parsed));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  return absl::InvalidArgumentError(absl::StrCat(source, ": normalizer type \"", type,
                                                 "\" is not supported (nibble reads NFC, NFD, NFKC, NFKD, ",
                                                 "Prepend, Replace and Sequence)"));
}

}  // namespace nibble
