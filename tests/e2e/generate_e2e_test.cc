// Generate over loopback gRPC against an in-process nibble-server serving stories260K from a store on disk:
// parity with offline generation, many concurrent streams, seeded repetition, cancellation (explicit and by
// a client process that dies), the bounded queue, deadlines, unknown models and the table of bad requests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "engine/backends/backend_factory.h"
#include "engine/base/utf8.h"
#include "engine/io/model_loader.h"
#include "engine/serving/generation.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "grpcpp/create_channel.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

using ::testing::HasSubstr;

// The story opening the model continues with curly quotes (byte-fallback tokens in tok512's 512 pieces).
constexpr char kQuotePrompt[] =
    "May asked her mother, \xE2\x80\x9CMama, can I see a star somewhere?\xE2\x80\x9D Her mother replied, \xE2\x80\x9C";

class GenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!StoriesDir()) return;
    store_ = new testing::TempDir();
    ASSERT_TRUE(PublishStories(store_->path()).ok());
    auto server = StartServer(LoopbackOptions(store_->path()));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = new TestServer(std::move(server).value());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete store_;
    store_ = nullptr;
  }
  void SetUp() override {
    if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
    // A suite whose server did not start fails each test (SetUpTestSuite printed why), never skips it.
    ASSERT_NE(server_, nullptr) << "the suite's server did not start";
  }

  static std::string Metrics() {
    absl::StatusOr<std::string> text = HttpGet(server_->server->metrics_port(), "/metrics");
    EXPECT_TRUE(text.ok()) << text.status();
    return text.value_or("");
  }
  static double KvUsage() {
    return MetricValue(Metrics(), absl::StrCat("nibble_kv_cache_usage_ratio{model=\"", kModel, "\"}")).value_or(-1);
  }
  static double Requests(const std::string& reason) {
    return MetricValue(Metrics(),
                       absl::StrCat("nibble_requests_total{finish_reason=\"", reason, "\",model=\"", kModel, "\"}"))
        .value_or(0);
  }

  static testing::TempDir* store_;
  static TestServer* server_;
};
testing::TempDir* GenerateTest::store_ = nullptr;
TestServer* GenerateTest::server_ = nullptr;

TEST_F(GenerateTest, GreedyStreamIsOfflineGenerationWithWholeCharacters) {
  // The reference: offline generation (the CLI's path) on the version the server serves.
  const std::filesystem::path dir = store_->path() / kModel / "1";
  auto backend = MakeBackend(BackendKind::kCpu).value();
  const HostModel host = LoadHostModel(dir).value();
  const auto tokenizer = LoadTokenizer(dir).value();
  auto model = Model::Create(*backend, host, ModelOptions{}).value();
  const GenerationResult expected = Generate(*model, tokenizer.get(), OfflineGreedyRequest(kQuotePrompt, 120)).value();

  const StreamResult result = RunStream(*server_->stub, GreedyRequest(kQuotePrompt, 120));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.tokens(), expected.tokens);
  EXPECT_EQ(result.text(), expected.text);
  EXPECT_EQ(result.text(), tokenizer->Decode(expected.tokens));
  for (const v1::TokenChunk& chunk : result.chunks) EXPECT_TRUE(IsValidUtf8(chunk.text())) << chunk.text();
  // The output really has multi-byte characters made of byte tokens.
  const std::string text = result.text();
  EXPECT_TRUE(std::any_of(text.begin(), text.end(), [](char c) { return (c & 0x80) != 0; })) << text;
  EXPECT_TRUE(std::any_of(expected.tokens.begin(), expected.tokens.end(),
                          [&](int32_t id) { return tokenizer->IsByteToken(id); }));
  ASSERT_TRUE(result.final.has_value());
  EXPECT_EQ(result.final->usage().completion_tokens(), expected.tokens.size());
  EXPECT_EQ(result.final->model(), kModel);
  EXPECT_EQ(result.final->version(), 1u);
}

