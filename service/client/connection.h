// A client's connection to a nibble service: one gRPC channel (plain text, TLS or mTLS) and the bearer
// token every call carries as `authorization: Bearer <token>` metadata. The channel carries a stub of each
// service (nibble-server's Inference, nibble-quantizer's Quantizer); a call reaches whichever one `server` runs.
//
// Open() reads the certificate and token files and creates the channel; nothing touches the network until
// the first call (gRPC connects lazily). Errors are statuses naming the file or the server. A Connection is
// movable, not copyable; its methods are const and safe from any thread, as the gRPC stub's are.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "nibble/v1/inference.grpc.pb.h"
#include "nibble/v1/quantizer.grpc.pb.h"

namespace nibble::client {

struct ConnectionOptions {
  std::string server;           // HOST:PORT of the service (required)
  bool tls = false;             // TLS even without the files below (the system's root certificates)
  std::string tls_ca;           // PEM of the CA that signed the server's certificate (implies TLS); empty: system roots
  std::string tls_client_cert;  // PEM certificate for mTLS, with tls_client_key (implies TLS); empty: none
  std::string tls_client_key;   // PEM private key of tls_client_cert
  std::string tls_server_name;  // name to check in the server's certificate; empty: the host part of `server`
  std::string token_file;      // file whose contents (surrounding whitespace trimmed) are the bearer token; empty: none
  double timeout_seconds = 0;  // deadline of each call; 0: none
};

class Connection {
 public:
  // InvalidArgument when `server` is empty, a client certificate comes without its key (or the other way
  // round) or the token file holds no token; NotFound naming the flag and a file that cannot be read.
  static absl::StatusOr<Connection> Open(const ConnectionOptions& options);

  const std::string& server() const { return options_.server; }
  v1::Inference::Stub& inference() const { return *inference_; }
  v1::Quantizer::Stub& quantizer() const { return *quantizer_; }
  grpc::health::v1::Health::Stub& health() const { return *health_; }

  // Prepares `context` for one call: the bearer token and the deadline (when the options set a timeout).
  void Prepare(grpc::ClientContext& context) const;

  // OK for an OK `status`; otherwise the same code with a message naming the server and the RPC:
  // "localhost:8600: Generate: model \"x\" not found".
  absl::Status CallStatus(const grpc::Status& status, absl::string_view rpc) const;

 private:
  Connection(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel, std::string token);

  ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::Quantizer::Stub> quantizer_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::string token_;
};

}  // namespace nibble::client
