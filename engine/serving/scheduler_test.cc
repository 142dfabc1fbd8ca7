// The continuous-batching scheduler on the CPU backend, stepped by hand (no engine thread): batching leaves
// every stream unchanged and preemption recomputes seamlessly (on stories260K, a real model), chunked
// prefill interleaves with decodes, cancellation and deadlines end requests at the next step and free
// their KV blocks (on a synthetic model), and generation stops at the tokenizer's end ids too.
#include "engine/serving/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "engine/backends/backend_factory.h"
#include "engine/base/file_io.h"
#include "engine/serving/generation.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/support/serving_test_support.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using ::testing::HasSubstr;
using testing::RecordingSink;

std::vector<int32_t> RandomPrompt(size_t length, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> token(3, 511);  // no BOS or EOS
  std::vector<int32_t> prompt(length);
  for (int32_t& id : prompt) id = token(rng);
  return prompt;
}

// Prompts of `count` different lengths: BOS and growing prefixes of a story.
std::vector<std::vector<int32_t>> StoryPrompts(const Tokenizer& tokenizer, size_t count) {
  const std::vector<int32_t> story =
      tokenizer
          .Encode(
              "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
              "One day, she saw a big, red ball. She wanted to play with it, but it was too high.")
          .value();
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < count; ++i) {
    std::vector<int32_t> prompt = {tokenizer.bos_id()};
    prompt.insert(prompt.end(), story.begin(), story.begin() + std::min(story.size(), 5 * i));
    prompts.push_back(prompt);
  }
  return prompts;
}

GenerationRequest Request(std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest request;
  request.prompt_token_ids = std::move(prompt);
  request.max_tokens = max_tokens;
  request.sampling.temperature = 0.0f;
  request.ignore_eos = true;
  return request;
}

class SchedulerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Model> MakeModel(const ModelOptions& options) { return MakeModel(options, *host_); }
  std::unique_ptr<Model> MakeModel(const ModelOptions& options, const HostModel& host) {
    auto model = Model::Create(*backend_, host, options);
    EXPECT_TRUE(model.ok()) << model.status();
    return std::move(model).value();
  }

  // Queues `request` on `scheduler`; returns its sink and its control.
  std::pair<std::shared_ptr<RecordingSink>, std::shared_ptr<RequestControl>> Add(Scheduler& scheduler,
                                                                                 GenerationRequest request) {
    auto prepared = PrepareRequest(std::move(request), scheduler.limits(), nullptr);
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    auto sink = std::make_shared<RecordingSink>();
    auto control = std::make_shared<RequestControl>();
    scheduler.Add(*std::move(prepared), sink, control, Scheduler::Clock::now());
    return {sink, control};
  }

  // Runs `requests` together on `model` until all end; returns each one's tokens.
  std::vector<std::vector<int32_t>> RunTogether(Model& model, const std::vector<GenerationRequest>& requests,
                                                ServingObserver* observer = nullptr) {
    Scheduler scheduler(model, nullptr, ModelLabel{"tiny", "1"}, SchedulerOptions{}, observer);
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    for (const GenerationRequest& request : requests) sinks.push_back(Add(scheduler, request).first);
    while (!scheduler.idle()) scheduler.Step();
    std::vector<std::vector<int32_t>> tokens;
    for (const auto& sink : sinks) {
      EXPECT_TRUE(sink->finish().has_value());
      EXPECT_EQ(sink->finish()->reason, FinishReason::kLength) << sink->finish()->status;
      tokens.push_back(sink->tokens());
    }
    return tokens;
  }

  std::unique_ptr<Backend> backend_ = MakeBackend(BackendKind::kCpu).value();
  std::shared_ptr<const HostModel> host_ = testing::SynthTinyModel(7);
};

TEST_F(SchedulerTest, BatchedGreedyStreamsEqualEachRunAlone) {
  NIBBLE_REQUIRE_STORIES260K(stories);
  ModelOptions options;
  options.max_step_tokens = 16;  // prompts up to 36 tokens prefill in chunks
  options.max_seqs = 8;
  std::unique_ptr<Model> model = MakeModel(options, *stories.host);
  std::vector<GenerationRequest> requests;
  for (const std::vector<int32_t>& prompt : StoryPrompts(*stories.tokenizer, 8)) {
    requests.push_back(Request(prompt, 12 + 2 * static_cast<int32_t>(requests.size())));
  }

  const std::vector<std::vector<int32_t>> together = RunTogether(*model, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto alone = Generate(*model, nullptr, requests[i]);
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_EQ(together[i], alone->tokens) << "request " << i;
    EXPECT_EQ(static_cast<int32_t>(alone->tokens.size()), *requests[i].max_tokens);
  }
  EXPECT_EQ(model->kv_pool()->usage(), 0.0);
}