// Request i of a mixed workload: every sampling knob varies, some ask for logprobs, some stop at ".".
v1::GenerateRequest MixedRequest(int i) {
  static const char* const kPrompts[] = {"Once upon a time", "Lily and Ben went to the park.", kQuotePrompt,
                                         "The little dog"};
  v1::GenerateRequest request = GreedyRequest(kPrompts[i % 4], 24 + i % 40);
  v1::SamplingParameters& sampling = *request.mutable_sampling();
  sampling.set_temperature(0.3f * static_cast<float>(i % 5));
  sampling.set_top_k(20 * (i % 3));
  sampling.set_top_p(0.5f + 0.1f * static_cast<float>(i % 6));
  sampling.set_min_p(i % 4 == 0 ? 0.05f : 0.0f);
  sampling.set_repetition_penalty(1.0f + 0.1f * static_cast<float>(i % 3));
  sampling.set_presence_penalty(0.5f * static_cast<float>(i % 2));
  sampling.set_frequency_penalty(0.25f * static_cast<float>(i % 3));
  sampling.set_seed(1000 + i);
  request.set_logprobs(i % 4);
  if (i % 7 == 0) request.add_stop(".");
  return request;
}

void ExpectComplete(const v1::GenerateRequest& request, const StreamResult& result) {
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_TRUE(result.final.has_value());
  const std::vector<int32_t> tokens = result.tokens();
  EXPECT_EQ(result.final->usage().completion_tokens(), tokens.size());
  EXPECT_LE(tokens.size(), request.max_tokens());
  EXPECT_TRUE(result.final->finish_reason() == v1::FINISH_REASON_STOP ||
              result.final->finish_reason() == v1::FINISH_REASON_LENGTH);
  if (result.final->finish_reason() == v1::FINISH_REASON_LENGTH) {
    EXPECT_EQ(tokens.size(), request.max_tokens());
  }
  size_t logprobs = 0;
  for (const v1::TokenChunk& chunk : result.chunks) {
    EXPECT_TRUE(IsValidUtf8(chunk.text()));
    logprobs += chunk.logprobs_size();
    for (const v1::TokenLogprob& logprob : chunk.logprobs()) EXPECT_EQ(logprob.top_size(), request.logprobs());
  }
  EXPECT_EQ(logprobs, request.logprobs() > 0 ? tokens.size() : 0);
  if (request.stop_size() > 0) {
    EXPECT_EQ(result.text().find('.'), std::string::npos);
  }
}

TEST_F(GenerateTest, SixtyFourConcurrentStreamsWithDifferentSamplingCompleteAndSeedsRepeat) {
  constexpr int kStreams = 64;
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] { results[i] = RunStream(*server_->stub, MixedRequest(i)); });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kStreams; ++i) {
    SCOPED_TRACE(i);
    ExpectComplete(MixedRequest(i), results[i]);
  }
  // A seeded stream repeats exactly when run again alone (sampled ones: temperature > 0).
  for (int i : {1, 2, 8, 33}) {
    SCOPED_TRACE(i);
    const StreamResult again = RunStream(*server_->stub, MixedRequest(i));
    ASSERT_TRUE(again.status.ok());
    EXPECT_EQ(again.tokens(), results[i].tokens());
    EXPECT_EQ(again.text(), results[i].text());
  }
}

TEST_F(GenerateTest, CancellingHalfTheStreamsStopsThemAndFreesTheKvCache) {
  constexpr int kStreams = 16;
  constexpr uint32_t kMaxTokens = 400;
  const double cancelled_before = Requests("cancelled");
  const std::string metrics_before = Metrics();
  const double tokens_before =
      MetricValue(metrics_before, absl::StrCat("nibble_generation_tokens_total{model=\"", kModel, "\"}")).value_or(0);
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest("Once upon a time", kMaxTokens);
      request.set_ignore_eos(true);
      request.clear_stop_token_ids();
      grpc::ClientContext context;
      auto reader = server_->stub->Generate(&context, request);
      v1::GenerateResponse response;
      size_t received = 0;
      while (reader->Read(&response)) {
        received += response.chunk().token_ids_size();
        results[i].chunks.push_back(response.chunk());
        if (i % 2 == 1 && received >= 5) context.TryCancel();
      }
      results[i].status = reader->Finish();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kStreams; ++i) {
    SCOPED_TRACE(i);
    if (i % 2 == 1) {
      EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::CANCELLED);
    } else {
      EXPECT_TRUE(results[i].status.ok()) << results[i].status.error_message();
      EXPECT_EQ(results[i].tokens().size(), kMaxTokens);
    }
  }
  // The server ended the cancelled ones (well before max_tokens) and freed every KV block.
  ASSERT_TRUE(WaitFor([&] { return Requests("cancelled") == cancelled_before + kStreams / 2; }));
  ASSERT_TRUE(WaitFor([&] { return KvUsage() == 0.0; }));
  const double tokens_after =
      MetricValue(Metrics(), absl::StrCat("nibble_generation_tokens_total{model=\"", kModel, "\"}")).value_or(0);
  const double cancelled_tokens = tokens_after - tokens_before - (kStreams / 2) * kMaxTokens;
  EXPECT_LT(cancelled_tokens, (kStreams / 2) * kMaxTokens / 2.0);
  // And it stays healthy.
  EXPECT_EQ(HealthStatus(*server_->channel, "").value_or(-1), 1);
  EXPECT_TRUE(RunStream(*server_->stub, GreedyRequest("Once upon a time", 8)).status.ok());
}

