#include "service/client/job_format.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nibble::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A job of 5 blocks searching its 4th: blocks 0..2 done at 1.2 s each, the last with two scale groups.
v1::Job SearchingJob() {
  v1::Job job;
  job.set_id("job-00000000000000aa");
  job.mutable_spec()->set_name("demo");
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_phase(v1::JOB_PHASE_SEARCHING);
  job.set_blocks_done(3);
  job.set_blocks_total(5);
  job.set_seconds_per_block(1.2);
  job.set_eta_seconds(2.4);
  job.set_created_unix_ms(1796601600000);  // 2026-12-07 00:00:00 UTC
  for (uint32_t index = 0; index < 3; ++index) {
    v1::BlockReport& block = *job.add_blocks();
    block.set_index(index);
    block.set_seconds(1.2);
    v1::ScaleGroupReport& qkv = *block.add_scale_groups();
    qkv.set_loss(index == 2 ? 1e-4 : 9.0);
    qkv.set_loss_rtn(index == 2 ? 3e-4 : 9.0);
    v1::ScaleGroupReport& down = *block.add_scale_groups();
    down.set_loss(index == 2 ? 2e-4 : 9.0);
    down.set_loss_rtn(index == 2 ? 5e-4 : 9.0);
  }
  return job;
}

v1::Job SucceededJob() {
  v1::Job job = SearchingJob();
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  job.set_phase(v1::JOB_PHASE_DONE);
  job.set_blocks_done(5);
  job.set_eta_seconds(0);
  job.set_published_path("/store/demo/2");
  job.set_published_version(2);
  job.set_perplexity_source(4.086);
  job.set_perplexity_quantized(4.392);
  return job;
}

TEST(FormatDurationTest, ReadsLikeAPersonWouldSayIt) {
  EXPECT_EQ(FormatDuration(0.84), "0.84 s");
  EXPECT_EQ(FormatDuration(2.4), "2.4 s");
  EXPECT_EQ(FormatDuration(42.4), "42 s");
  EXPECT_EQ(FormatDuration(185), "3m05s");
  EXPECT_EQ(FormatDuration(7625), "2h07m");
  EXPECT_EQ(FormatDuration(-1), "-");
}

TEST(JobSummaryTest, RunningJobShowsTheBlockItSearchesTheRateTheEtaAndTheLastBlocksLosses) {
  EXPECT_EQ(JobSummary(SearchingJob()),
            "job-00000000000000aa demo (awq w4 g128): running, searching, block 4/5, 1.2 s/block, ETA 2.4 s; "
            "block 2 loss 3.00e-04 vs RTN 8.00e-04 (-62.5%)");
}

TEST(JobSummaryTest, SpecShowsTheMethodAndTheWidthsItWasGiven) {
  v1::Job job = SearchingJob();
  job.mutable_spec()->set_method(v1::QUANT_METHOD_RTN);
  job.mutable_spec()->set_group_size(32);
  EXPECT_THAT(JobSummary(job), HasSubstr("demo (rtn w4 g32): "));
}

TEST(JobSummaryTest, QueuedJobLeavesOutWhatItDoesNotKnowYet) {
  v1::Job job;
  job.set_id("job-00000000000000ab");
  job.mutable_spec()->set_name("demo");
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_phase(v1::JOB_PHASE_QUEUED);
  EXPECT_EQ(JobSummary(job), "job-00000000000000ab demo (awq w4 g128): queued");
}

TEST(JobSummaryTest, SucceededJobShowsThePublishedVersionAndPerplexity) {
  EXPECT_EQ(JobSummary(SucceededJob()),
            "job-00000000000000aa demo (awq w4 g128): succeeded, 5/5 blocks, 1.2 s/block; published /store/demo/2 "
            "(version 2), perplexity 4.0860 -> 4.3920");
}

TEST(JobSummaryTest, FailedJobShowsItsErrorAndWhereItStopped) {
  v1::Job job = SearchingJob();
  job.set_state(v1::JOB_STATE_FAILED);
  job.set_phase(v1::JOB_PHASE_DONE);
  job.set_error("block 3: out of memory");
  job.set_resumes(1);
  job.set_resumed_from_block(2);
  EXPECT_EQ(JobSummary(job),
            "job-00000000000000aa demo (awq w4 g128): failed, 3/5 blocks, 1.2 s/block, resumed 1x, last from block "
            "2; block 3: out of memory");
}