TEST_F(SchedulerTest, ChunkedPrefillNeverStallsARunningStream) {
  ModelOptions options;
  options.max_step_tokens = 8;
  options.max_seqs = 4;
  std::unique_ptr<Model> model = MakeModel(options);
  Scheduler scheduler(*model, nullptr, ModelLabel{"tiny", "1"}, SchedulerOptions{}, nullptr);

  auto [running, running_control] = Add(scheduler, Request(RandomPrompt(4, 1), 40));
  ASSERT_TRUE(scheduler.Step());
  ASSERT_EQ(running->num_tokens(), 1u);

  // A 60-token prompt arrives: each step decodes the running stream (1 token) and prefills 7 prompt tokens,
  // so the newcomer's first token comes with the 9th step (ceil(60 / 7)) and the stream never waits.
  auto [newcomer, newcomer_control] = Add(scheduler, Request(RandomPrompt(60, 2), 5));
  for (size_t step = 1; step <= 9; ++step) {
    ASSERT_TRUE(scheduler.Step());
    EXPECT_EQ(running->num_tokens(), 1 + step) << "step " << step;
    EXPECT_EQ(newcomer->num_tokens(), step == 9 ? 1u : 0u) << "step " << step;
  }
  while (!scheduler.idle()) scheduler.Step();
  EXPECT_EQ(running->num_tokens(), 40u);
  EXPECT_EQ(newcomer->num_tokens(), 5u);
}

TEST_F(SchedulerTest, PreemptedStreamsContinueWithTheSameTokens) {
  // Six requests of 8 + 24 tokens need 8 blocks of 4 each at the end: 48 blocks, and the cache has 24.
  ModelOptions small;
  small.kv_block_size = 4;
  small.kv_blocks = 24;
  small.max_seqs = 8;
  NIBBLE_REQUIRE_STORIES260K(stories);
  std::vector<GenerationRequest> requests;
  for (uint32_t i = 0; i < 6; ++i) {
    std::vector<int32_t> prompt = StoryPrompts(*stories.tokenizer, 3)[2];  // BOS and 10 tokens
    prompt.resize(8);
    prompt.back() = 100 + static_cast<int32_t>(i);  // different for each
    GenerationRequest request = Request(prompt, 24);
    if (i % 2 == 1) {  // seeded sampling must survive recomputation too
      request.sampling.temperature = 0.9f;
      request.sampling.top_k = 50;
      request.sampling.seed = 1000 + i;
    }
    requests.push_back(request);
  }
  std::unique_ptr<Model> roomy = MakeModel(ModelOptions{}, *stories.host);
  const std::vector<std::vector<int32_t>> expected = RunTogether(*roomy, requests);

  std::unique_ptr<Model> cramped = MakeModel(small, *stories.host);
  testing::CountingObserver observer;
  const std::vector<std::vector<int32_t>> got = RunTogether(*cramped, requests, &observer);
  EXPECT_GT(observer.preemptions(), 0);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(cramped->kv_pool()->usage(), 0.0);
}

