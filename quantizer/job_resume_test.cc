// Durable progress on stories260K (a real trained model, 5 blocks): a job stopped after block 2 and run again
// resumes at block 3 and publishes the same bytes as an uninterrupted run; a corrupt checkpoint or one made by
// another spec is not resumed; a job that already published does not publish again.
#include <fstream>

#include "absl/strings/str_join.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/io/model_store.h"
#include "engine/tools/llama2c.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantizer/job.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class JobResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model = testing::SharedFile("models/stories260K/stories260K.bin");
    const auto tokenizer = testing::SharedFile("models/stories260K/tok512.model");
    const auto text = testing::SharedFile("data/tinystories-dev-50.txt");
    if (!model || !tokenizer || !text)
      GTEST_SKIP() << "stories260K or tinystories-dev-50.txt not found (set NIBBLE_SHARED)";
    text_ = *text;
    source_ = temp_.path() / "stories260K";
    ASSERT_TRUE(ImportLlama2c(*model, *tokenizer, source_).ok());
  }

  // A short AWQ job (6 documents of at most 128 tokens) with a checkpoint directory.
  QuantizeJobSpec Spec(const std::string& checkpoint, int group_size = 32) const {
    QuantizeJobSpec spec;
    spec.model_dir = source_;
    spec.calibration_path = text_;
    spec.calibration.separator = "<|endoftext|>";
    spec.calibration.n_samples = 6;
    spec.calibration.seqlen = 128;
    spec.quantize.spec.group_size = group_size;
    spec.store_root = temp_.path() / "store";
    spec.model_name = "stories260K";
    spec.checkpoint_dir = temp_.path() / checkpoint;
    return spec;
  }

  // Runs the job, recording every progress event; stops it (Cancelled) before block `stop_before` when set.
  absl::StatusOr<QuantizeJobResult> Run(const QuantizeJobSpec& spec, std::optional<int64_t> stop_before = {}) {
    events_.clear();
    log_.clear();
    JobHooks hooks;
    hooks.log = [this](const std::string& line) { log_.push_back(line); };
    hooks.progress = [this](const JobProgress& progress) {
      events_.push_back({progress.phase, progress.blocks_done, progress.resumed_from_block,
                         progress.block ? progress.block->index : -1});
    };
    hooks.keep_going = [this, stop_before]() -> absl::Status {
      const int64_t done = events_.empty() ? 0 : events_.back().blocks_done;
      if (stop_before && done == *stop_before) return absl::CancelledError("stopped by the test");
      return absl::OkStatus();
    };
    return RunQuantizeJob(*backend_, spec, hooks);
  }

  // The published version's weights and config, as sha256 (nibble.json differs: times, seconds).
  std::string ArtifactDigest(uint64_t version) {
    const fs::path dir = ModelStore(temp_.path() / "store").VersionDir("stories260K", version);
    absl::StatusOr<std::string> weights = Sha256OfFile(dir / "model.safetensors");
    absl::StatusOr<std::string> config = Sha256OfFile(dir / "config.json");
    EXPECT_TRUE(weights.ok() && config.ok());
    return weights.value_or("") + config.value_or("");
  }
  std::vector<int64_t> BlocksReported() const {
    std::vector<int64_t> blocks;
    for (const Event& event : events_) {
      if (event.block >= 0) blocks.push_back(event.block);
    }
    return blocks;
  }

  struct Event {
    JobPhase phase;
    int64_t blocks_done;
    std::optional<int64_t> resumed_from;
    int64_t block;  // -1: a phase event
  };
  testing::TempDir temp_;
  fs::path source_;
  fs::path text_;
  std::unique_ptr<Backend> backend_ = MakeCpuBackend();
  std::vector<Event> events_;
  std::vector<std::string> log_;
};

TEST_F(JobResumeTest, AJobStoppedAfterTwoBlocksResumesAtTheThirdAndPublishesTheSameBytes) {
  absl::StatusOr<QuantizeJobResult> uninterrupted = Run(Spec("uninterrupted"));
  ASSERT_TRUE(uninterrupted.ok()) << uninterrupted.status();
  EXPECT_EQ(BlocksReported(), (std::vector<int64_t>{0, 1, 2, 3, 4}));

  absl::StatusOr<QuantizeJobResult> stopped = Run(Spec("resumed"), /*stop_before=*/2);
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled) << stopped.status();
  EXPECT_EQ(BlocksReported(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ModelStore(temp_.path() / "store").ListVersions("stories260K")->size(), 1u) << "nothing new published";

  absl::StatusOr<QuantizeJobResult> resumed = Run(Spec("resumed"));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(BlocksReported(), (std::vector<int64_t>{2, 3, 4}));
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.back().resumed_from, 2);
  EXPECT_EQ(resumed->manifest["layers"].size(), 5u) << "the resumed blocks' reports come from the checkpoint";
  EXPECT_EQ(ArtifactDigest(*resumed->version), ArtifactDigest(*uninterrupted->version));
}

TEST_F(JobResumeTest, ACorruptCheckpointIsNotResumedAndTheJobStartsAgain) {
  ASSERT_EQ(Run(Spec("corrupt"), /*stop_before=*/3).status().code(), absl::StatusCode::kCancelled);
  {
    std::fstream block(temp_.path() / "corrupt" / "block-1.safetensors",
                       std::ios::in | std::ios::out | std::ios::binary);
    block.seekp(-3, std::ios::end);
    block.put('\x7f');
  }
  absl::StatusOr<QuantizeJobResult> rerun = Run(Spec("corrupt"));
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  EXPECT_EQ(BlocksReported(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_THAT(absl::StrJoin(log_, "\n"), HasSubstr("block-1.safetensors: sha256 mismatch"));

  absl::StatusOr<QuantizeJobResult> reference = Run(Spec("reference"));
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_EQ(ArtifactDigest(*rerun->version), ArtifactDigest(*reference->version));
}

TEST_F(JobResumeTest, ACheckpointOfAnotherSpecIsNotResumed) {
  ASSERT_EQ(Run(Spec("shared", /*group_size=*/32), /*stop_before=*/2).status().code(), absl::StatusCode::kCancelled);
  absl::StatusOr<QuantizeJobResult> other = Run(Spec("shared", /*group_size=*/64));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(BlocksReported(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_THAT(absl::StrJoin(log_, "\n"), HasSubstr("saved by another job"));
  EXPECT_EQ(other->manifest["quantization"]["group_size"], 64);
}

TEST_F(JobResumeTest, AJobThatAlreadyPublishedReturnsItsVersionInsteadOfPublishingAgain) {
  QuantizeJobSpec spec = Spec("published");
  spec.job_id = "job-00000000000000ab";
  absl::StatusOr<QuantizeJobResult> first = Run(spec);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->manifest["job"], "job-00000000000000ab");
  absl::StatusOr<QuantizeJobResult> again = Run(spec);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version, first->version);
  EXPECT_TRUE(BlocksReported().empty());
  EXPECT_EQ(ModelStore(temp_.path() / "store").ListVersions("stories260K")->size(), 1u);
}

}  // namespace
}  // namespace nibble