TEST_F(GenerateTest, DeadlineCutsAreCountedAlikeWithTheTokensTheirClientsReceived) {
  // Eight identical streams cut by a 50 ms deadline: whether the engine or gRPC sees the deadline first,
  // each counts once as "error" (the engine's reason for a deadline), and the token counter grows by what
  // the clients read.
  constexpr int kStreams = 8;
  const double errors_before = Requests("error");
  const double cancelled_before = Requests("cancelled");
  const auto tokens = [] {
    return MetricValue(Metrics(), absl::StrCat("nibble_generation_tokens_total{model=\"", kModel, "\"}")).value_or(0);
  };
  const double tokens_before = tokens();
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest("Once upon a time", 400);
      request.set_ignore_eos(true);
      request.clear_stop_token_ids();
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(50));
      results[i] = RunStream(*server_->stub, request, &context);
    });
  }
  for (std::thread& thread : threads) thread.join();
  size_t received = 0;
  for (const StreamResult& result : results) {
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_LT(result.tokens().size(), 400u);
    received += result.tokens().size();
  }
  EXPECT_TRUE(WaitFor([&] { return Requests("error") == errors_before + kStreams; }))
      << "error " << Requests("error") - errors_before << ", cancelled " << Requests("cancelled") - cancelled_before;
  EXPECT_EQ(Requests("cancelled"), cancelled_before);
  // Tokens counted are tokens written; a one-token chunk in flight when a client's own deadline fired may
  // be written and yet dropped by that client's gRPC library, which the server cannot see: at most one per
  // stream. (Counting what the engine generated instead overcounts by what was never written.)
  const double counted = tokens() - tokens_before;
  EXPECT_GE(counted, static_cast<double>(received));
  EXPECT_LE(counted, static_cast<double>(received + kStreams));
}

// Runs as a child process of the next test (which kills it mid-stream); skipped otherwise.
TEST(VanishingClient, StreamsUntilKilled) {
  const char* address = std::getenv("NIBBLE_E2E_VANISHING_CLIENT");
  if (address == nullptr) GTEST_SKIP() << "the child process of GenerateTest.ClientThatDiesIsTreatedAsCancelled";
  auto stub = v1::Inference::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<std::thread> threads;
  std::atomic<int> streaming = 0;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      v1::GenerateRequest request = GreedyRequest("Once upon a time", 480);
      request.set_ignore_eos(true);
      request.clear_stop_token_ids();
      grpc::ClientContext context;
      auto reader = stub->Generate(&context, request);
      v1::GenerateResponse response;
      if (reader->Read(&response) && ++streaming == 4) std::cout << "streaming" << std::endl;
      while (reader->Read(&response)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    });
  }
  for (std::thread& thread : threads) thread.join();
}

TEST_F(GenerateTest, ClientThatDiesIsTreatedAsCancelled) {
  const double cancelled_before = Requests("cancelled");
  auto child = Subprocess::Spawn({"/proc/self/exe", "--gtest_filter=VanishingClient.StreamsUntilKilled"},
                                 {absl::StrCat("NIBBLE_E2E_VANISHING_CLIENT=", server_->address())});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->WaitForLine("streaming").ok()) << child->output();
  child->Signal(SIGKILL);
  EXPECT_EQ(child->Wait(), 128 + SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return Requests("cancelled") == cancelled_before + 4; }));
  ASSERT_TRUE(WaitFor([&] { return KvUsage() == 0.0; }));
  EXPECT_EQ(HealthStatus(*server_->channel, "").value_or(-1), 1);
}

