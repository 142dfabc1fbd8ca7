// process_rss.h on this test's own process (its VmRSS is real and positive), on a pid that is no process,
// and the sample picking the soak's table uses.
#include "bench/process_rss.h"

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nibble::bench {
namespace {

using ::testing::HasSubstr;

TEST(ReadRssBytesTest, ReadsThisProcessAndNamesTheFileOfAMissingOne) {
  absl::StatusOr<int64_t> rss = ReadRssBytes(getpid());
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_GT(*rss, 1024 * 1024);  // a gtest binary holds more than a MiB
  const absl::StatusOr<int64_t> missing = ReadRssBytes(999999999);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/proc/999999999/status"));
}

TEST(RssSamplerTest, SamplesUntilStoppedInTimeOrder) {
  RssSampler sampler(getpid(), std::chrono::milliseconds(10));
  const RssSample taken = sampler.Take();
  EXPECT_GT(taken.bytes, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  sampler.Stop();
  const std::vector<RssSample> samples = sampler.Samples();
  ASSERT_GE(samples.size(), 3u);
  for (size_t i = 1; i < samples.size(); ++i) EXPECT_LE(samples[i - 1].seconds, samples[i].seconds);
  sampler.Stop();  // a second Stop does nothing
  EXPECT_EQ(sampler.Samples().size(), samples.size());
}

TEST(SampleAtTest, PicksTheLastSampleNotLaterAndTheLargestInARange) {
  const std::vector<RssSample> samples = {{0.0, 10}, {1.0, 30}, {2.0, 20}};
  EXPECT_EQ(SampleAt(samples, 1.5).bytes, 30);
  EXPECT_EQ(SampleAt(samples, -1).bytes, 10);
  EXPECT_EQ(SampleAt(samples, 9).bytes, 20);
  EXPECT_EQ(SampleAt({}, 1).bytes, 0);
  EXPECT_EQ(MaxSample(samples, 1.5, 2.0).bytes, 20);
  EXPECT_EQ(MaxSample(samples, 0.0, 2.0).seconds, 1.0);
  const std::string row = FormatRssMarks("server RSS (MiB)", {{"start", {0.0, 1024 * 1024}}, {"end", {2.5, 0}}});
  EXPECT_THAT(row, HasSubstr("server RSS (MiB)        start          end\n"));
  EXPECT_THAT(row, HasSubstr("1.0          0.0\n"));
  EXPECT_THAT(row, HasSubstr("(0.0 s)      (2.5 s)\n"));
}

}  // namespace
}  // namespace nibble::bench
