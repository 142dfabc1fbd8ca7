#include "bench/soak.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace nibble::bench {
namespace {

constexpr std::chrono::milliseconds kSampleInterval(250);

double Mib(int64_t bytes) { return bytes / (1024.0 * 1024.0); }

}  // namespace

absl::Status ValidateSoakOptions(const LoadOptions& load, const SoakOptions& soak) {
  if (absl::Status status = ValidateLoadOptions(load); !status.ok()) return status;
  if (load.duration_seconds <= 0) return absl::InvalidArgumentError("--duration must be positive for a soak");
  return ValidateServerWatch(soak.server_pid, soak.settle_seconds);
}

absl::StatusOr<SoakReport> RunSoak(const client::Connection& connection, const LoadOptions& load,
                                   const SoakOptions& soak) {
  if (absl::Status status = ValidateSoakOptions(load, soak); !status.ok()) return status;
  if (absl::StatusOr<int64_t> rss = ReadRssBytes(soak.server_pid); !rss.ok()) {
    return absl::Status(rss.status().code(), absl::StrCat("--server-pid: ", rss.status().message()));
  }
  RssSampler sampler(soak.server_pid, kSampleInterval);
  SoakReport report;
  const RssSample start = sampler.Take();
  absl::StatusOr<LoadReport> ran = RunLoad(connection, load);
  if (!ran.ok()) return ran.status();
  report.load = *std::move(ran);
  const RssSample end = sampler.Take();
  std::this_thread::sleep_for(std::chrono::duration<double>(soak.settle_seconds));
  const RssSample after = sampler.Take();
  sampler.Stop();
  report.rss = sampler.Samples();
  report.marks = {{"start", start},
                  {"warm-up", SampleAt(report.rss, start.seconds + load.duration_seconds / 4)},
                  {"middle", SampleAt(report.rss, start.seconds + load.duration_seconds / 2)},
                  {"end", end},
                  {absl::StrFormat("+%.0f s idle", soak.settle_seconds), after}};
  return report;
}

std::string FormatSoakReport(const SoakReport& report, const LoadOptions& load, const SoakOptions& soak,
                             const std::string& server) {
  std::string out = FormatReport(report.load, load, server);
  out += FormatRssMarks("server RSS (MiB)", report.marks);
  const RssSample warm = report.marks[1].sample, end = report.marks[3].sample;
  int64_t low = warm.bytes, high = warm.bytes;
  for (const RssSample& sample : report.rss) {
    if (sample.seconds < warm.seconds || sample.seconds > end.seconds || sample.bytes == 0) continue;
    low = std::min(low, sample.bytes);
    high = std::max(high, sample.bytes);
  }
  const double growth = Mib(end.bytes - warm.bytes);
  absl::StrAppendFormat(&out, "%-16s min %.1f, max %.1f MiB (pid %d, %d samples); end - warm-up %+.1f MiB (%+.1f%%)\n",
                        "after warm-up", Mib(low), Mib(high), soak.server_pid, report.rss.size(), growth,
                        warm.bytes > 0 ? 100.0 * (end.bytes - warm.bytes) / warm.bytes : 0.0);
  return out;
}

}  // namespace nibble::bench
