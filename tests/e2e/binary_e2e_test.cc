// The real nibble-server binary as a child process, configured through NIBBLE_* environment variables:
// SIGTERM with streams in flight drains (health NOT_SERVING, new requests UNAVAILABLE, streams finish or
// are cut with UNAVAILABLE at --drain-timeout) and exits 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

class BinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
    ASSERT_TRUE(PublishStories(store_.path()).ok());
  }

  // Starts the binary and connects; `drain_timeout` goes through NIBBLE_DRAIN_TIMEOUT.
  void Start(const std::string& drain_timeout) {
    auto child = Subprocess::Spawn(
        {NIBBLE_SERVER_BINARY, "--listen", "127.0.0.1:0", "--metrics-port", "0"},
        {"NIBBLE_STORE=" + store_.path().string(), "NIBBLE_BACKEND=cpu", "NIBBLE_DRAIN_TIMEOUT=" + drain_timeout});
    ASSERT_TRUE(child.ok()) << child.status();
    child_.emplace(*std::move(child));
    const auto listening = child_->WaitForLine("gRPC listening");
    ASSERT_TRUE(listening.ok()) << child_->output();
    const size_t at = listening->find("(port ");
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(listening->substr(at + 6, listening->find(')', at) - at - 6), &port)) << *listening;
    ASSERT_TRUE(child_->WaitForLine("version 1: serving").ok()) << child_->output();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub_ = v1::Inference::NewStub(channel_);
  }

  // `count` long streams in threads, returned once each has its first token.
  void StartStreams(int count, uint32_t max_tokens) {
    results_.resize(count);
    started_ = 0;
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this, i, max_tokens] {
        v1::GenerateRequest request = GreedyRequest("Once upon a time", max_tokens);
        request.set_ignore_eos(true);
        request.clear_stop_token_ids();
        results_[i] = RunStream(*stub_, request, nullptr, &started_);
      });
    }
    ASSERT_TRUE(WaitFor([&] { return started_ == count; }));
  }

  void JoinStreams() {
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  testing::TempDir store_;
  std::optional<Subprocess> child_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  std::vector<StreamResult> results_;
  std::vector<std::thread> threads_;
  std::atomic<int> started_ = 0;
};

TEST_F(BinaryTest, SigtermLetsStreamsFinishRefusesNewOnesAndExitsZero) {
  Start("30");
  StartStreams(16, 480);
  child_->Signal(SIGTERM);
  ASSERT_TRUE(child_->WaitForLine("draining").ok()) << child_->output();
  // While the streams finish: not serving, and new requests are refused.
  EXPECT_EQ(HealthStatus(*channel_, "").value_or(-1), 2);
  const StreamResult refused = RunStream(*stub_, GreedyRequest("Once upon a time", 4));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.status.error_message();
  JoinStreams();
  for (const StreamResult& result : results_) {
    EXPECT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.tokens().size(), 480u);
  }
  EXPECT_EQ(child_->Wait(), 0) << child_->output();
  EXPECT_THAT(child_->output(), ::testing::HasSubstr("exiting"));
}

TEST_F(BinaryTest, SigtermCutsStreamsAtTheDrainTimeoutWithUnavailable) {
  Start("0.05");
  StartStreams(16, 480);
  child_->Signal(SIGTERM);
  JoinStreams();
  int cut = 0;
  for (const StreamResult& result : results_) {
    if (result.status.ok()) {
      EXPECT_EQ(result.tokens().size(), 480u);
      continue;
    }
    ++cut;
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE) << result.status.error_message();
    ASSERT_TRUE(result.final.has_value());
    EXPECT_EQ(result.final->finish_reason(), v1::FINISH_REASON_CANCELLED);
    EXPECT_EQ(result.final->usage().completion_tokens(), result.tokens().size());
  }
  EXPECT_GT(cut, 0);
  EXPECT_EQ(child_->Wait(), 0) << child_->output();
}

}  // namespace
}  // namespace nibble::e2e
