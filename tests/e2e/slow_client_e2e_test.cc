// Clients that stop reading (issue: 200 never-reading streams held their memory with no bound): a stream
// whose client leaves a message unread for --write-timeout is cancelled, counted as cancelled, and its KV
// blocks go back to the pool while the client still holds the call open; other clients are served meanwhile.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

const std::string kModelLabel = absl::StrCat("model=\"", kModel, "\"");

double Metric(const TestServer& server, const std::string& sample) {
  const absl::StatusOr<std::string> text = HttpGet(server.server->metrics_port(), "/metrics");
  return text.ok() ? MetricValue(*text, sample).value_or(0) : -1;
}

// A channel whose client takes little before its application reads (no BDP-grown window): what a client
// that stopped reading looks like once its buffers are full, without sending megabytes first.
std::unique_ptr<v1::Inference::Stub> SmallWindowStub(const TestServer& server) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  arguments.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4096);
  return v1::Inference::NewStub(
      grpc::CreateCustomChannel(server.address(), grpc::InsecureChannelCredentials(), arguments));
}

// A Generate call whose responses are never read: started, then left alone until the destructor cancels it.
class NeverReadingCall {
 public:
  NeverReadingCall(v1::Inference::Stub& stub, const v1::GenerateRequest& request) {
    reader_ = stub.PrepareAsyncGenerate(&context_, request, &queue_);
    reader_->StartCall(Tag(1));
    void* tag = nullptr;
    bool ok = false;
    started_ = queue_.Next(&tag, &ok) && ok;
  }
  ~NeverReadingCall() {
    context_.TryCancel();
    grpc::Status status;
    reader_->Finish(&status, Tag(2));
    queue_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
    }
  }
  bool started() const { return started_; }

 private:
  static void* Tag(intptr_t n) { return reinterpret_cast<void*>(n); }
  grpc::ClientContext context_;
  grpc::CompletionQueue queue_;
  std::unique_ptr<grpc::ClientAsyncReader<v1::GenerateResponse>> reader_;
  bool started_ = false;
};

// A server with `--write-timeout` and a client that started one long generation and never reads it.
class SlowClientTest : public ::testing::Test {
 protected:
  void StartWithStalledCall(double write_timeout_seconds) {
    if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
    ASSERT_TRUE(PublishStories(store_.path()).ok());
    server::ServerOptions options = LoopbackOptions(store_.path());
    options.write_timeout_seconds = write_timeout_seconds;
    auto server = StartServer(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    // Hundreds of tokens with 20 alternatives each: about 100 KB of responses, far more than the client's
    // window, so the server's writes stall once it is full.
    v1::GenerateRequest request = GreedyRequest("Once upon a time", 480);
    request.set_ignore_eos(true);
    request.set_logprobs(20);
    small_window_ = SmallWindowStub(*server_);
    stalled_ = std::make_unique<NeverReadingCall>(*small_window_, request);
    ASSERT_TRUE(stalled_->started());
  }

  double Requests(absl::string_view finish_reason) const {
    return Metric(*server_,
                  absl::StrCat("nibble_requests_total{finish_reason=\"", finish_reason, "\",", kModelLabel, "}"));
  }

  testing::TempDir store_;
  std::optional<TestServer> server_;
  std::unique_ptr<v1::Inference::Stub> small_window_;
  std::unique_ptr<NeverReadingCall> stalled_;  // last: cancelled before the stub and the server go
};

TEST_F(SlowClientTest, AStreamWhoseClientStopsReadingIsCutAfterTheWriteTimeoutAndItsBlocksFreed) {
  ASSERT_NO_FATAL_FAILURE(StartWithStalledCall(1));
  if (IsSkipped()) return;
  EXPECT_TRUE(WaitFor([&] { return Requests("cancelled") == 1; }, std::chrono::seconds(30)))
      << "the stalled stream was not cut";
  const std::string kv_usage = absl::StrCat("nibble_kv_cache_usage_ratio{", kModelLabel, "}");
  EXPECT_TRUE(WaitFor([&] { return Metric(*server_, kv_usage) == 0; }, std::chrono::seconds(10)));
  EXPECT_EQ(Metric(*server_, absl::StrCat("nibble_requests_running{", kModelLabel, "}")), 0);

  // A client that reads is served as usual, the stalled call still open.
  const StreamResult served = RunStream(*server_->stub, GreedyRequest("Once upon a time", 16));
  ASSERT_TRUE(served.status.ok()) << served.status.error_message();
  EXPECT_EQ(served.tokens().size(), 16u);
}

TEST_F(SlowClientTest, WithoutAWriteTimeoutAStalledStreamIsKept) {
  ASSERT_NO_FATAL_FAILURE(StartWithStalledCall(0));
  if (IsSkipped()) return;
  // The generation ends but its stream cannot: nothing is counted while the client holds it.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(Requests("cancelled"), 0);
  EXPECT_EQ(Requests("length"), 0);
  EXPECT_EQ(Requests("stop"), 0);
}

}  // namespace
}  // namespace nibble::e2e
