// nibble-load's soak: the load of load_generator.h for a fixed time (LoadOptions::duration_seconds) while the
// server's resident memory is sampled, then a pause with no clients and one more sample. The table says
// whether memory stayed flat after warm-up by printing the figures; it judges nothing.
//
// RunSoak blocks the calling thread for the duration plus the settle time.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load_generator.h"
#include "bench/process_rss.h"

namespace nibble::bench {

struct SoakOptions {
  pid_t server_pid = 0;       // the nibble-server process on this machine (> 0)
  double settle_seconds = 5;  // wait after the last stream ended before the last sample (>= 0)
};

struct SoakReport {
  LoadReport load;
  std::vector<RssSample> rss;  // every sample, 4 a second, from just before the first request
  std::vector<RssMark> marks;  // start, warm-up (a quarter of the duration), middle, end, after the settle time
};

// InvalidArgument naming the flag; the load options must be timed (duration_seconds > 0).
absl::Status ValidateSoakOptions(const LoadOptions& load, const SoakOptions& soak);

// Runs the soak. NotFound when the server's /proc/<pid>/status cannot be read at the start.
absl::StatusOr<SoakReport> RunSoak(const client::Connection& connection, const LoadOptions& load,
                                   const SoakOptions& soak);

// FormatReport's table followed by the server's RSS at the marks and the range after warm-up.
std::string FormatSoakReport(const SoakReport& report, const LoadOptions& load, const SoakOptions& soak,
                             const std::string& server);

}  // namespace nibble::bench