TEST(JobSummaryTest, RtnBlocksShowTheirTimeInsteadOfLosses) {
  v1::Job job = SearchingJob();
  job.mutable_spec()->set_method(v1::QUANT_METHOD_RTN);
  for (v1::BlockReport& block : *job.mutable_blocks()) block.clear_scale_groups();
  EXPECT_THAT(JobSummary(job), HasSubstr("; block 2 in 1.2 s"));
  EXPECT_THAT(JobSummary(job), Not(HasSubstr("RTN ")));
}

TEST(JobTableTest, OneRowPerJobUnderAHeader) {
  google::protobuf::RepeatedPtrField<v1::Job> jobs;
  *jobs.Add() = SearchingJob();
  *jobs.Add() = SucceededJob();
  const std::string table = JobTable(jobs);
  const std::vector<std::string> lines = absl::StrSplit(table, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << table;
  EXPECT_THAT(lines[0], HasSubstr("ID"));
  EXPECT_THAT(lines[0], HasSubstr("PUBLISHED / ERROR"));
  EXPECT_THAT(lines[1], HasSubstr("running"));
  EXPECT_THAT(lines[1], HasSubstr("searching"));
  EXPECT_THAT(lines[1], HasSubstr("3/5"));
  EXPECT_THAT(lines[1], HasSubstr("2.4 s"));
  EXPECT_THAT(lines[1], HasSubstr("2026-12-07 00:00:00"));
  EXPECT_THAT(lines[2], HasSubstr("succeeded"));
  EXPECT_THAT(lines[2], HasSubstr("/store/demo/2"));
  EXPECT_EQ(lines[1].find("running"), lines[0].find("STATE")) << "columns line up:\n" << table;
}

TEST(ProgressLineTest, BarFillsWithTheShareOfBlocksDone) {
  EXPECT_EQ(ProgressLine(SearchingJob(), 10),
            "[######----]  searching  block 4/5  1.2 s/block  ETA 2.4 s  block 2 loss 3.00e-04 vs RTN 8.00e-04 "
            "(-62.5%)");
  EXPECT_THAT(ProgressLine(SucceededJob(), 10), HasSubstr("[##########]  succeeded  5/5 blocks"));
  v1::Job loading;
  loading.set_state(v1::JOB_STATE_RUNNING);
  loading.set_phase(v1::JOB_PHASE_LOADING);
  EXPECT_EQ(ProgressLine(loading, 4), "[----]  loading");
  EXPECT_EQ(ProgressLine(loading, 0), "loading");
}

TEST(JobProgressTest, RedrawsOneLineInPlaceOnATerminal) {
  std::ostringstream out;
  JobProgress progress(out, /*redraw=*/true, /*columns=*/200);
  v1::Job job = SearchingJob();
  progress.Update(job);
  progress.Update(job);
  progress.Finish();
  const std::string line = "\r" + ProgressLine(job, 24) + "\x1b[K";
  EXPECT_EQ(out.str(), line + line + "\n");
}

TEST(JobProgressTest, CutsARedrawnLineToTheTerminalSoThatItNeverWraps) {
  std::ostringstream out;
  JobProgress progress(out, /*redraw=*/true, /*columns=*/40);
  progress.Update(SearchingJob());
  ASSERT_GT(ProgressLine(SearchingJob(), 24).size(), 40u);
  EXPECT_EQ(out.str(), "\r" + ProgressLine(SearchingJob(), 24).substr(0, 39) + "\x1b[K");
}

TEST(JobProgressTest, WritesOneLinePerChangeOtherwise) {
  std::ostringstream out;
  JobProgress progress(out, /*redraw=*/false);
  v1::Job job = SearchingJob();
  job.set_blocks_done(2);
  progress.Update(job);
  job.set_eta_seconds(2.0);  // the same block, a new estimate: no line
  progress.Update(job);
  job.set_blocks_done(3);
  progress.Update(job);
  progress.Update(SucceededJob());
  progress.Finish();
  const std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out.str();
  EXPECT_THAT(lines[0], HasSubstr("block 3/5"));
  EXPECT_THAT(lines[1], HasSubstr("block 4/5"));
  EXPECT_THAT(lines[2], HasSubstr("succeeded"));
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

}  // namespace
}  // namespace nibble::client
