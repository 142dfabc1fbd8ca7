#include "service/common/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace nibble::service {
namespace {

prometheus::MetricFamily One(std::string name, std::string help, prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

// Seconds since the epoch at which the system booted (/proc/stat "btime"), 0 when unknown.
double BootTime() {
  std::ifstream stat("/proc/stat");
  std::string key;
  double value = 0;
  while (stat >> key) {
    if (key == "btime") {
      stat >> value;
      return value;
    }
    stat.ignore(1 << 16, '\n');
  }
  return 0;
}

class ProcessMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::ifstream file("/proc/self/stat");
    const std::string line((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces) start at field 3, "state".
    const size_t close = line.rfind(')');
    if (close == std::string::npos) return {};
    std::istringstream rest(line.substr(close + 2));
    std::vector<std::string> fields((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
    if (fields.size() < 22) return {};
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    auto field = [&](int number) { return std::stod(fields[number - 3]); };  // proc(5) numbering
    size_t fds = 0;
    std::error_code error;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
         !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
      ++fds;
    }
    using prometheus::MetricType;
    return {
        One("process_cpu_seconds_total", "User and system CPU time spent, seconds", MetricType::Counter,
            (field(14) + field(15)) / ticks),
        One("process_resident_memory_bytes", "Resident memory size", MetricType::Gauge, field(24) * page),
        One("process_virtual_memory_bytes", "Virtual memory size", MetricType::Gauge, field(23)),
        One("process_start_time_seconds", "Start time of the process since the Unix epoch", MetricType::Gauge,
            BootTime() + field(22) / ticks),
        One("process_open_fds", "Open file descriptors", MetricType::Gauge, static_cast<double>(fds)),
    };
  }
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeProcessMetrics() { return std::make_shared<ProcessMetrics>(); }

}  // namespace nibble::service
