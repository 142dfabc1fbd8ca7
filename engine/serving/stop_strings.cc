#include "engine/serving/stop_strings.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"

namespace nibble {

StopStringFilter::StopStringFilter(std::vector<std::string> stop_strings) : stop_strings_(std::move(stop_strings)) {
  std::erase_if(stop_strings_, [](const std::string& stop) { return stop.empty(); });
}

StopStringFilter::Output StopStringFilter::Push(absl::string_view delta) {
  if (stopped_) return {};
  held_.append(delta.data(), delta.size());
  // Text before held_ was never the start of a stop string (see LongestPartialMatch), so a match lies in
  // held_; the earliest one wins.
  size_t match = std::string::npos;
  for (const std::string& stop : stop_strings_) match = std::min(match, held_.find(stop));
  if (match != std::string::npos) {
    stopped_ = true;
    Output output{held_.substr(0, match), true};
    held_.clear();
    return output;
  }
  const size_t send = held_.size() - LongestPartialMatch();
  Output output{held_.substr(0, send), false};
  held_.erase(0, send);
  return output;
}

std::string StopStringFilter::Finish() {
  if (stopped_) return "";
  return std::exchange(held_, std::string());
}

size_t StopStringFilter::LongestPartialMatch() const {
  size_t longest = 0;
  for (const std::string& stop : stop_strings_) {
    for (size_t length = std::min(held_.size(), stop.size() - 1); length > longest; --length) {
      if (absl::EndsWith(held_, absl::string_view(stop).substr(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}

}  // namespace nibble