TEST_F(GenerateTest, BadRequestsAreInvalidArgumentNamingTheField) {
  struct Case {
    std::string field;  // what the message must name
    std::function<void(v1::GenerateRequest&)> edit;
  };
  const std::vector<Case> cases = {
      {"prompt", [](auto& r) { r.set_text(""); }},
      {"max_tokens", [](auto& r) { r.set_max_tokens(0); }},
      {"max_tokens", [](auto& r) { r.set_max_tokens(100000); }},
      {"temperature", [](auto& r) { r.mutable_sampling()->set_temperature(-0.5f); }},
      {"top_p", [](auto& r) { r.mutable_sampling()->set_top_p(0.0f); }},
      {"top_p", [](auto& r) { r.mutable_sampling()->set_top_p(1.5f); }},
      {"top_k", [](auto& r) { r.mutable_sampling()->set_top_k(-1); }},
      {"min_p", [](auto& r) { r.mutable_sampling()->set_min_p(2.0f); }},
      {"prompt is not valid UTF-8", [](auto& r) { r.set_text("Once \xff\xfe upon"); }},
      {"stop[1]",
       [](auto& r) {
         r.add_stop("ok");
         r.add_stop("bad \xc3");
       }},
      {"stop",
       [](auto& r) {
         for (int i = 0; i < 17; ++i) r.add_stop(absl::StrCat("s", i));
       }},
      {"prompt_token_ids[1]",
       [](auto& r) {
         r.mutable_token_ids()->add_ids(kBos);
         r.mutable_token_ids()->add_ids(512);
       }},
      {"stop_token_ids[1]", [](auto& r) { r.add_stop_token_ids(-3); }},
      {"prompt",
       [](auto& r) {
         for (int i = 0; i < 600; ++i) r.mutable_token_ids()->add_ids(100);
       }},
      {"logprobs", [](auto& r) { r.set_logprobs(21); }},
      // Messages quote the value received, not what it became on the way (issue 13).
      {"logprobs must be in [0, 20], got 4294967295", [](auto& r) { r.set_logprobs(4294967295u); }},
      {"max_tokens must be positive and at most 2147483647, got 4294967295",
       [](auto& r) { r.set_max_tokens(4294967295u); }},
      // The documented penalty ranges, and non-finite values, are enforced.
      {"presence_penalty must be in [-2, 2], got 3", [](auto& r) { r.mutable_sampling()->set_presence_penalty(3); }},
      {"presence_penalty", [](auto& r) { r.mutable_sampling()->set_presence_penalty(-3); }},
      {"presence_penalty", [](auto& r) { r.mutable_sampling()->set_presence_penalty(-1e9f); }},
      {"presence_penalty", [](auto& r) { r.mutable_sampling()->set_presence_penalty(3e38f); }},
      {"presence_penalty", [](auto& r) { r.mutable_sampling()->set_presence_penalty(std::nanf("")); }},
      {"frequency_penalty must be in [-2, 2], got -3",
       [](auto& r) { r.mutable_sampling()->set_frequency_penalty(-3); }},
      {"frequency_penalty", [](auto& r) { r.mutable_sampling()->set_frequency_penalty(2.5f); }},
      {"frequency_penalty", [](auto& r) { r.mutable_sampling()->set_frequency_penalty(-3e38f); }},
      {"frequency_penalty", [](auto& r) { r.mutable_sampling()->set_frequency_penalty(INFINITY); }},
      {"temperature", [](auto& r) { r.mutable_sampling()->set_temperature(INFINITY); }},
      {"top_p", [](auto& r) { r.mutable_sampling()->set_top_p(std::nanf("")); }},
      {"min_p", [](auto& r) { r.mutable_sampling()->set_min_p(std::nanf("")); }},
      {"repetition_penalty", [](auto& r) { r.mutable_sampling()->set_repetition_penalty(INFINITY); }},
      // Stop strings are bounded in length as well as in number.
      {"stop[0] has 257 bytes; at most 256", [](auto& r) { r.add_stop(std::string(257, 'x')); }},
      {"stop[1] has 1048576 bytes",
       [](auto& r) {
         r.add_stop("ok");
         r.add_stop(std::string(1 << 20, 'x'));
       }},
      // Stop token ids are checked at every generated token: bounded too.
      {"stop_token_ids has 257 ids; at most 256",
       [](auto& r) {
         for (int i = 0; i < 256; ++i) r.add_stop_token_ids(5);
       }},
      // A prompt too long to fit is refused by its byte length, before it is tokenized.
      {"prompt has 3900000 bytes, more than", [](auto& r) { r.set_text(std::string(3900000, 'a')); }},
  };
  for (const Case& bad : cases) {
    v1::GenerateRequest request = GreedyRequest("Once upon a time", 16);
    bad.edit(request);
    SCOPED_TRACE(request.ShortDebugString().substr(0, 200));
    const StreamResult result = RunStream(*server_->stub, request);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(result.status.error_message(), HasSubstr(bad.field));
    EXPECT_LE(result.status.error_message().size(), 300u);  // never an echo of the request's text
    EXPECT_TRUE(result.chunks.empty());
  }
}

