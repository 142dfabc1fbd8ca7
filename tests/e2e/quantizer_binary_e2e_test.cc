// The real nibble-quantizer binary killed with -9: during block 3 of 5 (started again, the job resumes from its
// checkpoint and publishes the bytes an uninterrupted run publishes; no version is visible before it
// publishes), and after its last block, while it writes and publishes (the version is then complete or
// absent, never partial, and the restarted job publishes it once).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/io/model_store.h"
#include "tests/e2e/quantizer_test_support.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

namespace fs = std::filesystem;

class QuantizerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StoriesDir() || !testing::SharedFile("data/tinystories-dev-50.txt")) {
      GTEST_SKIP() << "stories260K or tinystories-dev-50.txt not found in ../shared (set NIBBLE_SHARED)";
    }
  }

  // Starts the binary (configured through NIBBLE_* variables) and connects to it.
  void Start() {
    const quantizer_server::QuantizerOptions options = QuantizerLoopbackOptions(store_.path(), state_.path());
    std::string roots;
    for (const std::string& root : options.source_roots) roots += (roots.empty() ? "" : ",") + root;
    auto child = Subprocess::Spawn({NIBBLE_QUANTIZER_BINARY, "--listen", "127.0.0.1:0", "--metrics-port", "0"},
                                   {"NIBBLE_STORE=" + options.store, "NIBBLE_STATE_DIR=" + options.state_dir,
                                    "NIBBLE_SOURCE_ROOT=" + roots, "NIBBLE_BACKEND=cpu"});
    ASSERT_TRUE(child.ok()) << child.status();
    child_.emplace(*std::move(child));
    const absl::StatusOr<std::string> listening = child_->WaitForLine("gRPC listening");
    ASSERT_TRUE(listening.ok()) << child_->output();
    const size_t at = listening->find("(port ");
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(listening->substr(at + 6, listening->find(')', at) - at - 6), &port)) << *listening;
    stub_ = QuantizerStub(port);
  }
  void Kill() {
    child_->Signal(SIGKILL);
    EXPECT_EQ(child_->Wait(), 128 + SIGKILL);
    log_ += child_->output();
    child_.reset();
  }
  std::vector<uint64_t> Versions(const std::string& model) const {
    return ModelStore(store_.path()).ListVersions(model).value_or(std::vector<uint64_t>{});
  }
  std::string WeightsSha256(const std::string& model, uint64_t version) const {
    const fs::path dir = ModelStore(store_.path()).VersionDir(model, version);
    return Sha256OfFile(dir / "model.safetensors").value_or("unreadable") +
           Sha256OfFile(dir / "config.json").value_or("");
  }
  static bool Finished(const v1::Job& job) {
    return job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
           job.state() == v1::JOB_STATE_CANCELLED;
  }

  testing::TempDir store_;
  testing::TempDir state_;
  std::optional<Subprocess> child_;
  std::unique_ptr<v1::Quantizer::Stub> stub_;
  std::string log_;
};

TEST_F(QuantizerBinaryTest, KilledDuringBlockThreeItResumesThereAndPublishesTheBytesOfAnUninterruptedRun) {
  Start();
  // Blocks of about a second each on two cores: time to kill it in the middle of one.
  const v1::JobSpec spec = StoriesJob("resumed", 12, 256);
  absl::StatusOr<v1::Job> job = Submit(*stub_, spec);
  ASSERT_TRUE(job.ok()) << job.status();
  // Nothing of the model is visible in the store until the job publishes.
  std::atomic<bool> watching = true;
  std::atomic<bool> seen_early = false;
  std::thread store_watch([&] {
    while (watching) {
      if (!Versions("resumed").empty()) seen_early = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  ASSERT_TRUE(PollJob(*stub_, job->id(), [](const v1::Job& j) { return j.blocks_done() >= 2; }).ok());
  Kill();
  watching = false;
  store_watch.join();
  EXPECT_FALSE(seen_early);
  EXPECT_TRUE(Versions("resumed").empty());

  Start();
  absl::StatusOr<v1::Job> resumed = PollJob(*stub_, job->id(), Finished);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_EQ(resumed->state(), v1::JOB_STATE_SUCCEEDED) << resumed->error() << child_->output();
  EXPECT_EQ(resumed->resumes(), 1u);
  EXPECT_GE(resumed->resumed_from_block(), 2u) << "it went on from its checkpoint";
  EXPECT_LT(resumed->resumed_from_block(), 5u);
  EXPECT_EQ(resumed->blocks_size(), 5);
  const absl::StatusOr<std::string> resuming = child_->WaitForLine("resuming from checkpoint");
  ASSERT_TRUE(resuming.ok()) << child_->output();
  EXPECT_THAT(*resuming, ::testing::HasSubstr(absl::StrCat(resumed->resumed_from_block(), " blocks done")));

  // The same spec uninterrupted, into another model: the same weights, byte for byte.
  v1::JobSpec reference_spec = spec;
  reference_spec.set_name("reference");
  absl::StatusOr<v1::Job> reference = Submit(*stub_, reference_spec);
  ASSERT_TRUE(reference.ok()) << reference.status();
  absl::StatusOr<v1::Job> uninterrupted = PollJob(*stub_, reference->id(), Finished);
  ASSERT_TRUE(uninterrupted.ok() && uninterrupted->state() == v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(uninterrupted->resumes(), 0u);
  EXPECT_EQ(WeightsSha256("resumed", 1), WeightsSha256("reference", 1));
}

TEST_F(QuantizerBinaryTest, KilledWhilePublishingTheVersionIsCompleteOrAbsentAndTheRestartPublishesItOnce) {
  Start();
  absl::StatusOr<v1::Job> job = Submit(*stub_, StoriesJob("publishing", 8, 128));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(PollJob(*stub_, job->id(), [](const v1::Job& j) {
                return j.phase() >= v1::JOB_PHASE_WRITING || Finished(j);
              }).ok());
  Kill();
  for (uint64_t version : Versions("publishing")) {
    EXPECT_TRUE(VerifyVersionDir(ModelStore(store_.path()).VersionDir("publishing", version)).ok())
        << "version " << version << " is partial";
  }
  Start();
  absl::StatusOr<v1::Job> finished = PollJob(*stub_, job->id(), Finished);
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED) << finished->error();
  EXPECT_EQ(Versions("publishing"), (std::vector<uint64_t>{1})) << "published once";
  EXPECT_TRUE(VerifyVersionDir(ModelStore(store_.path()).VersionDir("publishing", 1)).ok());
  for (const auto& entry : fs::directory_iterator(store_.path() / "publishing")) {
    EXPECT_NE(entry.path().filename().string().rfind(".staging-", 0), 0u) << "left behind: " << entry.path();
  }
}

}  // namespace
}  // namespace nibble::e2e
