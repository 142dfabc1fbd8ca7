#include "engine/tokenizer/hf_pattern.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {

absl::StatusOr<HfPattern> HfPattern::Parse(const nlohmann::json& config, const std::string& source,
                                           absl::string_view component) {
  HfPattern pattern;
  if (config.is_object() && config.contains("String") && config["String"].is_string()) {
    pattern.literal_ = config["String"].get<std::string>();
    if (pattern.literal_->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", component, " has an empty String pattern"));
    }
    return pattern;
  }
  if (config.is_object() && config.contains("Regex") && config["Regex"].is_string()) {
    NIBBLE_ASSIGN_OR_RETURN(Pcre2Regex regex, Pcre2Regex::Compile(config["Regex"].get<std::string>(),
                                                                  absl::StrCat(source, ": ", component, " pattern")));
    pattern.regex_.emplace(std::move(regex));
    return pattern;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": ", component, " pattern must be {\"String\": ...} or {\"Regex\": ...}"));
}

absl::Status HfPattern::FindAll(absl::string_view text, const std::function<void(size_t, size_t)>& on_match) const {
  if (regex_) return regex_->FindAll(text, on_match);
  size_t start = 0;
  while (true) {
    const size_t found = text.find(*literal_, start);
    if (found == absl::string_view::npos) return absl::OkStatus();
    on_match(found, found + literal_->size());
    start = found + literal_->size();
  }
}

absl::StatusOr<std::string> ReplaceAll(const HfPattern& pattern, absl::string_view text, absl::string_view content) {
  std::string out;
  size_t copied = 0;
  NIBBLE_RETURN_IF_ERROR(pattern.FindAll(text, [&](size_t begin, size_t end) {
    absl::StrAppend(&out, text.substr(copied, begin - copied));
    absl::StrAppend(&out, content);
    copied = end;
  }));
  absl::StrAppend(&out, text.substr(copied));
  return out;
}

}  // namespace nibble
