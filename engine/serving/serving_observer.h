// What the serving engine reports for metrics, without knowing Prometheus: the service implements
// ServingObserver and feeds its histograms and counters (design.md, "Metrics"). Gauges (running and waiting
// requests, KV cache usage, memory) are read from ServingEngine::Stats instead.
//
// Threading: every method is called on the engine thread, between steps. Implementations must return
// quickly and never block or call back into the engine. The engine keeps the observer alive (shared_ptr).
#pragma once

#include <string>

#include "engine/serving/generation_request.h"

namespace nibble {

// Names a loaded model in metrics and messages.
struct ModelLabel {
  std::string name;     // the model store's model name
  std::string version;  // its version ("3"), or any label that tells two loaded versions apart
};

class ServingObserver {
 public:
  virtual ~ServingObserver() = default;

  // A request ended, for any reason (called just before its final event is sent). usage.total_seconds is the
  // end-to-end latency; queue and first-token times are in `usage` too.
  virtual void OnRequestFinished(const ModelLabel& /*model*/, FinishReason /*reason*/, const Usage& /*usage*/) {}
  // A request produced a token `seconds` after its previous one (not called for its first token).
  virtual void OnTokenLatency(const ModelLabel& /*model*/, double /*seconds*/) {}
  // A running request gave up its KV blocks to let older ones grow; it recomputes when readmitted.
  virtual void OnPreemption(const ModelLabel& /*model*/) {}
};

}  // namespace nibble
