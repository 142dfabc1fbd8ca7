// The standard Prometheus process metrics (as client libraries export them) for Linux, read from /proc at
// scrape time: process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds. Thread-safe (reads files only).
#pragma once

#include <memory>

#include "prometheus/collectable.h"

namespace nibble::service {

std::shared_ptr<prometheus::Collectable> MakeProcessMetrics();

}  // namespace nibble::service
