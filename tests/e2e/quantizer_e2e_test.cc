// nibble-quantizer end to end over loopback gRPC, in process, on the CPU backend and stories260K: a watched
// job reports each block in order and publishes a version that a running nibble-server swaps to while 16
// streams are in flight; cancellation while queued and while running; idempotent submission and consecutive
// versions; a full queue kept across a restart; bad submissions refused at once with the field named; the
// metrics after a known workload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/io/model_store.h"
#include "service/quantizer_server/job_store.h"
#include "tests/e2e/quantizer_test_support.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class QuantizerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StoriesDir() || !testing::SharedFile("data/tinystories-dev-50.txt")) {
      GTEST_SKIP() << "stories260K or tinystories-dev-50.txt not found in ../shared (set NIBBLE_SHARED)";
    }
  }
  void StartQuantizerWith(const quantizer_server::QuantizerOptions& options) {
    absl::StatusOr<TestQuantizer> started = StartQuantizer(options);
    ASSERT_TRUE(started.ok()) << started.status();
    quantizer_ = std::move(started).value();
  }
  quantizer_server::QuantizerOptions Options() const { return QuantizerLoopbackOptions(store_.path(), state_.path()); }
  grpc::Status Cancel(const std::string& id, v1::Job* job) {
    grpc::ClientContext context;
    v1::CancelJobRequest request;
    request.set_id(id);
    return quantizer_.stub->CancelJob(&context, request, job);
  }
  std::vector<uint64_t> Versions(const std::string& model) const {
    return ModelStore(store_.path()).ListVersions(model).value_or(std::vector<uint64_t>{});
  }

  testing::TempDir store_;
  testing::TempDir state_;
  TestQuantizer quantizer_;
};

TEST_F(QuantizerE2eTest, AWatchedJobReportsEachBlockInOrderAndTheServerSwapsToItWithSixteenStreamsInFlight) {
  ASSERT_EQ(PublishStories(store_.path(), "stories").value_or(0), 1u);
  server::ServerOptions server_options = LoopbackOptions(store_.path());
  server_options.max_seqs = 4;  // 16 streams take turns: they stay in flight for a while
  absl::StatusOr<TestServer> server = StartServer(server_options);
  ASSERT_TRUE(server.ok()) << server.status();
  StartQuantizerWith(Options());

  absl::StatusOr<v1::Job> job = Submit(*quantizer_.stub, StoriesJob("stories"));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  const Watched watched = WatchToEnd(*quantizer_.stub, job->id());
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  ASSERT_FALSE(watched.events.empty());

  // One message per block, in order, each carrying that block's report; blocks_done never goes back.
  std::vector<uint32_t> blocks;
  uint32_t done = 0;
  for (const v1::Job& event : watched.events) {
    EXPECT_GE(event.blocks_done(), done);
    done = event.blocks_done();
    if (event.phase() == v1::JOB_PHASE_SEARCHING && event.blocks_size() > 0 &&
        (blocks.empty() || event.blocks(event.blocks_size() - 1).index() != blocks.back())) {
      blocks.push_back(event.blocks(event.blocks_size() - 1).index());
      EXPECT_EQ(event.blocks_done(), blocks.back() + 1);
      EXPECT_EQ(event.blocks_total(), 5u);
      EXPECT_FALSE(event.blocks(event.blocks_size() - 1).scale_groups().empty());
    }
  }
  EXPECT_EQ(blocks, (std::vector<uint32_t>{0, 1, 2, 3, 4}));
  const v1::Job& final_job = watched.events.back();
  EXPECT_EQ(final_job.state(), v1::JOB_STATE_SUCCEEDED) << final_job.error();
  EXPECT_EQ(final_job.phase(), v1::JOB_PHASE_DONE);
  EXPECT_EQ(final_job.published_version(), 2u);
  EXPECT_EQ(final_job.blocks_size(), 5);
  EXPECT_TRUE(fs::exists(fs::path(final_job.published_path()) / "nibble.json"));
  EXPECT_FALSE(fs::exists(state_.path() / "jobs" / job->id())) << "the checkpoint goes with the job";
  EXPECT_EQ(Versions("stories"), (std::vector<uint64_t>{1, 2}));
  (void)server;
}

