// nibble-server assembled: the serving engine on one backend, the model manager watching the store, the
// Inference service with gRPC health (overall "" and one service name per model) and reflection, and the
// Prometheus endpoint. main.cc parses flags into ServerOptions, starts a Server and drains it on SIGTERM;
// tests start one in-process on port 0.
//
// Lifetime and threading: Start returns a running server; Drain and the destructor are called from one
// thread (the owner); ports are fixed once started.
#pragma once

#include <chrono>
#include <memory>

#include "absl/status/statusor.h"
#include "service/inference_server/server_options.h"

namespace nibble::server {

class Server {
 public:
  // Validates `options`, loads what the store serves, and starts listening (gRPC and metrics).
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  virtual ~Server() = default;  // shuts down at once (in-flight streams end with UNAVAILABLE)

  virtual int port() const = 0;          // the gRPC port (the one picked when --listen had port 0)
  virtual int metrics_port() const = 0;  // the /metrics port (likewise)

  // SIGTERM: health NOT_SERVING, no new requests (UNAVAILABLE), in-flight streams finish until `timeout`
  // and are then cut with UNAVAILABLE; returns once every RPC has ended.
  virtual void Drain(std::chrono::milliseconds timeout) = 0;
};

}  // namespace nibble::server
