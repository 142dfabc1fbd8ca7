#include "service/quantizer_server/quantizer_metrics.h"

#include "absl/strings/ascii.h"
#include "service/common/build_info.h"

namespace nibble::quantizer_server {
namespace {

constexpr v1::JobState kStates[] = {v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED,
                                    v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED};

// A job takes seconds (a tiny model on a GPU) to hours (70B on a CPU).
const prometheus::Histogram::BucketBoundaries kJobBuckets = {1,   5,    15,   30,   60,   120,   300,
                                                             600, 1200, 1800, 3600, 7200, 14400, 28800};
// A block takes milliseconds (stories260K) to minutes (a 70B block on a CPU).
const prometheus::Histogram::BucketBoundaries kBlockBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                               5,    10,    20,   40,  80,   160, 320, 640};

}  // namespace

std::string JobStateLabel(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  constexpr absl::string_view kPrefix = "JOB_STATE_";
  if (absl::string_view(name).substr(0, kPrefix.size()) == kPrefix) name = name.substr(kPrefix.size());
  absl::AsciiStrToLower(&name);
  return name;
}

QuantizerMetrics::QuantizerMetrics()
    : jobs_(prometheus::BuildGauge()
                .Name("nibble_quant_jobs")
                .Help("Quantization jobs in the job store, by state")
                .Register(*registry_)),
      job_duration_(prometheus::BuildHistogram()
                        .Name("nibble_quant_job_duration_seconds")
                        .Help("Seconds from a job's start to its end (resumes included), by final state")
                        .Register(*registry_)),
      block_seconds_(prometheus::BuildHistogram()
                         .Name("nibble_quant_block_seconds")
                         .Help("Seconds to quantize one decoder block (calibration pass, scale and clip search)")
                         .Register(*registry_)
                         .Add({}, kBlockBuckets)),
      peak_device_bytes_(prometheus::BuildGauge()
                             .Name("nibble_quant_peak_gpu_memory_bytes")
                             .Help("Device memory in use at most during the running (or last) job; 0 on the CPU")
                             .Register(*registry_)
                             .Add({})) {
  service::AddBuildInfo(*registry_);
  for (v1::JobState state : kStates) jobs_.Add({{"state", JobStateLabel(state)}}).Set(0);
}

void QuantizerMetrics::OnJobCounts(const std::map<v1::JobState, int64_t>& counts) {
  for (v1::JobState state : kStates) {
    const auto found = counts.find(state);
    jobs_.Add({{"state", JobStateLabel(state)}}).Set(found == counts.end() ? 0.0 : static_cast<double>(found->second));
  }
}

void QuantizerMetrics::OnBlockDone(double seconds) { block_seconds_.Observe(seconds); }

void QuantizerMetrics::OnJobFinished(v1::JobState state, double seconds) {
  job_duration_.Add({{"state", JobStateLabel(state)}}, kJobBuckets).Observe(seconds);
}

void QuantizerMetrics::OnPeakDeviceBytes(uint64_t bytes) { peak_device_bytes_.Set(static_cast<double>(bytes)); }

}  // namespace nibble::quantizer_server