TEST_F(QuantizerE2eTest, SixteenStreamsInFlightWhenTheJobPublishesAllFinishAndTheNextRunOnTheNewVersion) {
  ASSERT_EQ(PublishStories(store_.path(), "stories").value_or(0), 1u);
  server::ServerOptions server_options = LoopbackOptions(store_.path());
  server_options.max_seqs = 2;  // the 16 streams take turns, so they outlast the swap
  absl::StatusOr<TestServer> server = StartServer(server_options);
  ASSERT_TRUE(server.ok()) << server.status();
  StartQuantizerWith(Options());

  absl::StatusOr<v1::Job> job = Submit(*quantizer_.stub, StoriesJob("stories"));
  ASSERT_TRUE(job.ok()) << job.status();
  // The streams start once the job is past its last block, so they are in flight while it publishes.
  ASSERT_TRUE(PollJob(*quantizer_.stub, job->id(), [](const v1::Job& j) { return j.blocks_done() >= 4; }).ok());
  std::vector<StreamResult> results(16);
  std::vector<std::thread> streams;
  std::atomic<int> started = 0;
  for (int i = 0; i < 16; ++i) {
    streams.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest("Once upon a time", 400);
      request.set_ignore_eos(true);
      request.clear_stop_token_ids();
      results[i] = RunStream(*server->stub, request, nullptr, &started);
    });
  }
  ASSERT_TRUE(PollJob(*quantizer_.stub, job->id(), [](const v1::Job& j) {
                return j.state() != v1::JOB_STATE_RUNNING && j.state() != v1::JOB_STATE_QUEUED;
              }).ok());
  // The server loads version 2 beside 1 while the streams run.
  uint64_t served = 0;
  ASSERT_TRUE(WaitFor([&] {
    const StreamResult probe = RunStream(*server->stub, GreedyRequest("Once", 2));
    served = probe.final ? probe.final->version() : 0;
    return served == 2;
  }));
  for (std::thread& stream : streams) stream.join();
  int on_old_version = 0;
  for (const StreamResult& result : results) {
    EXPECT_TRUE(result.status.ok()) << result.status.error_message();
    ASSERT_TRUE(result.final.has_value());
    EXPECT_EQ(result.final->usage().completion_tokens(), 400u);
    on_old_version += result.final->version() == 1;
  }
  EXPECT_GT(on_old_version, 0) << "some streams started before the swap and finished on version 1";
  const StreamResult next = RunStream(*server->stub, GreedyRequest("Once upon a time", 8));
  ASSERT_TRUE(next.final.has_value());
  EXPECT_EQ(next.final->version(), 2u);
}

