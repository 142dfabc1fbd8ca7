// Transport security and bearer tokens for nibble's gRPC services (design.md: "Optional TLS (and mTLS) and
// bearer tokens on both services").
//
// TlsOptions and RegisterTlsFlags: the --tls-cert/--tls-key/--tls-client-ca flags every service takes (each
// also from its NIBBLE_* variable). MakeServerCredentials: plaintext without a certificate; TLS with one;
// mTLS (client certificates required and verified against the client CA) with the CA too. TokenCheck
// compares a call's "authorization" metadata with "Bearer <token>" in constant time; handlers call it first
// (gRPC's health service is not behind it, so that load balancers and kubelets can probe). All immutable
// once made: any thread.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"

namespace nibble::service {

struct TlsOptions {
  std::string cert;       // --tls-cert, NIBBLE_TLS_CERT: PEM certificate chain; with --tls-key enables TLS
  std::string key;        // --tls-key, NIBBLE_TLS_KEY: PEM private key
  std::string client_ca;  // --tls-client-ca, NIBBLE_TLS_CLIENT_CA: PEM CA; clients must present a cert it signed

  bool enabled() const { return !cert.empty(); }
  // "plaintext", "TLS" or "mTLS", for the start-up log line.
  const char* mode() const { return cert.empty() ? "plaintext" : (client_ca.empty() ? "TLS" : "mTLS"); }
};

// Adds the three flags above to `app`, bound to `options` (which must outlive the parse).
void RegisterTlsFlags(CLI::App& app, TlsOptions& options);
// The files come as a pair and the client CA needs TLS: InvalidArgument naming the flag.
absl::Status ValidateTlsOptions(const TlsOptions& options);

// Reads the PEM files named by `options` (NotFound / InvalidArgument naming the flag and file).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsOptions& options);

// The first line of the file `path` that `flag` named, surrounding whitespace dropped (errors name the flag).
absl::StatusOr<std::string> ReadFirstLineOfFlagFile(absl::string_view flag, const std::string& path);
// Whether `given` equals `expected`, in a time that does not tell where they differ.
bool EqualInConstantTime(absl::string_view given, absl::string_view expected);

class TokenCheck {
 public:
  // No token file: every call passes. Otherwise the file's first line (surrounding whitespace dropped),
  // which must not be empty. Errors name `flag` and the file.
  static absl::StatusOr<TokenCheck> FromFile(absl::string_view flag, const std::string& token_file);

  // OK, or UNAUTHENTICATED saying what is missing or wrong (never echoing the token).
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  explicit TokenCheck(std::string expected) : expected_(std::move(expected)) {}
  std::string expected_;  // "Bearer <token>"; empty: no check
};

}  // namespace nibble::service
