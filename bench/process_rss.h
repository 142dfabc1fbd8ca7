// The resident set size of another process on this machine, as Linux reports it (VmRSS in
// /proc/<pid>/status), and a thread that samples it at a fixed interval for as long as it lives.
//
// ReadRssBytes is thread-safe. An RssSampler samples from its constructor until Stop() or its destructor;
// Samples() may be called from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace nibble::bench {

// The flags every bench that watches a server's RSS takes: --server-pid a process id, --settle (seconds measured
// after the clients are gone) finite and not negative. InvalidArgument naming the flag.
absl::Status ValidateServerWatch(pid_t server_pid, double settle_seconds);

// VmRSS of `pid` in bytes. NotFound naming the file when the process is gone (or /proc is absent); Internal
// when the file has no VmRSS line (a zombie, a kernel thread).
absl::StatusOr<int64_t> ReadRssBytes(pid_t pid);

struct RssSample {
  double seconds = 0;  // since the sampler started
  int64_t bytes = 0;
};

class RssSampler {
 public:
  // Samples `pid` at once and then every `interval`. A failed read (the process exited) records nothing.
  RssSampler(pid_t pid, std::chrono::milliseconds interval);
  ~RssSampler();
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;

  // Takes one last sample and stops sampling; later calls do nothing.
  void Stop();
  // Takes a sample now (kept with the others) and returns it; bytes 0 when the read failed.
  RssSample Take();
  // Seconds since the sampler started.
  double Elapsed() const;
  std::vector<RssSample> Samples() const;

 private:
  void Loop();

  const pid_t pid_;
  const std::chrono::milliseconds interval_;
  const std::chrono::steady_clock::time_point start_;
  mutable std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stopping_ = false;
  std::vector<RssSample> samples_;
  std::thread thread_;  // last: starts once the members above exist
};

// A sample with a name for the table ("start", "middle", ...).
struct RssMark {
  std::string name;
  RssSample sample;
};

// The last sample taken at or before `seconds` (the first sample when none is that early); {0, 0} for none.
RssSample SampleAt(const std::vector<RssSample>& samples, double seconds);

// The marks as three table lines under `title`: names, MiB, and seconds since the sampler started.
std::string FormatRssMarks(const std::string& title, const std::vector<RssMark>& marks);

// The largest sample taken in [from, to] seconds ({0, 0} for none).
RssSample MaxSample(const std::vector<RssSample>& samples, double from, double to);

}  // namespace nibble::bench