TEST_F(QuantizerE2eTest, CancellingAQueuedJobEndsItAtOnceAndARunningOneWithinABlock) {
  StartQuantizerWith(Options());
  absl::StatusOr<v1::Job> running = Submit(*quantizer_.stub, StoriesJob("first", 16, 128));
  absl::StatusOr<v1::Job> queued = Submit(*quantizer_.stub, StoriesJob("second"));
  ASSERT_TRUE(running.ok() && queued.ok()) << running.status() << queued.status();

  v1::Job cancelled;
  ASSERT_TRUE(Cancel(queued->id(), &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(cancelled.error(), HasSubstr("queued"));

  ASSERT_TRUE(PollJob(*quantizer_.stub, running->id(), [](const v1::Job& j) { return j.blocks_done() >= 1; }).ok());
  v1::Job asked;
  ASSERT_TRUE(Cancel(running->id(), &asked).ok());
  absl::StatusOr<v1::Job> ended =
      PollJob(*quantizer_.stub, running->id(), [](const v1::Job& j) { return j.state() != v1::JOB_STATE_RUNNING; });
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(ended->blocks_done(), 5u);
  EXPECT_LE(ended->blocks_done(), asked.blocks_done() + 1) << "it stops within one block";
  EXPECT_FALSE(fs::exists(state_.path() / "jobs" / running->id())) << "its staging (checkpoint) directory goes";
  EXPECT_TRUE(Versions("first").empty());
  EXPECT_TRUE(Versions("second").empty());
  // Cancelling a finished job returns it unchanged; an unknown one is NOT_FOUND.
  v1::Job again;
  ASSERT_TRUE(Cancel(queued->id(), &again).ok());
  EXPECT_EQ(again.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Cancel("job-0000000000000000", &again).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(QuantizerE2eTest, ARequestIdSubmittedTwiceGivesOneJobAndTwoJobsForANameGetConsecutiveVersions) {
  StartQuantizerWith(Options());
  absl::StatusOr<v1::Job> first = Submit(*quantizer_.stub, StoriesJob("twice", 4, 64), "client-request-1");
  absl::StatusOr<v1::Job> repeated = Submit(*quantizer_.stub, StoriesJob("twice", 4, 64), "client-request-1");
  ASSERT_TRUE(first.ok() && repeated.ok()) << first.status() << repeated.status();
  EXPECT_EQ(repeated->id(), first->id());
  absl::StatusOr<v1::Job> conflicting = Submit(*quantizer_.stub, StoriesJob("other", 4, 64), "client-request-1");
  EXPECT_EQ(conflicting.status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<v1::Job> second = Submit(*quantizer_.stub, StoriesJob("twice", 4, 64));
  ASSERT_TRUE(second.ok()) << second.status();

  const Watched one = WatchToEnd(*quantizer_.stub, first->id());
  const Watched two = WatchToEnd(*quantizer_.stub, second->id());
  ASSERT_FALSE(one.events.empty() || two.events.empty());
  EXPECT_EQ(one.events.back().published_version(), 1u);
  EXPECT_EQ(two.events.back().published_version(), 2u);
  EXPECT_EQ(Versions("twice"), (std::vector<uint64_t>{1, 2}));

  // ListJobs: newest first, paged, filtered by state.
  grpc::ClientContext context;
  v1::ListJobsRequest request;
  request.set_page_size(1);
  v1::ListJobsResponse page;
  ASSERT_TRUE(quantizer_.stub->ListJobs(&context, request, &page).ok());
  ASSERT_EQ(page.jobs_size(), 1);
  EXPECT_EQ(page.jobs(0).id(), second->id());
  ASSERT_FALSE(page.next_page_token().empty());
  grpc::ClientContext next_context;
  request.set_page_token(page.next_page_token());
  ASSERT_TRUE(quantizer_.stub->ListJobs(&next_context, request, &page).ok());
  ASSERT_EQ(page.jobs_size(), 1);
  EXPECT_EQ(page.jobs(0).id(), first->id());
  EXPECT_TRUE(page.next_page_token().empty());
  grpc::ClientContext filtered_context;
  v1::ListJobsRequest failed;
  failed.set_state(v1::JOB_STATE_FAILED);
  ASSERT_TRUE(quantizer_.stub->ListJobs(&filtered_context, failed, &page).ok());
  EXPECT_EQ(page.jobs_size(), 0);
}

TEST_F(QuantizerE2eTest, ARestartWithAFullQueueKeepsEveryQueuedJobAndRunsThemAll) {
  quantizer_server::QuantizerOptions options = Options();
  options.max_queue = 2;
  StartQuantizerWith(options);
  std::vector<std::string> ids;
  absl::StatusOr<v1::Job> running = Submit(*quantizer_.stub, StoriesJob("queue", 16, 128));
  ASSERT_TRUE(running.ok()) << running.status();
  ids.push_back(running->id());
  ASSERT_TRUE(PollJob(*quantizer_.stub, running->id(), [](const v1::Job& j) { return j.blocks_done() >= 1; }).ok());
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<v1::Job> queued = Submit(*quantizer_.stub, StoriesJob("queue", 4, 64));
    ASSERT_TRUE(queued.ok()) << queued.status();
    ids.push_back(queued->id());
  }
  absl::StatusOr<v1::Job> refused = Submit(*quantizer_.stub, StoriesJob("queue", 4, 64));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("--max-queue 2"));

  quantizer_.server->Stop();  // the running job goes back to the queue with its checkpoint
  quantizer_ = TestQuantizer();
  StartQuantizerWith(options);
  std::vector<uint64_t> versions;
  for (const std::string& id : ids) {
    absl::StatusOr<v1::Job> finished = PollJob(*quantizer_.stub, id, [](const v1::Job& j) {
      return j.state() == v1::JOB_STATE_SUCCEEDED || j.state() == v1::JOB_STATE_FAILED;
    });
    ASSERT_TRUE(finished.ok()) << finished.status();
    EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED) << finished->error();
    versions.push_back(finished->published_version());
    if (id == ids.front()) {
      EXPECT_GE(finished->resumed_from_block(), 1u) << "the interrupted job went on from its checkpoint";
      EXPECT_EQ(finished->blocks_size(), 5);
    }
  }
  EXPECT_EQ(versions, (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(QuantizerE2eTest, BadSubmissionsAreRefusedAtOnceNamingTheFieldAndTheServiceGoesOn) {
  StartQuantizerWith(Options());
  const fs::path outside = state_.path() / "outside";
  fs::create_directories(outside);
  struct Case {
    std::string what;
    std::function<void(v1::JobSpec&)> change;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no source", [](v1::JobSpec& s) { s.clear_source_model(); }, absl::StatusCode::kInvalidArgument,
       "spec.source_model: required"},
      {"source outside the roots", [&](v1::JobSpec& s) { s.set_source_model(outside.string()); },
       absl::StatusCode::kPermissionDenied, "spec.source_model"},
      {"source through ..", [](v1::JobSpec& s) { s.set_source_model(s.source_model() + "/../../../../../../etc"); },
       absl::StatusCode::kPermissionDenied, "outside the source roots"},
      {"missing source", [](v1::JobSpec& s) { s.set_source_model(s.source_model() + "-missing"); },
       absl::StatusCode::kNotFound, "spec.source_model"},
      {"unknown method", [](v1::JobSpec& s) { s.set_method(static_cast<v1::QuantMethod>(7)); },
       absl::StatusCode::kInvalidArgument, "spec.method: 7"},
      {"3 bits", [](v1::JobSpec& s) { s.set_bits(3); }, absl::StatusCode::kInvalidArgument, "spec.bits: 3"},
      {"group size 48", [](v1::JobSpec& s) { s.set_group_size(48); }, absl::StatusCode::kInvalidArgument,
       "spec.group_size: 48"},
      {"group size wider than the model", [](v1::JobSpec& s) { s.set_group_size(128); },
       absl::StatusCode::kInvalidArgument, "exceeds the model's hidden_size (64)"},
      {"no samples", [](v1::JobSpec& s) { s.set_n_samples(0); }, absl::StatusCode::kInvalidArgument,
       "spec.n_samples: 0"},
      {"seqlen past the context", [](v1::JobSpec& s) { s.set_seqlen(100000); }, absl::StatusCode::kInvalidArgument,
       "spec.seqlen: 100000"},
      {"a name with a separator", [](v1::JobSpec& s) { s.set_name("a/b"); }, absl::StatusCode::kInvalidArgument,
       "spec.name"},
      {"a name of 1 MB", [](v1::JobSpec& s) { s.set_name(std::string(1 << 20, 'n')); },
       absl::StatusCode::kInvalidArgument, "spec.name"},
      {"no calibration", [](v1::JobSpec& s) { s.clear_calibration_file(); }, absl::StatusCode::kInvalidArgument,
       "spec.calibration_file: required"},
      {"calibration outside the roots", [](v1::JobSpec& s) { s.set_calibration_file("/etc/passwd"); },
       absl::StatusCode::kPermissionDenied, "spec.calibration_file"},
      {"missing eval text", [](v1::JobSpec& s) { s.set_eval_text(s.calibration_file() + ".missing"); },
       absl::StatusCode::kNotFound, "spec.eval_text"},
      {"calibration is a directory",
       [](v1::JobSpec& s) { s.set_calibration_file(fs::path(s.calibration_file()).parent_path().string()); },
       absl::StatusCode::kInvalidArgument, "is not a file"},
  };
  for (const Case& bad : cases) {
    v1::JobSpec spec = StoriesJob("stories");
    bad.change(spec);
    absl::StatusOr<v1::Job> job = Submit(*quantizer_.stub, spec);
    EXPECT_EQ(job.status().code(), bad.code) << bad.what << ": " << job.status();
    EXPECT_THAT(job.status().message(), HasSubstr(bad.message)) << bad.what;
    EXPECT_LT(job.status().message().size(), 400u) << bad.what << ": client text is quoted as a short prefix";
  }
  absl::StatusOr<v1::Job> bad_request_id = Submit(*quantizer_.stub, StoriesJob("stories"), std::string(200, 'r'));
  EXPECT_EQ(bad_request_id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_request_id.status().message(), HasSubstr("request_id"));

  // Nothing was queued; the service still takes a good job.
  grpc::ClientContext context;
  v1::ListJobsResponse listed;
  ASSERT_TRUE(quantizer_.stub->ListJobs(&context, v1::ListJobsRequest(), &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);
  absl::StatusOr<v1::Job> good = Submit(*quantizer_.stub, StoriesJob("stories", 4, 64));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(WatchToEnd(*quantizer_.stub, good->id()).events.back().state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(QuantizerE2eTest, MetricsCountTheJobsByStateAndEveryBlockAfterAKnownWorkload) {
  StartQuantizerWith(Options());
  // One job that succeeds (5 blocks), one whose calibration file is gone when it starts (it fails at its
  // start, where the spec is checked again), one cancelled while queued.
  const fs::path calibration = StoriesDir()->parent_path() / "calibration-for-metrics.txt";
  fs::copy_file(*testing::SharedFile("data/tinystories-dev-50.txt"), calibration, fs::copy_options::overwrite_existing);
  absl::StatusOr<v1::Job> succeeds = Submit(*quantizer_.stub, StoriesJob("metrics", 4, 64));
  v1::JobSpec vanishing = StoriesJob("metrics", 4, 64);
  vanishing.set_calibration_file(calibration.string());
  absl::StatusOr<v1::Job> fails = Submit(*quantizer_.stub, vanishing);
  absl::StatusOr<v1::Job> cancelled = Submit(*quantizer_.stub, StoriesJob("metrics", 4, 64));
  ASSERT_TRUE(succeeds.ok() && fails.ok() && cancelled.ok());
  fs::remove(calibration);
  v1::Job ignored;
  ASSERT_TRUE(Cancel(cancelled->id(), &ignored).ok());
  EXPECT_EQ(WatchToEnd(*quantizer_.stub, succeeds->id()).events.back().state(), v1::JOB_STATE_SUCCEEDED);
  const Watched failed = WatchToEnd(*quantizer_.stub, fails->id());
  ASSERT_FALSE(failed.events.empty());
  EXPECT_EQ(failed.events.back().state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed.events.back().error(), HasSubstr("spec.calibration_file"));

  const absl::StatusOr<std::string> metrics = HttpGet(quantizer_.server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_jobs{state=\"succeeded\"}"), 1.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_jobs{state=\"failed\"}"), 1.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_jobs{state=\"cancelled\"}"), 1.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_jobs{state=\"queued\"}"), 0.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_jobs{state=\"running\"}"), 0.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_block_seconds_count"), 5.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_job_duration_seconds_count{state=\"succeeded\"}"), 1.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_job_duration_seconds_count{state=\"failed\"}"), 1.0);
  EXPECT_EQ(MetricValue(*metrics, "nibble_quant_peak_gpu_memory_bytes"), 0.0) << "the CPU backend holds no GPU memory";
  EXPECT_TRUE(HasFamily(*metrics, "nibble_build_info"));
  EXPECT_TRUE(HasFamily(*metrics, "process_resident_memory_bytes"));
}

TEST_F(QuantizerE2eTest, ReadersNeedTheTokenAndOnlyTheAdminTokenSubmitsOrCancels) {
  const fs::path reader_token = state_.path() / "reader-token";
  const fs::path admin_token = state_.path() / "admin-token";
  ASSERT_TRUE(WriteFileContents(reader_token, "reader-secret\n").ok());
  ASSERT_TRUE(WriteFileContents(admin_token, "admin-secret\n").ok());
  quantizer_server::QuantizerOptions options = Options();
  options.auth_token_file = reader_token.string();
  options.admin_token_file = admin_token.string();
  StartQuantizerWith(options);
  auto submit = [&](const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::SubmitJobRequest request;
    *request.mutable_spec() = StoriesJob("secured", 4, 64);
    v1::Job job;
    return std::make_pair(quantizer_.stub->SubmitJob(&context, request, &job), job);
  };
  auto list = [&](const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::ListJobsResponse response;
    return quantizer_.stub->ListJobs(&context, v1::ListJobsRequest(), &response);
  };
  EXPECT_EQ(submit("").first.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(submit("reader-secret").first.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list("admin-secret").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(list("reader-secret").ok());
  const auto [submitted, job] = submit("admin-secret");
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer reader-secret");
    v1::CancelJobRequest request;
    request.set_id(job.id());
    v1::Job cancelled;
    EXPECT_EQ(quantizer_.stub->CancelJob(&context, request, &cancelled).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  // Health needs no token (kubelets probe it); reflection needs the readers' one.
  EXPECT_EQ(HealthStatus(*quantizer_.channel, "").value_or(0), 1);
  EXPECT_EQ(HealthStatus(*quantizer_.channel, "nibble.v1.Quantizer").value_or(0), 1);
  EXPECT_EQ(ReflectionListServices(*quantizer_.channel).status().code(), absl::StatusCode::kUnauthenticated);
  const absl::StatusOr<std::string> services = ReflectionListServices(*quantizer_.channel, "reader-secret");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, HasSubstr("nibble.v1.Quantizer"));
}

// Jobs a killed quantizer left RUNNING, written into its database as it left them: one that was interrupted
// before its first checkpoint runs from block 1 and succeeds; one that was running at three earlier restarts
// is marked FAILED with the reason instead of being tried again. Neither stays RUNNING.
TEST_F(QuantizerE2eTest, JobsLeftRunningAreResumedOrFailedAtStartNeverLeftRunning) {
  {
    absl::StatusOr<std::unique_ptr<quantizer_server::JobStore>> store =
        quantizer_server::JobStore::Open(state_.path() / "jobs.sqlite");
    ASSERT_TRUE(store.ok()) << store.status();
    for (const auto& [id, resumes] :
         {std::pair<std::string, uint32_t>{"job-00000000000000a1", 0}, {"job-00000000000000a2", 3}}) {
      v1::Job job;
      job.set_id(id);
      *job.mutable_spec() = StoriesJob(id == "job-00000000000000a1" ? "left-running" : "crashing", 4, 64);
      job.set_state(v1::JOB_STATE_RUNNING);
      job.set_phase(v1::JOB_PHASE_SEARCHING);
      job.set_resumes(resumes);
      job.set_created_unix_ms(1);
      job.set_started_unix_ms(1);
      ASSERT_TRUE((*store)->Insert(job).ok());
    }
  }
  StartQuantizerWith(Options());
  const Watched resumed = WatchToEnd(*quantizer_.stub, "job-00000000000000a1");
  ASSERT_FALSE(resumed.events.empty());
  EXPECT_EQ(resumed.events.back().state(), v1::JOB_STATE_SUCCEEDED) << resumed.events.back().error();
  EXPECT_EQ(resumed.events.back().resumes(), 1u);
  EXPECT_EQ(Versions("left-running"), (std::vector<uint64_t>{1}));
  const Watched crashing = WatchToEnd(*quantizer_.stub, "job-00000000000000a2");
  ASSERT_FALSE(crashing.events.empty());
  EXPECT_EQ(crashing.events.back().state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(crashing.events.back().error(), HasSubstr("4 times"));
  EXPECT_TRUE(Versions("crashing").empty());
}

}  // namespace
}  // namespace nibble::e2e
