// The AWQ artifact of stories260K, made by the quantizer's job and published into the store, served like
// any version: its greedy stream is offline generation on the artifact, ListModels names its quantization,
// and mixed concurrent streams complete.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "engine/backends/backend_factory.h"
#include "engine/base/utf8.h"
#include "engine/io/model_loader.h"
#include "engine/serving/generation.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

TEST(AwqArtifactTest, ServesTheQuantizedVersionAsOfflineGenerationDoes) {
  if (!StoriesDir() || !testing::SharedFile("data/tinystories-dev-50.txt")) {
    GTEST_SKIP() << "stories260K or tinystories-dev-50.txt not found in ../shared (set NIBBLE_SHARED)";
  }
  testing::TempDir store;
  const absl::StatusOr<uint64_t> version = PublishStoriesAwq(store.path());
  ASSERT_TRUE(version.ok()) << version.status();
  auto server = StartServer(LoopbackOptions(store.path()));
  ASSERT_TRUE(server.ok()) << server.status();

  {
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    ASSERT_TRUE(server->stub->ListModels(&context, v1::ListModelsRequest(), &response).ok());
    ASSERT_EQ(response.models_size(), 1);
    EXPECT_EQ(response.models(0).quantization(), "awq w4 g32");
    EXPECT_EQ(response.models(0).serving_version(), *version);
  }

  const std::filesystem::path dir = store.path() / kModel / std::to_string(*version);
  auto backend = MakeBackend(BackendKind::kCpu).value();
  const HostModel host = LoadHostModel(dir).value();
  ASSERT_TRUE(host.config.awq.has_value());
  const auto tokenizer = LoadTokenizer(dir).value();
  auto model = Model::Create(*backend, host, ModelOptions{}).value();
  for (const char* prompt : {"Once upon a time", "The little dog"}) {
    const GenerationResult expected = Generate(*model, tokenizer.get(), OfflineGreedyRequest(prompt, 60)).value();
    const StreamResult result = RunStream(*server->stub, GreedyRequest(prompt, 60));
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.tokens(), expected.tokens);
    EXPECT_EQ(result.text(), expected.text);
    EXPECT_FALSE(expected.tokens.empty());
  }

  constexpr int kStreams = 16;
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest("Once upon a time", 32 + i);
      request.mutable_sampling()->set_temperature(0.2f * static_cast<float>(i % 5));
      request.mutable_sampling()->set_seed(i);
      results[i] = RunStream(*server->stub, request);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const StreamResult& result : results) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    ASSERT_TRUE(result.final.has_value());
    EXPECT_EQ(result.final->usage().completion_tokens(), result.tokens().size());
    EXPECT_TRUE(IsValidUtf8(result.text()));
  }
}

}  // namespace
}  // namespace nibble::e2e
