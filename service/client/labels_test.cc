#include "service/client/labels.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nibble::client {
namespace {

TEST(LabelsTest, JobEnumsReadAsTheMetricsLabelThem) {
  EXPECT_EQ(JobStateLabel(v1::JOB_STATE_SUCCEEDED), "succeeded");
  EXPECT_EQ(JobPhaseLabel(v1::JOB_PHASE_SEARCHING), "searching");
  EXPECT_EQ(QuantMethodLabel(v1::QUANT_METHOD_UNSPECIFIED), "awq");
  EXPECT_EQ(QuantMethodLabel(v1::QUANT_METHOD_RTN), "rtn");
  EXPECT_EQ(JobStateLabel(static_cast<v1::JobState>(42)), "42");
}

TEST(LabelsTest, ParseJobStateTakesEveryStateBackAndRefusesTheRest) {
  for (const v1::JobState state : {v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED,
                                   v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    absl::StatusOr<v1::JobState> parsed = ParseJobState(JobStateLabel(state), "--state");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, state);
  }
  EXPECT_EQ(*ParseJobState("FAILED", "--state"), v1::JOB_STATE_FAILED);
  const absl::StatusOr<v1::JobState> bad = ParseJobState("unspecified\n", "--state");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "--state: \"unspecified\\n\" is not a job state (queued, running, succeeded, failed, cancelled)");
}

}  // namespace
}  // namespace nibble::client
