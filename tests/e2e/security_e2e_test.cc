// TLS, mTLS and the bearer token over loopback, with a self-signed certificate made by the openssl command
// for this test: no token, or a wrong one, is UNAUTHENTICATED on every inference RPC; the right one works;
// health needs none; a plaintext client cannot talk to a TLS server; mTLS refuses a client without a
// certificate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

constexpr char kToken[] = "s3cret-token";

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
    ASSERT_TRUE(PublishStories(store_.path()).ok());
    cert_ = (dir_.path() / "cert.pem").string();
    key_ = (dir_.path() / "key.pem").string();
    auto openssl = Subprocess::Spawn({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key_,
                                      "-out", cert_, "-days", "1", "-subj", "/CN=localhost", "-addext",
                                      "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    ASSERT_TRUE(openssl.ok()) << openssl.status();
    ASSERT_EQ(openssl->Wait(), 0) << openssl->output();
    std::ofstream(dir_.path() / "token") << kToken << "\n";
  }

  server::ServerOptions TlsOptions() {
    server::ServerOptions options = LoopbackOptions(store_.path());
    options.tls.cert = cert_;
    options.tls.key = key_;
    options.auth_token_file = (dir_.path() / "token").string();
    return options;
  }

  std::shared_ptr<grpc::Channel> TlsChannel(const TestServer& server, bool with_client_cert = false) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadTextFile(cert_).value();
    if (with_client_cert) {
      ssl.pem_private_key = ReadTextFile(key_).value();
      ssl.pem_cert_chain = ssl.pem_root_certs;
    }
    return grpc::CreateChannel(server.address(), grpc::SslCredentials(ssl));
  }

  static grpc::Status List(grpc::Channel& channel, const std::string& token) {
    auto stub = v1::Inference::NewStub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListModelsResponse response;
    return stub->ListModels(&context, v1::ListModelsRequest(), &response);
  }

  static StreamResult Generate(grpc::Channel& channel, const std::string& token) {
    auto stub = v1::Inference::NewStub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return RunStream(*stub, GreedyRequest("Once upon a time", 8), &context);
  }

  testing::TempDir store_;
  testing::TempDir dir_;
  std::string cert_;
  std::string key_;
};

TEST_F(SecurityTest, TlsWithTokenRefusesMissingOrWrongTokensAndAcceptsTheRightOne) {
  auto server = StartServer(TlsOptions());
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = TlsChannel(*server);

  EXPECT_EQ(Generate(*channel, "").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(*channel, "wrong").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(List(*channel, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(List(*channel, "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);

  const StreamResult good = Generate(*channel, kToken);
  ASSERT_TRUE(good.status.ok()) << good.status.error_message();
  EXPECT_FALSE(good.tokens().empty());
  EXPECT_TRUE(List(*channel, kToken).ok());
  // Health needs no token (load balancers and kubelets probe it).
  EXPECT_EQ(HealthStatus(*channel, "").value_or(-1), 1);
  // Plaintext cannot reach a TLS server.
  auto plaintext = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(List(*plaintext, kToken).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, MutualTlsNeedsAClientCertificate) {
  server::ServerOptions options = TlsOptions();
  options.tls.client_ca = cert_;  // the self-signed certificate is its own CA
  auto server = StartServer(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE(List(*TlsChannel(*server), kToken).error_code(), grpc::StatusCode::OK);
  EXPECT_TRUE(List(*TlsChannel(*server, /*with_client_cert=*/true), kToken).ok());
}

TEST_F(SecurityTest, BadSecurityOptionsAreRefusedNamingTheFlag) {
  server::ServerOptions options = LoopbackOptions(store_.path());
  options.tls.cert = cert_;
  auto refused = server::Server::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("--tls-key"));
  std::ofstream(dir_.path() / "empty-token") << "\n";
  options = LoopbackOptions(store_.path());
  options.auth_token_file = (dir_.path() / "empty-token").string();
  refused = server::Server::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("--auth-token-file"));
}

}  // namespace
}  // namespace nibble::e2e
