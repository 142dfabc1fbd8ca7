// nibble-quantizer assembled: the job store (SQLite in --state-dir), the backend, the job manager with its
// worker, the Quantizer service with gRPC health and reflection, and the Prometheus endpoint. main.cc parses
// flags, starts one and stops it on SIGTERM; tests start one in-process on port 0.
//
// Lifetime and threading: Start returns a running server; Stop and the destructor are called from the owner's
// thread. Stop: health NOT_SERVING, the running job interrupted at its next block and queued again with its
// checkpoint, open RPCs given a few seconds, then the listener closed.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "service/quantizer_server/quantizer_options.h"

namespace nibble::quantizer_server {

class QuantizerServer {
 public:
  static absl::StatusOr<std::unique_ptr<QuantizerServer>> Start(const QuantizerOptions& options);
  virtual ~QuantizerServer() = default;

  virtual int port() const = 0;          // the gRPC port (the one picked when --listen had port 0)
  virtual int metrics_port() const = 0;  // the /metrics port (likewise)
  virtual void Stop() = 0;
};

}  // namespace nibble::quantizer_server
