// nibble-load's never-reading clients: opens a number of Generate streams whose responses are never read
// (synchronous gRPC readers on which Read is never called, so the server's writes back up once the HTTP/2
// flow-control windows are full), holds them open, then cancels them, sampling the server's resident memory
// before, during and after. It measures what a server does with stalled streams; it judges nothing.
//
// RunNeverRead blocks the calling thread for the hold and settle times.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load_generator.h"
#include "bench/process_rss.h"

namespace nibble::bench {

struct NeverReadOptions {
  int32_t streams = 200;      // streams opened (> 0)
  double hold_seconds = 30;   // how long they stay open, unread (> 0)
  pid_t server_pid = 0;       // the nibble-server process on this machine (> 0)
  double settle_seconds = 5;  // wait after closing them before the last sample (>= 0)
};

struct NeverReadReport {
  int32_t streams = 0;
  std::vector<RssSample> rss;               // every sample, 4 a second
  std::vector<RssMark> marks;               // before, opened, middle of the hold, end of the hold, after closing
  RssSample hold_max;                       // the largest sample while the streams were open
  std::map<std::string, int64_t> statuses;  // each stream's status when closed, by code name
  double open_seconds = 0;                  // time to start every call
};

// InvalidArgument naming the flag.
absl::Status ValidateNeverReadOptions(const LoadOptions& load, const NeverReadOptions& never_read);

// Opens the streams (requests as load_generator.h makes them from `load`), holds them, cancels them. NotFound
// when the server's /proc/<pid>/status cannot be read at the start.
absl::StatusOr<NeverReadReport> RunNeverRead(const client::Connection& connection, const LoadOptions& load,
                                             const NeverReadOptions& never_read);

// The table: a header line describing the run, the RSS marks, the largest sample and the statuses at close.
std::string FormatNeverReadReport(const NeverReadReport& report, const LoadOptions& load,
                                  const NeverReadOptions& never_read, const std::string& server);

}  // namespace nibble::bench
