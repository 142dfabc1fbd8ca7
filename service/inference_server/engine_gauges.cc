#include "service/inference_server/engine_gauges.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace nibble::server {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  return family;
}

void AddSample(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

class EngineGauges : public prometheus::Collectable {
 public:
  explicit EngineGauges(const ServingEngine& engine) : engine_(engine) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const EngineStats stats = engine_.Stats();
    struct PerModel {
      int32_t running = 0;
      int32_t waiting = 0;
      double kv_usage = 0;
    };
    std::map<std::string, PerModel> per_model;
    auto weights = Gauge("nibble_model_weight_bytes", "Device memory of a loaded model version's weights");
    for (const ModelStats& model : stats.models) {
      if (model.state == ModelState::kUnloaded) continue;
      PerModel& sum = per_model[model.label.name];
      sum.running += model.running;
      sum.waiting += model.waiting;
      sum.kv_usage = std::max(sum.kv_usage, model.kv_cache_usage);
      AddSample(weights, {{"model", model.label.name}, {"version", model.label.version}},
                static_cast<double>(model.weight_bytes));
    }
    auto running = Gauge("nibble_requests_running", "Requests in the batch (admitted, not finished)");
    auto waiting = Gauge("nibble_requests_waiting", "Requests accepted and waiting for a batch seat");
    auto kv_usage = Gauge("nibble_kv_cache_usage_ratio", "Fraction of the KV cache blocks in use, 0..1");
    for (const auto& [name, sum] : per_model) {
      AddSample(running, {{"model", name}}, sum.running);
      AddSample(waiting, {{"model", name}}, sum.waiting);
      AddSample(kv_usage, {{"model", name}}, sum.kv_usage);
    }
    std::vector<prometheus::MetricFamily> families = {running, waiting, kv_usage, weights};
    // Only a device that reports its memory (a GPU; the CPU backend reports 0 of 0) exports the GPU gauges. The
    // backend's name ("cuda:0 (NVIDIA H200)") is no test: comparing it with "cuda" hid them on every GPU.
    if (stats.device_memory.total_bytes > 0) {
      auto used = Gauge("nibble_gpu_memory_used_bytes", "GPU memory in use (CUDA runtime)");
      auto total = Gauge("nibble_gpu_memory_total_bytes", "GPU memory in total (CUDA runtime)");
      AddSample(used, {{"gpu", "0"}}, static_cast<double>(stats.device_memory.used_bytes));
      AddSample(total, {{"gpu", "0"}}, static_cast<double>(stats.device_memory.total_bytes));
      families.push_back(std::move(used));
      families.push_back(std::move(total));
    }
    return families;
  }

 private:
  const ServingEngine& engine_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeEngineGauges(const ServingEngine& engine) {
  return std::make_shared<EngineGauges>(engine);
}

}  // namespace nibble::server
