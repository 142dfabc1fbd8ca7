#include "service/inference_server/metrics.h"

#include <string>

#include "service/common/build_info.h"

namespace nibble::server {
namespace {

// vLLM's bucket choices (vllm/engine/metrics.py).
const prometheus::Histogram::BucketBoundaries kTimeToFirstTokenBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
    1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const prometheus::Histogram::BucketBoundaries kInterTokenBuckets = {
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
const prometheus::Histogram::BucketBoundaries kRequestLatencyBuckets = {
    0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
    30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

prometheus::Family<prometheus::Histogram>& Histogram(prometheus::Registry& registry, const std::string& name,
                                                     const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Counter>& Counter(prometheus::Registry& registry, const std::string& name,
                                                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

}  // namespace

ServerMetrics::ServerMetrics()
    : time_to_first_token_(Histogram(*registry_, "nibble_time_to_first_token_seconds",
                                     "Seconds from a request's arrival to its first generated token")),
      inter_token_latency_(Histogram(*registry_, "nibble_inter_token_latency_seconds",
                                     "Seconds between consecutive tokens of a request")),
      e2e_latency_(Histogram(*registry_, "nibble_e2e_request_latency_seconds",
                             "Seconds from a request's arrival to its end, for every finish reason")),
      queue_time_(Histogram(*registry_, "nibble_request_queue_time_seconds",
                            "Seconds a request waited before its first admission to the batch")),
      prompt_tokens_(Counter(*registry_, "nibble_prompt_tokens_total", "Prompt tokens of finished requests")),
      generation_tokens_(Counter(*registry_, "nibble_generation_tokens_total", "Tokens generated and streamed")),
      requests_(Counter(*registry_, "nibble_requests_total", "Finished requests by finish reason")),
      preemptions_(Counter(*registry_, "nibble_preemptions_total",
                           "Running requests that gave up their KV blocks and recomputed later")) {
  service::AddBuildInfo(*registry_);
}

void ServerMetrics::OnRequestFinished(const ModelLabel& model, FinishReason, const Usage& usage) {
  const prometheus::Labels labels = {{"model", model.name}};
  if (usage.time_to_first_token_seconds) {
    time_to_first_token_.Add(labels, kTimeToFirstTokenBuckets).Observe(*usage.time_to_first_token_seconds);
  }
  e2e_latency_.Add(labels, kRequestLatencyBuckets).Observe(usage.total_seconds);
  queue_time_.Add(labels, kRequestLatencyBuckets).Observe(usage.queue_seconds);
  prompt_tokens_.Add(labels).Increment(usage.prompt_tokens);
  generation_tokens_.Add(labels);  // present (at 0) for every model that served, as scrapers expect of a counter
  preemptions_.Add(labels);
}

void ServerMetrics::OnStreamFinished(const ModelLabel& model, FinishReason reason, int64_t streamed_tokens) {
  generation_tokens_.Add({{"model", model.name}}).Increment(static_cast<double>(streamed_tokens));
  requests_.Add({{"model", model.name}, {"finish_reason", std::string(FinishReasonName(reason))}}).Increment();
}

void ServerMetrics::OnTokenLatency(const ModelLabel& model, double seconds) {
  inter_token_latency_.Add({{"model", model.name}}, kInterTokenBuckets).Observe(seconds);
}

void ServerMetrics::OnPreemption(const ModelLabel& model) { preemptions_.Add({{"model", model.name}}).Increment(); }

}  // namespace nibble::server
