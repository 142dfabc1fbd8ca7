// The serving engine on the CPU backend. On stories260K (../shared; skipped where absent): the reference
// text, batching that leaves every stream as offline generation makes it, 64 concurrent requests from
// several threads. On a synthetic model: cancellation, the bounded queue, deadlines, validation, unloading
// and draining. A GateSink holds the engine thread still where a test needs the engine at a known point.
#include "engine/serving/serving_engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <functional>
#include <random>
#include <thread>

#include "engine/backends/backend_factory.h"
#include "engine/serving/generation.h"
#include "tests/support/serving_test_support.h"

namespace nibble {
namespace {

using testing::GateSink;
using ::testing::HasSubstr;
using testing::RecordingSink;
using Clock = std::chrono::steady_clock;

std::vector<int32_t> RandomPrompt(size_t length, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> token(3, 511);  // no BOS or EOS
  std::vector<int32_t> prompt(length);
  for (int32_t& id : prompt) id = token(rng);
  return prompt;
}

GenerationRequest Request(std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest request;
  request.prompt_token_ids = std::move(prompt);
  request.max_tokens = max_tokens;
  request.sampling.temperature = 0.0f;
  request.ignore_eos = true;
  return request;
}

class ServingEngineTest : public ::testing::Test {
 protected:
  ServingEngineTest() {
    ServingEngineOptions options;
    options.observer = observer_;
    engine_ =
        std::make_unique<ServingEngine>(testing::MakeCountingBackend(MakeBackend(BackendKind::kCpu).value()), options);
  }

  // The synthetic model.
  std::shared_ptr<LoadedModel> Load(const ModelOptions& model_options = {},
                                    const SchedulerOptions& scheduler_options = {}, std::string version = "1") {
    auto model =
        engine_->LoadModel(ModelLabel{"tiny", std::move(version)}, host_, nullptr, model_options, scheduler_options);
    EXPECT_TRUE(model.ok()) << model.status();
    return std::move(model).value();
  }

  std::shared_ptr<LoadedModel> LoadStories(const testing::SharedModel& stories) {
    auto model = engine_->LoadModel(ModelLabel{"stories260K", "1"}, stories.host, stories.tokenizer, ModelOptions{},
                                    SchedulerOptions{});
    EXPECT_TRUE(model.ok()) << model.status();
    return std::move(model).value();
  }

  std::shared_ptr<RecordingSink> Submit(const std::shared_ptr<LoadedModel>& model, GenerationRequest request,
                                        RequestHandle* handle = nullptr) {
    auto sink = std::make_shared<RecordingSink>();
    auto submitted = engine_->Submit(model, std::move(request), sink);
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    if (handle != nullptr && submitted.ok()) *handle = *submitted;
    return sink;
  }

  // Offline generation on a model of our own, for reference outputs.
  GenerationResult GenerateAlone(const GenerationRequest& request, const HostModel& host, const Tokenizer* tokenizer) {
    auto backend = MakeBackend(BackendKind::kCpu).value();
    auto model = Model::Create(*backend, host, ModelOptions{}).value();
    auto result = Generate(*model, tokenizer, request);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : GenerationResult{};
  }

  size_t DeviceBytes() const { return engine_->Stats().device_memory.used_bytes; }

