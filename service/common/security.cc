#include "service/common/security.h"

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "grpcpp/security/server_credentials.h"

namespace nibble::service {
namespace {

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> text = ReadTextFile(path);
  if (!text.ok()) return absl::Status(text.status().code(), absl::StrCat(flag, ": ", text.status().message()));
  return text;
}

}  // namespace

absl::StatusOr<std::string> ReadFirstLineOfFlagFile(absl::string_view flag, const std::string& path) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string text, ReadFlagFile(flag, path));
  return std::string(absl::StripAsciiWhitespace(absl::string_view(text).substr(0, text.find('\n'))));
}

bool EqualInConstantTime(absl::string_view given, absl::string_view expected) {
  return given.size() == expected.size() && CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

void RegisterTlsFlags(CLI::App& app, TlsOptions& o) {
  app.add_option("--tls-cert", o.cert, "PEM certificate chain (with --tls-key: serve TLS)")
      ->envname("NIBBLE_TLS_CERT")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", o.key, "PEM private key of --tls-cert")
      ->envname("NIBBLE_TLS_KEY")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", o.client_ca, "PEM CA bundle: require client certificates it signed (mTLS)")
      ->envname("NIBBLE_TLS_CLIENT_CA")
      ->check(CLI::ExistingFile);
}

absl::Status ValidateTlsOptions(const TlsOptions& o) {
  if (o.cert.empty() != o.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  if (!o.client_ca.empty() && o.cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca: needs --tls-cert and --tls-key (mTLS is TLS first)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsOptions& options) {
  if (options.cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(options.client_ca.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  NIBBLE_ASSIGN_OR_RETURN(pair.private_key, ReadFlagFile("--tls-key", options.key));
  NIBBLE_ASSIGN_OR_RETURN(pair.cert_chain, ReadFlagFile("--tls-cert", options.cert));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.client_ca.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFlagFile("--tls-client-ca", options.client_ca));
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<TokenCheck> TokenCheck::FromFile(absl::string_view flag, const std::string& token_file) {
  if (token_file.empty()) return TokenCheck("");
  NIBBLE_ASSIGN_OR_RETURN(const std::string token, ReadFirstLineOfFlagFile(flag, token_file));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", token_file, " holds no token"));
  }
  return TokenCheck(absl::StrCat("Bearer ", token));
}

grpc::Status TokenCheck::Check(const grpc::ServerContextBase& context) const {
  if (expected_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing \"authorization: Bearer <token>\" metadata");
  }
  const grpc::string_ref given = found->second;
  if (!EqualInConstantTime(absl::string_view(given.data(), given.size()), expected_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the bearer token is not the server's");
  }
  return grpc::Status::OK;
}

}  // namespace nibble::service
