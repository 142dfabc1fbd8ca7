#include "service/client/connection.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace nibble::client {
namespace {

// The contents of `path`; NotFound naming the flag and the file when it cannot be read.
absl::StatusOr<std::string> ReadFileFor(const std::string& path, absl::string_view flag) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  if (!file || !(contents << file.rdbuf())) {
    return absl::NotFoundError(absl::StrCat(flag, ": cannot read ", path));
  }
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(const ConnectionOptions& options) {
  if (options.tls_client_cert.empty() != options.tls_client_key.empty()) {
    return absl::InvalidArgumentError("--tls-client-cert and --tls-client-key go together: give both or neither");
  }
  if (!options.tls && options.tls_ca.empty() && options.tls_client_cert.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadFileFor(options.tls_ca, "--tls-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = std::move(*ca);
  }
  if (!options.tls_client_cert.empty()) {
    absl::StatusOr<std::string> cert = ReadFileFor(options.tls_client_cert, "--tls-client-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFileFor(options.tls_client_key, "--tls-client-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = std::move(*cert);
    ssl.pem_private_key = std::move(*key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<Connection> Connection::Open(const ConnectionOptions& options) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server: give the service's HOST:PORT");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();
  std::string token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> contents = ReadFileFor(options.token_file, "--token-file");
    if (!contents.ok()) return contents.status();
    token = std::string(absl::StripAsciiWhitespace(*contents));
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--token-file: ", options.token_file, " holds no token"));
    }
  }
  grpc::ChannelArguments arguments;
  if (!options.tls_server_name.empty()) arguments.SetSslTargetNameOverride(options.tls_server_name);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(options.server, *credentials, arguments);
  return Connection(options, std::move(channel), std::move(token));
}

Connection::Connection(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel, std::string token)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      inference_(v1::Inference::NewStub(channel_)),
      quantizer_(v1::Quantizer::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)),
      token_(std::move(token)) {}

void Connection::Prepare(grpc::ClientContext& context) const {
  if (!token_.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  if (options_.timeout_seconds > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(
                             std::chrono::duration<double>(options_.timeout_seconds)));
  }
}

absl::Status Connection::CallStatus(const grpc::Status& status, absl::string_view rpc) const {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode share their numbering (both follow google.rpc.Code).
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(options_.server, ": ", rpc, ": ", status.error_message()));
}

}  // namespace nibble::client