  std::shared_ptr<testing::CountingObserver> observer_ = std::make_shared<testing::CountingObserver>();
  std::shared_ptr<const HostModel> host_ = testing::SynthTinyModel(7);
  std::unique_ptr<ServingEngine> engine_;
};

TEST_F(ServingEngineTest, Stories260KWritesTheReferenceText) {
  NIBBLE_REQUIRE_STORIES260K(stories);
  auto model = LoadStories(stories);
  GenerationRequest request = Request({stories.tokenizer->bos_id()}, 40);
  auto sink = Submit(model, request);
  ASSERT_TRUE(sink->WaitForFinish());
  // What llama2.c's run.c prints for stories260K at temperature 0.
  EXPECT_THAT(sink->text(),
              ::testing::StartsWith("Once upon a time, there was a little girl named Lily. She loved to play"));
}

const std::vector<std::string> kOpenings = {"Once upon a time",       "Lily and Tom went to the park",
                                            "The little dog was sad", "One day, a big bird",
                                            "Tim had a red ball.",    "Mom said, \"",
                                            "There was a tree",       "Sue liked to sing"};

TEST_F(ServingEngineTest, GreedyStreamsEqualOfflineGenerate) {
  NIBBLE_REQUIRE_STORIES260K(stories);
  auto model = LoadStories(stories);
  std::vector<GenerationRequest> requests;
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (size_t i = 0; i < kOpenings.size(); ++i) {
    GenerationRequest request = Request({}, 20 + 5 * static_cast<int32_t>(i));
    request.prompt = kOpenings[i];
    requests.push_back(request);
    sinks.push_back(Submit(model, request));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(sinks[i]->WaitForFinish());
    const GenerationResult alone = GenerateAlone(requests[i], *stories.host, stories.tokenizer.get());
    EXPECT_EQ(sinks[i]->tokens(), alone.tokens) << "request " << i;
    EXPECT_EQ(sinks[i]->text(), alone.text) << "request " << i;
    const GenerationFinish finish = *sinks[i]->finish();
    EXPECT_EQ(finish.reason, FinishReason::kLength);
    EXPECT_TRUE(finish.status.ok());
    EXPECT_EQ(finish.usage.prompt_tokens, alone.usage.prompt_tokens);
    EXPECT_EQ(finish.usage.completion_tokens, *requests[i].max_tokens);
    ASSERT_TRUE(finish.usage.time_to_first_token_seconds.has_value());
    EXPECT_LE(finish.usage.queue_seconds, *finish.usage.time_to_first_token_seconds);
    EXPECT_LE(*finish.usage.time_to_first_token_seconds, finish.usage.total_seconds);
  }
  EXPECT_EQ(observer_->finished(FinishReason::kLength), static_cast<int>(requests.size()));
  EXPECT_GT(observer_->token_latencies(), 0);
}

// 64 requests with 64 different sampling settings (and some stop strings), submitted from four threads.
GenerationRequest VariedRequest(uint32_t i) {
  GenerationRequest request;
  request.prompt = kOpenings[i % kOpenings.size()];
  request.max_tokens = 8 + static_cast<int32_t>(i % 17);
  SamplingParams& s = request.sampling;
  s.temperature = std::array{0.0f, 0.6f, 1.0f, 1.4f}[i % 4];
  s.top_k = std::array{0, 5, 40}[i % 3];
  s.top_p = std::array{1.0f, 0.9f, 0.5f}[(i / 3) % 3];
  s.min_p = std::array{0.0f, 0.05f}[(i / 2) % 2];
  s.repetition_penalty = std::array{1.0f, 1.3f}[(i / 4) % 2];
  s.presence_penalty = std::array{0.0f, 0.5f}[(i / 8) % 2];
  s.frequency_penalty = std::array{0.0f, 0.3f}[(i / 16) % 2];
  s.num_logprobs = std::array{0, 3}[(i / 5) % 2];
  s.seed = 7919 * i;
  if (i % 3 == 0) request.stop = {".", " and"};
  return request;
}

TEST_F(ServingEngineTest, SixtyFourConcurrentRequestsCompleteAndSeededOnesRepeat) {
  NIBBLE_REQUIRE_STORIES260K(stories);
  auto model = LoadStories(stories);
  std::vector<std::shared_ptr<RecordingSink>> first(64);
  std::vector<std::thread> clients;
  for (uint32_t t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (uint32_t i = t; i < 64; i += 4) first[i] = Submit(model, VariedRequest(i));
    });
  }
  for (auto& client : clients) client.join();

  for (uint32_t i = 0; i < 64; ++i) {
    ASSERT_TRUE(first[i]->WaitForFinish()) << "request " << i;
    const GenerationFinish finish = *first[i]->finish();
    const GenerationRequest request = VariedRequest(i);
    EXPECT_TRUE(finish.status.ok()) << finish.status;
    EXPECT_EQ(finish.usage.completion_tokens, static_cast<int32_t>(first[i]->tokens().size()));
    const std::string text = first[i]->text();
    for (const std::string& stop : request.stop) EXPECT_EQ(text.find(stop), std::string::npos) << text;
    if (finish.reason == FinishReason::kLength) {
      EXPECT_EQ(finish.usage.completion_tokens, *request.max_tokens);
    } else {
      EXPECT_EQ(finish.reason, FinishReason::kStop);
    }
    size_t logprobs = 0;
    for (const GenerationEvent& event : first[i]->events()) {
      logprobs += event.logprobs.size();
      for (const SampledToken& token : event.logprobs) {
        EXPECT_EQ(token.top_logprobs.size(), 3u);
        EXPECT_LE(token.logprob, 0.0f);
      }
    }
    EXPECT_EQ(logprobs, request.sampling.num_logprobs > 0 ? first[i]->tokens().size() : 0u);
  }
  EXPECT_GT(observer_->finished(FinishReason::kStop), 0);  // the stop strings did stop some

