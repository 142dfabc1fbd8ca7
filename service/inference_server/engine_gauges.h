// Gauges read from the serving engine at scrape time (design.md, "Metrics"): nibble_requests_running,
// nibble_requests_waiting and nibble_kv_cache_usage_ratio per model (summed, resp. the highest, over its
// loaded versions), nibble_model_weight_bytes{model,version}, and nibble_gpu_memory_used_bytes /
// nibble_gpu_memory_total_bytes{gpu} when the backend is CUDA (the CPU backend has no device memory to report).
//
// Threading: Collect runs on the metrics server's threads and only calls ServingEngine::Stats, which never
// waits for the engine thread. The engine must outlive the collector's last Collect.
#pragma once

#include <memory>

#include "engine/serving/serving_engine.h"
#include "prometheus/collectable.h"

namespace nibble::server {

std::shared_ptr<prometheus::Collectable> MakeEngineGauges(const ServingEngine& engine);

}  // namespace nibble::server
