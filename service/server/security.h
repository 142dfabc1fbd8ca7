// Transport security and the bearer token (design.md: "Optional TLS (and mTLS) and a bearer-token check").
//
// MakeServerCredentials: plaintext without --tls-cert; TLS with it; mTLS (client certificates required and
// verified against --tls-client-ca) with the CA too. TokenCheck compares the call's "authorization" metadata
// with "Bearer <token>" in constant time; the inference handlers call it first (gRPC's health service is
// not behind it, so that load balancers and kubelets can probe). Both are immutable once made: any thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"
#include "service/server/server_options.h"

namespace nibble::server {

// Reads the PEM files named by `options` (NotFound / InvalidArgument naming the flag and file).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerOptions& options);

class TokenCheck {
 public:
  // No token file: every call passes. Otherwise the file's first line (surrounding whitespace dropped),
  // which must not be empty.
  static absl::StatusOr<TokenCheck> FromFile(const std::string& token_file);

  // OK, or UNAUTHENTICATED saying what is missing or wrong (never echoing the token).
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  explicit TokenCheck(std::string expected) : expected_(std::move(expected)) {}
  std::string expected_;  // "Bearer <token>"; empty: no check
};

}  // namespace nibble::server