  // Resubmitted in the opposite order (so in other batches), each request repeats exactly.
  std::vector<std::shared_ptr<RecordingSink>> again(64);
  for (int i = 63; i >= 0; --i) again[i] = Submit(model, VariedRequest(static_cast<uint32_t>(i)));
  for (uint32_t i = 0; i < 64; ++i) {
    ASSERT_TRUE(again[i]->WaitForFinish());
    EXPECT_EQ(again[i]->tokens(), first[i]->tokens()) << "request " << i;
    EXPECT_EQ(again[i]->text(), first[i]->text()) << "request " << i;
  }
  EXPECT_EQ(model->stats().kv_cache_usage, 0.0);
  EXPECT_EQ(observer_->finished(), 128);
}

TEST_F(ServingEngineTest, CancelledRequestsStopWithinAStepAndFreeTheirBlocks) {
  auto model = Load();
  std::vector<std::shared_ptr<RecordingSink>> sinks(16);
  std::vector<RequestHandle> handles(16);
  for (uint32_t i = 0; i < 16; ++i) sinks[i] = Submit(model, Request(RandomPrompt(8, i), 240), &handles[i]);
  std::vector<size_t> tokens_at_cancel(16);
  for (uint32_t i = 0; i < 16; i += 2) {
    sinks[i]->WaitForTokens(2);
    handles[i].Cancel();
    tokens_at_cancel[i] = sinks[i]->num_tokens();
  }
  for (uint32_t i = 0; i < 16; ++i) {
    ASSERT_TRUE(sinks[i]->WaitForFinish());
    const GenerationFinish finish = *sinks[i]->finish();
    if (i % 2 == 0) {
      EXPECT_EQ(finish.reason, FinishReason::kCancelled);
      EXPECT_EQ(finish.status.code(), absl::StatusCode::kCancelled);
      EXPECT_LE(sinks[i]->num_tokens(), tokens_at_cancel[i] + 1) << "request " << i;  // at most the step under way
      EXPECT_LT(sinks[i]->num_tokens(), 240u);
    } else {
      EXPECT_EQ(finish.reason, FinishReason::kLength);
    }
  }
  EXPECT_EQ(observer_->finished(FinishReason::kCancelled), 8);
  EXPECT_EQ(model->stats().kv_cache_usage, 0.0);
  handles[0].Cancel();  // after the end: nothing happens
}

TEST_F(ServingEngineTest, FullQueueIsResourceExhausted) {
  SchedulerOptions scheduler_options;
  scheduler_options.max_waiting = 3;
  auto model = Load(ModelOptions{}, scheduler_options);
  auto gate = std::make_shared<GateSink>();
  ASSERT_TRUE(engine_->Submit(model, Request(RandomPrompt(4, 0), 20), gate).ok());
  gate->WaitUntilHolding();  // the engine thread stands still: nothing submitted now is taken

  std::vector<std::shared_ptr<RecordingSink>> queued;
  for (uint32_t i = 1; i <= 3; ++i) queued.push_back(Submit(model, Request(RandomPrompt(4, i), 5)));
  const ModelStats stats = model->stats();
  EXPECT_EQ(stats.running, 1);
  EXPECT_EQ(stats.waiting, 3);
  auto refused = engine_->Submit(model, Request(RandomPrompt(4, 9), 5), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("3 requests waiting"));

  gate->Open();
  for (const auto& sink : queued) {
    ASSERT_TRUE(sink->WaitForFinish());
    EXPECT_EQ(sink->finish()->reason, FinishReason::kLength);
  }
  ASSERT_TRUE(gate->WaitForFinish());
}

