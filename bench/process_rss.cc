#include "bench/process_rss.h"

#include <cmath>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace nibble::bench {

absl::Status ValidateServerWatch(pid_t server_pid, double settle_seconds) {
  if (server_pid <= 0) return absl::InvalidArgumentError("--server-pid must be a process id");
  if (settle_seconds < 0 || !std::isfinite(settle_seconds)) {
    return absl::InvalidArgumentError("--settle must be a finite number of seconds, 0 or more");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ReadRssBytes(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/status");
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open (is process ", pid, " running?)"));
  std::string line;
  while (std::getline(file, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    int64_t kib = 0;
    if (!absl::ConsumeSuffix(&rest, " kB") || !absl::SimpleAtoi(rest, &kib)) {
      return absl::InternalError(absl::StrCat(path, ": cannot read the VmRSS line \"", line, "\""));
    }
    return kib * 1024;
  }
  return absl::InternalError(absl::StrCat(path, ": no VmRSS line"));
}

RssSampler::RssSampler(pid_t pid, std::chrono::milliseconds interval)
    : pid_(pid), interval_(interval), start_(std::chrono::steady_clock::now()), thread_([this] { Loop(); }) {}

RssSampler::~RssSampler() { Stop(); }

void RssSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_requested_.notify_all();
  thread_.join();
  Take();
}

double RssSampler::Elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::vector<RssSample> RssSampler::Samples() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return samples_;
}

void RssSampler::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    Take();
    lock.lock();
    stop_requested_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

RssSample RssSampler::Take() {
  absl::StatusOr<int64_t> bytes = ReadRssBytes(pid_);
  std::lock_guard<std::mutex> lock(mutex_);
  const double seconds = Elapsed();  // under the lock: samples stay in time order
  if (!bytes.ok()) return {seconds, 0};
  samples_.push_back({seconds, *bytes});
  return samples_.back();
}

RssSample SampleAt(const std::vector<RssSample>& samples, double seconds) {
  if (samples.empty()) return {};
  RssSample found = samples.front();
  for (const RssSample& sample : samples) {
    if (sample.seconds > seconds) break;
    found = sample;
  }
  return found;
}

std::string FormatRssMarks(const std::string& title, const std::vector<RssMark>& marks) {
  std::string names = absl::StrFormat("%-16s", title), mib = absl::StrFormat("%-16s", ""),
              at = absl::StrFormat("%-16s", "");
  for (const RssMark& mark : marks) {
    absl::StrAppendFormat(&names, " %12s", mark.name);
    absl::StrAppendFormat(&mib, " %12.1f", mark.sample.bytes / (1024.0 * 1024.0));
    absl::StrAppendFormat(&at, " %12s", absl::StrFormat("(%.1f s)", mark.sample.seconds));
  }
  return absl::StrCat(names, "\n", mib, "\n", at, "\n");
}

RssSample MaxSample(const std::vector<RssSample>& samples, double from, double to) {
  RssSample max;
  for (const RssSample& sample : samples) {
    if (sample.seconds >= from && sample.seconds <= to && sample.bytes > max.bytes) max = sample;
  }
  return max;
}

}  // namespace nibble::bench