TEST_F(GenerateTest, HugeOrHostileModelNamesAreInvalidArgumentQuotedShort) {
  // Longer than the store's 64 characters: INVALID_ARGUMENT quoting an escaped prefix, in Generate,
  // LoadModel and UnloadModel alike (a 10 KB echo used to overflow a default client's metadata limit and
  // come back as RESOURCE_EXHAUSTED).
  for (const std::string& name :
       {std::string(1 << 20, 'm'), std::string(10 << 10, 'm'), std::string(65, 'm'), std::string("bad\nname\x01")}) {
    SCOPED_TRACE(name.size());
    v1::GenerateRequest request = GreedyRequest("Once upon a time", 8);
    request.set_model(name);
    const StreamResult result = RunStream(*server_->stub, request);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(result.status.error_message(),
                HasSubstr(name.size() > 64 ? "model name \"mmm" : "model name \"bad\\n"));
    EXPECT_LE(result.status.error_message().size(), 300u);
    EXPECT_EQ(result.status.error_message().find_first_of("\n\x01"), std::string::npos);  // escaped

    grpc::ClientContext load_context;
    v1::LoadModelRequest load;
    load.set_model(name);
    v1::LoadModelResponse loaded;
    const grpc::Status load_status = server_->stub->LoadModel(&load_context, load, &loaded);
    EXPECT_EQ(load_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_LE(load_status.error_message().size(), 300u);

    grpc::ClientContext unload_context;
    v1::UnloadModelRequest unload;
    unload.set_model(name);
    v1::UnloadModelResponse unloaded;
    const grpc::Status unload_status = server_->stub->UnloadModel(&unload_context, unload, &unloaded);
    EXPECT_EQ(unload_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_LE(unload_status.error_message().size(), 300u);
  }
}

TEST_F(GenerateTest, UnknownModelOrVersionIsNotFound) {
  v1::GenerateRequest request = GreedyRequest("Once upon a time", 8);
  request.set_model("no-such-model");
  StreamResult result = RunStream(*server_->stub, request);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(result.status.error_message(), HasSubstr("no-such-model"));
  request.set_model(kModel);
  request.set_version(7);
  result = RunStream(*server_->stub, request);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(result.status.error_message(), HasSubstr("version 7"));
}

TEST_F(GenerateTest, HealthAndReflectionAnswer) {
  EXPECT_EQ(HealthStatus(*server_->channel, "").value_or(-1), 1);
  EXPECT_EQ(HealthStatus(*server_->channel, kModel).value_or(-1), 1);
  EXPECT_EQ(HealthStatus(*server_->channel, "no-such-model").status().code(), absl::StatusCode::kNotFound);
  const absl::StatusOr<std::string> services = ReflectionListServices(*server_->channel);
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, HasSubstr("nibble.v1.Inference"));
  EXPECT_THAT(*services, HasSubstr("grpc.health.v1.Health"));
}

// A server with one batch seat and a queue of two: long requests pile up.
class BusyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
    ASSERT_TRUE(PublishStories(store_.path()).ok());
    server::ServerOptions options = LoopbackOptions(store_.path());
    options.max_seqs = 1;
    options.max_queue = 2;
    auto server = StartServer(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  static v1::GenerateRequest Long() {
    v1::GenerateRequest request = GreedyRequest("Once upon a time", 300);
    request.set_ignore_eos(true);
    request.clear_stop_token_ids();
    return request;
  }

  testing::TempDir store_;
  TestServer server_;
};

TEST_F(BusyServerTest, FullQueueIsResourceExhausted) {
  constexpr int kRequests = 12;
  std::vector<StreamResult> results(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) threads.emplace_back([&, i] { results[i] = RunStream(*server_.stub, Long()); });
  for (std::thread& thread : threads) thread.join();
  int ok = 0;
  int exhausted = 0;
  for (const StreamResult& result : results) {
    if (result.status.ok()) {
      ++ok;
      EXPECT_EQ(result.tokens().size(), 300u);
    } else {
      EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << result.status.error_message();
      ++exhausted;
    }
  }
  EXPECT_GE(ok, 2);  // the queue's two (a request counts as waiting until the engine thread admits it)
  EXPECT_GE(exhausted, 1);
  EXPECT_EQ(ok + exhausted, kRequests);
}

TEST_F(BusyServerTest, ExpiredDeadlineIsDeadlineExceeded) {
  std::vector<std::thread> threads;
  std::vector<StreamResult> results(2);
  for (int i = 0; i < 2; ++i) threads.emplace_back([&, i] { results[i] = RunStream(*server_.stub, Long()); });
  // Both wait for the one seat (one running, one waiting) before the late request queues behind them.
  ASSERT_TRUE(WaitFor([&] {
    const auto metrics = HttpGet(server_.server->metrics_port(), "/metrics");
    const std::string model = absl::StrCat("{model=\"", kModel, "\"}");
    return metrics.ok() && MetricValue(*metrics, "nibble_requests_running" + model) == 1.0 &&
           MetricValue(*metrics, "nibble_requests_waiting" + model) == 1.0;
  }));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  const StreamResult late = RunStream(*server_.stub, GreedyRequest("Once upon a time", 8), &context);
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  for (std::thread& thread : threads) thread.join();
  for (const StreamResult& result : results) EXPECT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_TRUE(WaitFor([&] {
    const auto metrics = HttpGet(server_.server->metrics_port(), "/metrics");
    return metrics.ok() &&
           MetricValue(*metrics, absl::StrCat("nibble_kv_cache_usage_ratio{model=\"", kModel, "\"}")) == 0.0;
  }));
}

// --inline-prompt-bytes 0: every text prompt is submitted from the prompt threads (as a long one is), off
// gRPC's threads. The streams are those of the handler's own thread; the refusals after tokenizing too.
TEST(PromptWorkersServerTest, PromptsSubmittedFromThePromptThreadsStreamAsFromTheHandler) {
  if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
  testing::TempDir store;
  ASSERT_TRUE(PublishStories(store.path()).ok());
  server::ServerOptions inline_options = LoopbackOptions(store.path());
  server::ServerOptions worker_options = inline_options;
  worker_options.inline_prompt_bytes = 0;
  worker_options.prompt_threads = 1;
  auto inline_server = StartServer(inline_options);
  auto worker_server = StartServer(worker_options);
  ASSERT_TRUE(inline_server.ok()) << inline_server.status();
  ASSERT_TRUE(worker_server.ok()) << worker_server.status();

  const StreamResult expected = RunStream(*inline_server->stub, GreedyRequest(kQuotePrompt, 60));
  ASSERT_TRUE(expected.status.ok()) << expected.status.error_message();
  std::vector<StreamResult> results(8);
  std::vector<std::thread> clients;
  for (StreamResult& result : results) {
    clients.emplace_back([&] { result = RunStream(*worker_server->stub, GreedyRequest(kQuotePrompt, 60)); });
  }
  for (std::thread& client : clients) client.join();
  for (const StreamResult& result : results) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.tokens(), expected.tokens());
    EXPECT_EQ(result.text(), expected.text());
  }

  // 700 words fit the byte bound (room x the longest piece) and tokenize to more tokens than the room.
  std::string words;
  for (int i = 0; i < 700; ++i) words += "cat ";
  const StreamResult too_long = RunStream(*worker_server->stub, GreedyRequest(words, 16));
  EXPECT_EQ(too_long.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(too_long.status.error_message(), HasSubstr("tokens"));
  const StreamResult after = RunStream(*worker_server->stub, GreedyRequest(kQuotePrompt, 60));
  EXPECT_EQ(after.tokens(), expected.tokens()) << "the prompt thread serves on after a refusal";
}

}  // namespace
}  // namespace nibble::e2e