TEST_F(ServingEngineTest, AdmissionCountsEachRequestOnceWhileTheEngineTakesThem) {
  // One seat, held by a long request; every other request waits until its deadline (already passed) ends it
  // at the engine's next step. Each of kThreads threads keeps one such request in flight at a time, so at
  // most kThreads - 1 others wait when one submits: a queue of kThreads never refuses one, unless the
  // admission check counts a request twice as the engine thread takes it (posted and waiting at once).
  constexpr int kThreads = 4;
  ModelOptions one_seat;
  one_seat.max_seqs = 1;
  SchedulerOptions scheduler_options;
  scheduler_options.max_waiting = kThreads;
  auto model = Load(one_seat, scheduler_options);
  RequestHandle runner_handle;
  auto runner = Submit(model, Request(RandomPrompt(4, 0), 480), &runner_handle);
  runner->WaitForTokens(1);

  std::atomic<bool> stop{false};
  std::atomic<int> taken{0};
  std::vector<std::string> refusals[kThreads];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!stop) {
        GenerationRequest request = Request(RandomPrompt(4, t + 1), 5);
        request.deadline = Clock::now();
        auto sink = std::make_shared<RecordingSink>();
        auto submitted = engine_->Submit(model, std::move(request), sink);
        if (!submitted.ok()) {
          refusals[t].push_back(std::string(submitted.status().message()));
          continue;
        }
        ASSERT_TRUE(sink->WaitForFinish());
        EXPECT_EQ(sink->finish()->status.code(), absl::StatusCode::kDeadlineExceeded);
        ++taken;
      }
    });
  }
  const auto until = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < until && !runner->finish().has_value())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (std::thread& thread : threads) thread.join();
  runner_handle.Cancel();
  ASSERT_TRUE(runner->WaitForFinish());

  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(refusals[t].empty()) << refusals[t].size() << " refusals, the first: " << refusals[t].front();
  }
  EXPECT_GT(taken, 10 * kThreads);  // the race ran (about one request per thread per engine step)
  EXPECT_EQ(model->stats().waiting, 0);
}