TEST_F(SchedulerTest, CancelledRequestEndsAtTheNextStepAndFreesItsBlocks) {
  std::unique_ptr<Model> model = MakeModel(ModelOptions{});
  Scheduler scheduler(*model, nullptr, ModelLabel{"tiny", "1"}, SchedulerOptions{}, nullptr);
  auto [kept, kept_control] = Add(scheduler, Request(RandomPrompt(20, 1), 30));
  auto [cancelled, cancelled_control] = Add(scheduler, Request(RandomPrompt(40, 2), 30));
  for (int i = 0; i < 3; ++i) scheduler.Step();
  const int32_t blocks_of_both = model->kv_pool()->num_blocks() - model->kv_pool()->num_free();

  cancelled_control->cancelled = true;
  const size_t tokens_before = cancelled->num_tokens();
  scheduler.Step();
  ASSERT_TRUE(cancelled->finish().has_value());
  EXPECT_EQ(cancelled->finish()->reason, FinishReason::kCancelled);
  EXPECT_EQ(cancelled->finish()->status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(cancelled->num_tokens(), tokens_before);
  EXPECT_EQ(cancelled->finish()->usage.completion_tokens, static_cast<int32_t>(tokens_before));
  EXPECT_LT(model->kv_pool()->num_blocks() - model->kv_pool()->num_free(), blocks_of_both);
  EXPECT_EQ(scheduler.num_running(), 1);

  while (!scheduler.idle()) scheduler.Step();
  EXPECT_EQ(kept->finish()->reason, FinishReason::kLength);
  EXPECT_EQ(model->kv_pool()->usage(), 0.0);
}

TEST_F(SchedulerTest, DeadlinesEndWaitingAndRunningRequests) {
  ModelOptions options;
  options.max_seqs = 1;  // the second request has to wait
  std::unique_ptr<Model> model = MakeModel(options);
  SchedulerOptions scheduler_options;
  scheduler_options.queue_timeout = std::chrono::milliseconds(5);
  Scheduler scheduler(*model, nullptr, ModelLabel{"tiny", "1"}, scheduler_options, nullptr);

  GenerationRequest first = Request(RandomPrompt(4, 1), 100);
  first.deadline = Scheduler::Clock::now() + std::chrono::milliseconds(30);
  auto [running, running_control] = Add(scheduler, first);
  scheduler.Step();
  auto [waiting, waiting_control] = Add(scheduler, Request(RandomPrompt(4, 2), 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  scheduler.Step();
  ASSERT_TRUE(waiting->finish().has_value());
  EXPECT_EQ(waiting->finish()->reason, FinishReason::kError);
  EXPECT_EQ(waiting->finish()->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(waiting->finish()->status.message(), HasSubstr("in the queue"));
  EXPECT_TRUE(waiting->tokens().empty());
  EXPECT_FALSE(running->finish().has_value());  // admitted: the queue timeout no longer applies

  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  scheduler.Step();
  ASSERT_TRUE(running->finish().has_value());
  EXPECT_EQ(running->finish()->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(running->finish()->status.message(), HasSubstr("while generating"));
  EXPECT_TRUE(scheduler.idle());
  EXPECT_EQ(model->kv_pool()->usage(), 0.0);
}

TEST_F(SchedulerTest, EndAllSendsOneFinalEventToEveryRequest) {
  ModelOptions options;
  options.max_seqs = 1;
  std::unique_ptr<Model> model = MakeModel(options);
  Scheduler scheduler(*model, nullptr, ModelLabel{"tiny", "1"}, SchedulerOptions{}, nullptr);
  auto [running, running_control] = Add(scheduler, Request(RandomPrompt(4, 1), 50));
  auto [waiting, waiting_control] = Add(scheduler, Request(RandomPrompt(4, 2), 50));
  scheduler.Step();
  scheduler.EndAll(FinishReason::kCancelled, absl::UnavailableError("shutting down"));
  for (const auto& sink : {running, waiting}) {
    ASSERT_TRUE(sink->finish().has_value());
    EXPECT_EQ(sink->finish()->status.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(sink->events().back().finish->reason, FinishReason::kCancelled);
  }
  EXPECT_TRUE(scheduler.idle());
  EXPECT_EQ(model->kv_pool()->usage(), 0.0);
}

TEST_F(SchedulerTest, GenerationStopsAtTheEndIdsOfTheTokenizersGenerationConfig) {
  ModelOptions options;
  std::unique_ptr<Model> model = MakeModel(options);
  GenerationRequest request = Request(RandomPrompt(4, 3), 6);
  const std::vector<std::vector<int32_t>> free_run = RunTogether(*model, {request});
  ASSERT_EQ(free_run[0].size(), 6u);
  const std::vector<int32_t>& config_eos = model->config().eos_token_ids;
  for (int i = 0; i < 3; ++i) ASSERT_THAT(config_eos, ::testing::Not(::testing::Contains(free_run[0][i])));
  const int32_t third = free_run[0][2];
  const auto first_third = std::find(free_run[0].begin(), free_run[0].end(), third);

  // A tokenizer.json whose generation_config.json names the third generated token as one of its end ids.
  testing::TempDir dir;
  nlohmann::json vocab = nlohmann::json::object();
  for (int32_t id = 0; id < model->config().vocab_size; ++id) vocab[absl::StrCat("<t", id, ">")] = id;
  const nlohmann::json tokenizer_json = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}, {"unk_token", "<t0>"}}},
      {"decoder", {{"type", "Fuse"}}}};
  ASSERT_TRUE(WriteFileContents(dir.path() / "tokenizer.json", tokenizer_json.dump()).ok());
  ASSERT_TRUE(WriteFileContents(dir.path() / "generation_config.json",
                                absl::StrCat("{\"eos_token_id\": [", model->config().vocab_size - 1, ", ", third, "]}"))
                  .ok());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadHfTokenizer(dir.path() / "tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  Scheduler scheduler(*model, tokenizer->get(), ModelLabel{"tiny", "1"}, SchedulerOptions{}, nullptr);
  EXPECT_THAT(scheduler.limits().eos_token_ids, ::testing::IsSupersetOf(config_eos));
  request.ignore_eos = false;
  auto [sink, control] = Add(scheduler, request);
  while (!scheduler.idle()) scheduler.Step();
  ASSERT_TRUE(sink->finish().has_value());
  EXPECT_EQ(sink->finish()->reason, FinishReason::kStop);
  EXPECT_EQ(sink->tokens(), std::vector<int32_t>(free_run[0].begin(), first_third));
}

}  // namespace
}  // namespace nibble
