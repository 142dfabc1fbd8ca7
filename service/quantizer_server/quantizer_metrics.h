// nibble-quantizer's metrics (design.md, "Metrics"): nibble_quant_jobs{state} (jobs in the store by state,
// every state listed, 0 included), nibble_quant_job_duration_seconds{state} (start to end of each finished job
// that ran), nibble_quant_block_seconds (each decoder block quantized), nibble_quant_peak_gpu_memory_bytes (the
// device memory the running or last job held at most), and nibble_build_info. Process metrics come from
// service/common/process_metrics.h beside it.
//
// Threading: the JobObserver methods are called from the job manager's threads; the registry is read by the
// metrics HTTP server's. prometheus-cpp's metrics are thread-safe.
#pragma once

#include <memory>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "service/quantizer_server/job_manager.h"

namespace nibble::quantizer_server {

class QuantizerMetrics : public JobObserver {
 public:
  QuantizerMetrics();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void OnJobCounts(const std::map<v1::JobState, int64_t>& counts) override;
  void OnBlockDone(double seconds) override;
  void OnJobFinished(v1::JobState state, double seconds) override;
  void OnPeakDeviceBytes(uint64_t bytes) override;

 private:
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Histogram>& job_duration_;
  prometheus::Histogram& block_seconds_;
  prometheus::Gauge& peak_device_bytes_;
};

// "queued", "running", "succeeded", "failed", "cancelled": the state label's values.
std::string JobStateLabel(v1::JobState state);

}  // namespace nibble::quantizer_server
