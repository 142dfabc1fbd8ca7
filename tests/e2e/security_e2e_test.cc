// TLS, mTLS and the bearer token over loopback, with a self-signed certificate made by the openssl command
// for this test: no token, or a wrong one, is UNAUTHENTICATED on every inference RPC; the right one works;
// health needs none; a plaintext client cannot talk to a TLS server; mTLS refuses a client without a
// certificate. Admin calls (LoadModel, UnloadModel): the admin token, loopback peers with
// --allow-loopback-admin (a peer on this host's other address is refused), or nobody, with a hint.
// Reflection is behind the same token as the service it describes; /metrics behind basic auth when asked.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <fstream>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

constexpr char kToken[] = "s3cret-token";
constexpr char kAdminToken[] = "adm1n-token";

// An IPv4 address of this host that is not loopback (an up interface's), or nullopt.
std::optional<std::string> NonLoopbackAddress() {
  ifaddrs* addresses = nullptr;
  if (getifaddrs(&addresses) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (const ifaddrs* a = addresses; a != nullptr && !found; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET || (a->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET_ADDRSTRLEN];
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) found = text;
  }
  freeifaddrs(addresses);
  return found;
}

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
    std::ofstream(dir_.path() / "admin-token") << kAdminToken << "\n";
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

  // LoadModel of kModel's latest version, then UnloadModel, each with `token` (none when empty): the first
  // refusal, or OK.
  static grpc::Status LoadThenUnload(grpc::Channel& channel, const std::string& token) {
    auto stub = v1::Inference::NewStub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
    grpc::ClientContext load_context;
    if (!token.empty()) load_context.AddMetadata("authorization", "Bearer " + token);
    load_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::LoadModelRequest load;
    load.set_model(kModel);
    v1::LoadModelResponse loaded;
    if (grpc::Status status = stub->LoadModel(&load_context, load, &loaded); !status.ok()) return status;
    grpc::ClientContext unload_context;
    if (!token.empty()) unload_context.AddMetadata("authorization", "Bearer " + token);
    unload_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::UnloadModelRequest unload;
    unload.set_model(kModel);
    v1::UnloadModelResponse unloaded;
    return stub->UnloadModel(&unload_context, unload, &unloaded);
  }

  // Plaintext on loopback with the client token, admin calls neither by token nor from loopback.
  server::ServerOptions TokenOptions() {
    server::ServerOptions options = LoopbackOptions(store_.path());
    options.auth_token_file = (dir_.path() / "token").string();
    options.allow_loopback_admin = false;
    return options;
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

TEST_F(SecurityTest, AdminCallsNeedTheAdminTokenAndTheClientTokenIsNotIt) {
  server::ServerOptions options = TokenOptions();
  options.admin_token_file = (dir_.path() / "admin-token").string();
  auto server = StartServer(options);
  ASSERT_TRUE(server.ok()) << server.status();

  EXPECT_EQ(LoadThenUnload(*server->channel, kToken).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(LoadThenUnload(*server->channel, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status admin = LoadThenUnload(*server->channel, kAdminToken);
  EXPECT_TRUE(admin.ok()) << admin.error_message();
  // The admin token is for admin calls only; clients keep theirs.
  EXPECT_EQ(List(*server->channel, kAdminToken).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(List(*server->channel, kToken).ok());
}

TEST_F(SecurityTest, WithoutAdminFlagsAdminCallsArePermissionDeniedWithTheWayToEnableThem) {
  auto server = StartServer(TokenOptions());
  ASSERT_TRUE(server.ok()) << server.status();
  const grpc::Status refused = LoadThenUnload(*server->channel, kToken);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(),
              ::testing::HasSubstr("start nibble-server with --admin-token-file, or --allow-loopback-admin"));
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  v1::UnloadModelResponse unloaded;
  v1::UnloadModelRequest unload;
  unload.set_model(kModel);
  EXPECT_EQ(server->stub->UnloadModel(&context, unload, &unloaded).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Generate(*server->channel, kToken).status.ok());
}

TEST_F(SecurityTest, LoopbackAdminAllowsLoopbackPeersThatSendTheClientToken) {
  server::ServerOptions options = TokenOptions();
  options.allow_loopback_admin = true;
  auto server = StartServer(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const grpc::Status allowed = LoadThenUnload(*server->channel, kToken);  // from 127.0.0.1
  EXPECT_TRUE(allowed.ok()) << allowed.error_message();
  EXPECT_EQ(LoadThenUnload(*server->channel, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityTest, LoopbackAdminRefusesAPeerOnAnotherAddress) {
  const std::optional<std::string> address = NonLoopbackAddress();
  if (!address) GTEST_SKIP() << "this host has no non-loopback IPv4 address";
  server::ServerOptions options = LoopbackOptions(store_.path());  // --allow-loopback-admin, no tokens
  options.listen = "0.0.0.0:0";
  auto server = StartServer(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto outside =
      grpc::CreateChannel(absl::StrCat(*address, ":", server->server->port()), grpc::InsecureChannelCredentials());
  const grpc::Status refused = LoadThenUnload(*outside, "");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("loopback only"));
  EXPECT_TRUE(List(*outside, "").ok());  // only admin calls are kept to loopback
  EXPECT_TRUE(LoadThenUnload(*server->channel, "").ok());
}

TEST_F(SecurityTest, AdminTokenAndLoopbackAdminTogetherAreRefused) {
  server::ServerOptions options = LoopbackOptions(store_.path());
  options.admin_token_file = (dir_.path() / "admin-token").string();
  auto refused = server::Server::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("--allow-loopback-admin"));
  std::ofstream(dir_.path() / "empty-admin-token") << "\n";
  options.allow_loopback_admin = false;
  options.admin_token_file = (dir_.path() / "empty-admin-token").string();
  refused = server::Server::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("--admin-token-file"));
}

TEST_F(SecurityTest, ReflectionNeedsTheTokenOfTheServiceItDescribes) {
  auto server = StartServer(TokenOptions());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(ReflectionListServices(*server->channel).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ReflectionListServices(*server->channel, "wrong").status().code(), absl::StatusCode::kUnauthenticated);
  const absl::StatusOr<std::string> services = ReflectionListServices(*server->channel, kToken);
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, ::testing::HasSubstr("nibble.v1.Inference"));

  // With the token, the service's file and its imports come back (each once), and an unknown symbol is a
  // NOT_FOUND answer on a stream that goes on.
  namespace reflection = grpc::reflection::v1alpha;
  auto stub = reflection::ServerReflection::NewStub(server->channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);
  reflection::ServerReflectionRequest request;
  request.set_file_containing_symbol("nibble.v1.Inference");
  ASSERT_TRUE(stream->Write(request));
  reflection::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_file_descriptor_response()) << response.DebugString();
  std::vector<std::string> files;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    files.push_back(file.name());
    if (file.name() == "nibble/v1/inference.proto") {
      ASSERT_GT(file.service_size(), 0);
      EXPECT_EQ(file.service(0).name(), "Inference");
    }
  }
  EXPECT_EQ(files.front(), "nibble/v1/inference.proto");
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()).size(), files.size());
  request.set_file_containing_symbol(std::string(5000, 'x'));
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_error_response());
  EXPECT_EQ(response.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_LT(response.error_response().error_message().size(), 300u);  // a short prefix of the name, not 5000 bytes

  // A request that asks for nothing is INVALID_ARGUMENT; extension numbers of a known type (nibble's messages
  // have none) and of an unknown one.
  ASSERT_TRUE(stream->Write(reflection::ServerReflectionRequest()));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_error_response()) << response.DebugString();
  EXPECT_EQ(response.error_response().error_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  request.set_all_extension_numbers_of_type("nibble.v1.GenerateRequest");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_all_extension_numbers_response()) << response.DebugString();
  EXPECT_EQ(response.all_extension_numbers_response().base_type_name(), "nibble.v1.GenerateRequest");
  EXPECT_EQ(response.all_extension_numbers_response().extension_number_size(), 0);
  request.set_all_extension_numbers_of_type("nibble.v1.NoSuchMessage");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_error_response()) << response.DebugString();
  EXPECT_EQ(response.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_THAT(response.error_response().error_message(), ::testing::HasSubstr("NoSuchMessage"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(SecurityTest, MetricsNeedBasicAuthWhenGivenAnAuthFile) {
  server::ServerOptions options = LoopbackOptions(store_.path());
  std::ofstream(dir_.path() / "metrics-auth") << "prometheus:scr4pe\n";
  options.metrics_auth_file = (dir_.path() / "metrics-auth").string();
  auto server = StartServer(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = server->server->metrics_port();
  const auto basic = [](const std::string& credentials) {
    return absl::StrCat("Authorization: Basic ", absl::Base64Escape(credentials), "\r\n");
  };
  const absl::StatusOr<std::string> anonymous = HttpGet(port, "/metrics");
  ASSERT_FALSE(anonymous.ok());
  EXPECT_THAT(anonymous.status().message(), ::testing::HasSubstr("401"));
  EXPECT_THAT(HttpGet(port, "/metrics", basic("prometheus:wrong")).status().message(), ::testing::HasSubstr("401"));
  EXPECT_THAT(HttpGet(port, "/metrics", basic("someone:scr4pe")).status().message(), ::testing::HasSubstr("401"));
  const absl::StatusOr<std::string> scraped = HttpGet(port, "/metrics", basic("prometheus:scr4pe"));
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_TRUE(HasFamily(*scraped, "process_resident_memory_bytes"));

  std::ofstream(dir_.path() / "bad-metrics-auth") << "no-colon-here\n";
  options.metrics_auth_file = (dir_.path() / "bad-metrics-auth").string();
  auto refused = server::Server::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("--metrics-auth-file"));
}

}  // namespace
}  // namespace nibble::e2e
