// The model manager end to end: a new version published while streams run on the old one (load before
// unload, streams finish where they started, the old version freed after its last stream), a corrupt
// version refused while the previous keeps serving, pins, LoadModel and UnloadModel, health per model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

using ::testing::HasSubstr;

constexpr int kServing = 1;
constexpr int kNotServing = 2;

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
    ASSERT_EQ(PublishStories(store_.path()).value_or(0), 1u);
  }

  void Start() {
    auto server = StartServer(LoopbackOptions(store_.path()));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  v1::ModelInfo Info() {
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    EXPECT_TRUE(server_.stub->ListModels(&context, v1::ListModelsRequest(), &response).ok());
    for (const v1::ModelInfo& model : response.models()) {
      if (model.name() == kModel) return model;
    }
    return v1::ModelInfo();
  }

  static const v1::ModelVersion* Version(const v1::ModelInfo& info, uint64_t number) {
    for (const v1::ModelVersion& version : info.versions()) {
      if (version.version() == number) return &version;
    }
    return nullptr;
  }

  // Which version a short request runs on (from its Final), 0 when it fails.
  uint64_t ServedBy() {
    const StreamResult result = RunStream(*server_.stub, GreedyRequest("Once upon a time", 4));
    return result.status.ok() && result.final ? result.final->version() : 0;
  }

  grpc::Status LoadModel(uint64_t version, v1::LoadModelResponse* response) {
    grpc::ClientContext context;
    v1::LoadModelRequest request;
    request.set_model(kModel);
    request.set_version(version);
    return server_.stub->LoadModel(&context, request, response);
  }

  // Makes version `number` of `model` a copy of stories version 1 with one byte of its weights changed
  // (what its manifest says no longer holds), renamed into place at once as a publisher would.
  void PublishCorrupt(uint64_t number, const std::string& model = kModel) {
    const std::filesystem::path model_dir = store_.path() / model;
    const std::filesystem::path staging = model_dir / ".staging-corrupt";
    std::filesystem::create_directories(model_dir);
    std::filesystem::copy(store_.path() / kModel / "1", staging);
    std::fstream weights(staging / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    weights.seekp(-100, std::ios::end);
    weights.put('\x7f');
    weights.close();
    std::filesystem::rename(staging, model_dir / std::to_string(number));
  }

  testing::TempDir store_;
  TestServer server_;
};

TEST_F(ReloadTest, NewVersionLoadsBeforeTheOldUnloadsAndCorruptOneIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(Info().serving_version(), 1u);
  EXPECT_EQ(HealthStatus(*server_.channel, kModel).value_or(-1), kServing);

  // 16 long streams on version 1.
  constexpr int kStreams = 16;
  std::vector<StreamResult> results(kStreams);
  std::atomic<int> started = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest("Once upon a time", 480);
      request.set_ignore_eos(true);
      request.clear_stop_token_ids();
      results[i] = RunStream(*server_.stub, request, nullptr, &started);
    });
  }
  ASSERT_TRUE(WaitFor([&] { return started == kStreams; }));

  // Version 2 appears; it serves while version 1 still has streams, which it finishes.
  ASSERT_EQ(PublishStories(store_.path()).value_or(0), 2u);
  v1::ModelInfo info;
  ASSERT_TRUE(WaitFor([&] { return (info = Info()).serving_version() == 2; }));
  const v1::ModelVersion* old = Version(info, 1);
  ASSERT_NE(old, nullptr) << info.ShortDebugString();
  EXPECT_EQ(old->state(), v1::MODEL_STATE_UNLOADING);
  EXPECT_GT(old->active_requests(), 0u);
  EXPECT_EQ(ServedBy(), 2u);

  for (std::thread& thread : threads) thread.join();
  for (const StreamResult& result : results) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.tokens().size(), 480u);
    EXPECT_EQ(result.final->version(), 1u);
  }
  // Version 1 is freed after its last stream.
  ASSERT_TRUE(WaitFor([&] { return Version(Info(), 1) == nullptr; })) << Info().ShortDebugString();
  const auto metrics = HttpGet(server_.server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_FALSE(MetricValue(*metrics, absl::StrCat("nibble_model_weight_bytes{model=\"", kModel, "\",version=\"1\"}")));
  EXPECT_GT(MetricValue(*metrics, absl::StrCat("nibble_model_weight_bytes{model=\"", kModel, "\",version=\"2\"}"))
                .value_or(0),
            0);

  // A corrupt version 3 is refused, naming the file; version 2 keeps serving.
  PublishCorrupt(3);
  ASSERT_TRUE(WaitFor([&] {
    const v1::ModelVersion* failed = Version(Info(), 3);
    return failed != nullptr && failed->state() == v1::MODEL_STATE_FAILED;
  }));
  info = Info();
  EXPECT_THAT(Version(info, 3)->error(), HasSubstr("model.safetensors"));
  EXPECT_EQ(info.serving_version(), 2u);
  EXPECT_EQ(ServedBy(), 2u);
  EXPECT_EQ(HealthStatus(*server_.channel, kModel).value_or(-1), kServing);
  v1::LoadModelResponse response;
  const grpc::Status load = LoadModel(3, &response);
  EXPECT_EQ(load.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(load.error_message(), HasSubstr("model.safetensors"));
  EXPECT_EQ(ServedBy(), 2u);
}

TEST_F(ReloadTest, ModelWhoseOnlyVersionIsCorruptIsFailedAndNotServing) {
  PublishCorrupt(1, "broken");
  ASSERT_NO_FATAL_FAILURE(Start());
  grpc::ClientContext context;
  v1::ListModelsResponse response;
  ASSERT_TRUE(server_.stub->ListModels(&context, v1::ListModelsRequest(), &response).ok());
  ASSERT_EQ(response.models_size(), 2);
  const v1::ModelInfo& broken = response.models(0);
  EXPECT_EQ(broken.name(), "broken");
  EXPECT_EQ(broken.serving_version(), 0u);
  ASSERT_EQ(broken.versions_size(), 1);
  EXPECT_EQ(broken.versions(0).state(), v1::MODEL_STATE_FAILED);
  EXPECT_EQ(HealthStatus(*server_.channel, "broken").value_or(-1), kNotServing);
  EXPECT_EQ(HealthStatus(*server_.channel, kModel).value_or(-1), kServing);
  v1::GenerateRequest request = GreedyRequest("Once upon a time", 4);
  request.set_model("broken");
  EXPECT_EQ(RunStream(*server_.stub, request).status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// A server started on a store whose newest version is corrupt serves the newest good one, and shows the
// corrupt one as failed.
TEST_F(ReloadTest, StartFallsBackToTheNewestGoodVersion) {
  PublishCorrupt(2);
  ASSERT_NO_FATAL_FAILURE(Start());
  const v1::ModelInfo info = Info();
  EXPECT_EQ(info.serving_version(), 1u);
  ASSERT_NE(Version(info, 2), nullptr);
  EXPECT_EQ(Version(info, 2)->state(), v1::MODEL_STATE_FAILED);
  EXPECT_THAT(Version(info, 2)->error(), HasSubstr("model.safetensors"));
  ASSERT_NE(Version(info, 1), nullptr);
  EXPECT_EQ(Version(info, 1)->state(), v1::MODEL_STATE_AVAILABLE);
  EXPECT_EQ(ServedBy(), 1u);
  EXPECT_EQ(HealthStatus(*server_.channel, kModel).value_or(-1), kServing);
}

TEST_F(ReloadTest, PinsLoadModelAndUnloadModel) {
  ASSERT_EQ(PublishStories(store_.path()).value_or(0), 2u);
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(ServedBy(), 2u);

  // Pin version 1: it serves even when a newer version appears.
  v1::LoadModelResponse response;
  ASSERT_TRUE(LoadModel(1, &response).ok());
  EXPECT_EQ(response.model().serving_version(), 1u);
  EXPECT_TRUE(response.model().pinned());
  EXPECT_EQ(response.model().context_length(), 512u);
  EXPECT_EQ(response.model().quantization(), "float32");
  ASSERT_EQ(PublishStories(store_.path()).value_or(0), 3u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // several store polls
  EXPECT_EQ(ServedBy(), 1u);

  // Version 0 follows the latest again.
  ASSERT_TRUE(LoadModel(0, &response).ok());
  EXPECT_EQ(response.model().serving_version(), 3u);
  EXPECT_FALSE(response.model().pinned());
  EXPECT_EQ(ServedBy(), 3u);

  // Unloaded: not found, health NOT_SERVING, and the store poll leaves it alone.
  {
    grpc::ClientContext context;
    v1::UnloadModelRequest request;
    request.set_model(kModel);
    v1::UnloadModelResponse unloaded;
    ASSERT_TRUE(server_.stub->UnloadModel(&context, request, &unloaded).ok());
  }
  EXPECT_EQ(HealthStatus(*server_.channel, kModel).value_or(-1), kNotServing);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const StreamResult result = RunStream(*server_.stub, GreedyRequest("Once upon a time", 4));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(HealthStatus(*server_.channel, "").value_or(-1), kServing);

  ASSERT_TRUE(LoadModel(0, &response).ok());
  EXPECT_EQ(ServedBy(), 3u);
  EXPECT_EQ(HealthStatus(*server_.channel, kModel).value_or(-1), kServing);
  // Unknown models and versions.
  EXPECT_EQ(LoadModel(9, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace nibble::e2e