TEST_F(ServingEngineTest, RequestsThatWaitTooLongAreDeadlineExceeded) {
  SchedulerOptions scheduler_options;
  scheduler_options.queue_timeout = std::chrono::milliseconds(20);
  auto model = Load(ModelOptions{}, scheduler_options);
  auto gate = std::make_shared<GateSink>();
  ASSERT_TRUE(engine_->Submit(model, Request(RandomPrompt(4, 0), 20), gate).ok());
  gate->WaitUntilHolding();

  auto timed_out = Submit(model, Request(RandomPrompt(4, 1), 5));  // the queue timeout
  GenerationRequest with_deadline = Request(RandomPrompt(4, 2), 5);
  with_deadline.deadline = Clock::now() + std::chrono::milliseconds(10);  // its own deadline
  auto expired = Submit(model, with_deadline);
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  gate->Open();

  for (const auto& sink : {timed_out, expired}) {
    ASSERT_TRUE(sink->WaitForFinish());
    EXPECT_EQ(sink->finish()->reason, FinishReason::kError);
    EXPECT_EQ(sink->finish()->status.code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_TRUE(sink->tokens().empty());
    EXPECT_FALSE(sink->finish()->usage.time_to_first_token_seconds.has_value());
  }
  ASSERT_TRUE(gate->WaitForFinish());
  EXPECT_EQ(gate->finish()->reason, FinishReason::kLength);
  EXPECT_EQ(observer_->finished(FinishReason::kError), 2);
}

TEST_F(ServingEngineTest, InvalidRequestsAreRefusedNamingTheField) {
  ModelOptions small_cache;
  small_cache.max_context = 256;
  small_cache.kv_blocks = 4;  // 64 tokens
  small_cache.kv_block_size = 16;
  auto model = Load(small_cache);
  struct Case {
    std::string field;
    std::function<void(GenerationRequest&)> spoil;
  };
  const std::vector<Case> cases = {
      {"prompt is empty", [](GenerationRequest& r) { r.prompt_token_ids.clear(); }},
      {"prompt and prompt_token_ids", [](GenerationRequest& r) { r.prompt = "text"; }},
      {"prompt is text", [](GenerationRequest& r) { r.prompt_token_ids.clear(), r.prompt = "text"; }},
      {"max_tokens must be positive", [](GenerationRequest& r) { r.max_tokens = 0; }},
      {"max_tokens", [](GenerationRequest& r) { r.max_tokens = -3; }},
      {"max_tokens = 60 with a prompt of 8 tokens exceeds the KV cache",
       [](GenerationRequest& r) { r.max_tokens = 60; }},
      {"max_tokens = 250 with a prompt of 8 tokens exceeds the model's context",
       [](GenerationRequest& r) { r.max_tokens = 250; }},
      {"prompt has 64 tokens",
       [](GenerationRequest& r) { r.prompt_token_ids = RandomPrompt(64, 1), r.max_tokens.reset(); }},
      {"temperature", [](GenerationRequest& r) { r.sampling.temperature = -0.5f; }},
      {"temperature", [](GenerationRequest& r) { r.sampling.temperature = std::nanf(""); }},
      {"top_p", [](GenerationRequest& r) { r.sampling.top_p = 0.0f; }},
      {"top_p", [](GenerationRequest& r) { r.sampling.top_p = 1.5f; }},
      {"top_k", [](GenerationRequest& r) { r.sampling.top_k = -1; }},
      {"min_p", [](GenerationRequest& r) { r.sampling.min_p = -0.1f; }},
      {"min_p", [](GenerationRequest& r) { r.sampling.min_p = 1.5f; }},
      {"repetition_penalty", [](GenerationRequest& r) { r.sampling.repetition_penalty = 0.0f; }},
      {"presence_penalty", [](GenerationRequest& r) { r.sampling.presence_penalty = INFINITY; }},
      {"frequency_penalty", [](GenerationRequest& r) { r.sampling.frequency_penalty = std::nanf(""); }},
      {"prompt_token_ids[3] = 512", [](GenerationRequest& r) { r.prompt_token_ids[3] = 512; }},
      {"prompt_token_ids[0] = -1", [](GenerationRequest& r) { r.prompt_token_ids[0] = -1; }},
      {"stop has 17 strings", [](GenerationRequest& r) { r.stop.assign(17, "x"); }},
      {"stop", [](GenerationRequest& r) { r.stop = {"x"}; }},  // this model has no tokenizer
      {"stop_token_ids[1] = 600",
       [](GenerationRequest& r) {
         r.stop_token_ids = {5, 600};
       }},
      {"logprobs", [](GenerationRequest& r) { r.sampling.num_logprobs = 21; }},
      {"logprobs", [](GenerationRequest& r) { r.sampling.num_logprobs = -1; }},
  };
  for (const Case& c : cases) {
    GenerationRequest request = Request(RandomPrompt(8, 0), 10);
    request.id = "bad-1";
    c.spoil(request);
    auto sink = std::make_shared<RecordingSink>();
    auto submitted = engine_->Submit(model, request, sink);
    EXPECT_EQ(submitted.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(submitted.status().message(), HasSubstr("request bad-1: " + c.field));
    EXPECT_TRUE(sink->events().empty());
  }
  EXPECT_EQ(model->stats().waiting, 0);
  EXPECT_EQ(observer_->finished(), 0);
}

TEST_F(ServingEngineTest, UnloadLetsRequestsInFlightFinishThenFreesTheModel) {
  const size_t bytes_before = DeviceBytes();
  auto model = Load();
  EXPECT_GT(DeviceBytes(), bytes_before);
  auto gate = std::make_shared<GateSink>();
  ASSERT_TRUE(engine_->Submit(model, Request(RandomPrompt(4, 0), 30), gate).ok());
  gate->WaitUntilHolding();
  std::vector<std::shared_ptr<RecordingSink>> in_flight;
  for (uint32_t i = 1; i <= 3; ++i) in_flight.push_back(Submit(model, Request(RandomPrompt(4, i), 30)));

  ASSERT_TRUE(engine_->Unload(model).ok());
  EXPECT_EQ(model->state(), ModelState::kUnloading);
  auto refused = engine_->Submit(model, Request(RandomPrompt(4, 9), 5), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("model tiny version 1 is unloading"));

  gate->Open();
  for (const auto& sink : in_flight) {
    ASSERT_TRUE(sink->WaitForFinish());
    EXPECT_EQ(sink->finish()->reason, FinishReason::kLength);
    EXPECT_EQ(sink->tokens().size(), 30u);
  }
  ASSERT_TRUE(gate->WaitForFinish());
  EXPECT_EQ(gate->finish()->reason, FinishReason::kLength);
  for (int i = 0; i < 2000 && model->state() != ModelState::kUnloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(model->state(), ModelState::kUnloaded);
  EXPECT_EQ(DeviceBytes(), bytes_before);
  EXPECT_TRUE(engine_->Stats().models.empty());
  EXPECT_TRUE(engine_->Unload(model).ok());
}

TEST_F(ServingEngineTest, NewVersionLoadsWhileTheOldOneServes) {
  auto v1 = Load();
  std::vector<std::shared_ptr<RecordingSink>> old_streams;
  for (uint32_t i = 0; i < 4; ++i) old_streams.push_back(Submit(v1, Request(RandomPrompt(6, i), 200)));
  old_streams[0]->WaitForTokens(1);
  auto v2 = Load(ModelOptions{}, SchedulerOptions{}, "2");
  ASSERT_TRUE(engine_->Unload(v1).ok());
  auto new_stream = Submit(v2, Request(RandomPrompt(6, 0), 20));

  ASSERT_TRUE(new_stream->WaitForFinish());
  EXPECT_EQ(new_stream->tokens(), GenerateAlone(Request(RandomPrompt(6, 0), 20), *host_, nullptr).tokens);
  for (const auto& sink : old_streams) {
    ASSERT_TRUE(sink->WaitForFinish());
    EXPECT_EQ(sink->finish()->reason, FinishReason::kLength);
  }
  EXPECT_EQ(v2->state(), ModelState::kServing);
  const EngineStats stats = engine_->Stats();
  ASSERT_GE(stats.models.size(), 1u);
  EXPECT_EQ(stats.models.back().label.version, "2");
}

TEST_F(ServingEngineTest, DrainLetsRequestsFinishBeforeItsDeadline) {
  auto model = Load();
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (uint32_t i = 0; i < 8; ++i) sinks.push_back(Submit(model, Request(RandomPrompt(5, i), 40)));
  engine_->Drain(Clock::now() + std::chrono::seconds(60));
  for (const auto& sink : sinks) {
    ASSERT_TRUE(sink->finish().has_value());  // Drain returned after every request ended
    EXPECT_EQ(sink->finish()->reason, FinishReason::kLength);
  }
  auto refused = engine_->Submit(model, Request(RandomPrompt(5, 0), 5), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  auto load = engine_->LoadModel(ModelLabel{"tiny", "2"}, host_, nullptr, ModelOptions{}, SchedulerOptions{});
  EXPECT_EQ(load.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ServingEngineTest, DrainEndsWhatOutlivesItsDeadline) {
  auto model = Load();
  auto gate = std::make_shared<GateSink>();
  ASSERT_TRUE(engine_->Submit(model, Request(RandomPrompt(4, 0), 100), gate).ok());
  gate->WaitUntilHolding();
  std::vector<std::shared_ptr<RecordingSink>> queued;
  for (uint32_t i = 1; i <= 3; ++i) queued.push_back(Submit(model, Request(RandomPrompt(4, i), 100)));

  std::thread drainer([&] { engine_->Drain(Clock::now() + std::chrono::milliseconds(20)); });
  // Draining has begun once Submit is refused as UNAVAILABLE.
  while (engine_->Submit(model, Request(RandomPrompt(4, 0), 5), std::make_shared<RecordingSink>()).status().code() !=
         absl::StatusCode::kUnavailable) {
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  gate->Open();
  drainer.join();

  for (const auto& sink : queued) {
    ASSERT_TRUE(sink->finish().has_value());
    EXPECT_EQ(sink->finish()->reason, FinishReason::kCancelled);
    EXPECT_EQ(sink->finish()->status.code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(sink->tokens().empty());
  }
  ASSERT_TRUE(gate->finish().has_value());
  EXPECT_EQ(gate->finish()->reason, FinishReason::kCancelled);
  EXPECT_EQ(model->stats().kv_cache_usage, 0.0);
}

TEST_F(ServingEngineTest, ShutdownEndsEveryRequestWithOneFinalEvent) {
  auto model = Load();
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (uint32_t i = 0; i < 8; ++i) sinks.push_back(Submit(model, Request(RandomPrompt(5, i), 200)));
  sinks[0]->WaitForTokens(1);
  engine_->Shutdown();
  for (const auto& sink : sinks) {
    const std::vector<GenerationEvent> events = sink->events();
    ASSERT_FALSE(events.empty());
    ASSERT_TRUE(events.back().finish.has_value());
    for (size_t e = 0; e + 1 < events.size(); ++e) EXPECT_FALSE(events[e].finish.has_value());
  }
  EXPECT_EQ(model->state(), ModelState::kUnloaded);
  auto refused = engine_->Submit(model, Request(RandomPrompt(5, 0), 5), std::make_shared<RecordingSink>());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  engine_->Shutdown();  // idempotent
}

}  // namespace
}  // namespace nibble
