// The inference metrics that are events (design.md, "Metrics"): latency histograms with vLLM's bucket
// choices, token and request counters, preemptions, and nibble_build_info. ServerMetrics is the engine's
// ServingObserver; the gauges read from ServingEngine::Stats live in engine_gauges.h.
//
// nibble_requests_total and nibble_generation_tokens_total count what each client received, so they come
// from the Generate stream (OnStreamFinished), not from the engine: a stream cut by its deadline is an
// "error" whether the engine or gRPC noticed the deadline first, and tokens the engine generated but the
// stream never wrote (the client was gone) are not counted.
//
// Threading: the observer methods run on the engine thread, OnStreamFinished on gRPC's (each is a few
// lock-free increments plus a label lookup); the registry is read by the metrics HTTP server's threads. All
// are thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/serving/serving_observer.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace nibble::server {

class ServerMetrics : public ServingObserver {
 public:
  ServerMetrics();

  // What the metrics endpoint serves (together with the gauge collectors).
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void OnRequestFinished(const ModelLabel& model, FinishReason reason, const Usage& usage) override;
  void OnTokenLatency(const ModelLabel& model, double seconds) override;
  void OnPreemption(const ModelLabel& model) override;

  // A Generate stream accepted by the engine ended: `reason` as its client saw it, `streamed_tokens` the
  // token ids of the chunks written to it.
  void OnStreamFinished(const ModelLabel& model, FinishReason reason, int64_t streamed_tokens);

 private:
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Histogram>& time_to_first_token_;
  prometheus::Family<prometheus::Histogram>& inter_token_latency_;
  prometheus::Family<prometheus::Histogram>& e2e_latency_;
  prometheus::Family<prometheus::Histogram>& queue_time_;
  prometheus::Family<prometheus::Counter>& prompt_tokens_;
  prometheus::Family<prometheus::Counter>& generation_tokens_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& preemptions_;
};

}  // namespace nibble::server
