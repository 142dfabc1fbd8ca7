// nibble-load's summary: percentiles, option checks, the table; and a run against a port where no server
// listens (every request fails UNAVAILABLE and is counted, none is lost). Runs against the real
// nibble-server are in service/cli/cli_e2e_test.cc.
#include "bench/load_generator.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace nibble::bench {
namespace {

using ::testing::HasSubstr;

TEST(PercentileTest, InterpolatesLinearlyBetweenRanks) {
  const std::vector<double> values = {4, 1, 3, 2};  // sorted: 1 2 3 4
  EXPECT_DOUBLE_EQ(Percentile(values, 0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(values, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(values, 90), 3.7);
  EXPECT_DOUBLE_EQ(Percentile(values, 100), 4.0);
  EXPECT_DOUBLE_EQ(Percentile({7.0}, 99), 7.0);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0.0);
}

TEST(LoadOptionsTest, NamesTheBadOption) {
  LoadOptions options;
  options.model = "stories";
  EXPECT_TRUE(ValidateLoadOptions(options).ok());
  const std::vector<std::pair<std::function<void(LoadOptions&)>, std::string>> cases = {
      {[](LoadOptions& o) { o.model = ""; }, "--model"},
      {[](LoadOptions& o) { o.model = "stories:0"; }, "--model"},
      {[](LoadOptions& o) { o.concurrency = 0; }, "--concurrency"},
      {[](LoadOptions& o) { o.requests = -1; }, "--requests"},
      {[](LoadOptions& o) { o.prompt_tokens = 0; }, "--prompt-tokens"},
      {[](LoadOptions& o) { o.max_tokens = 0; }, "--max-tokens"},
      {[](LoadOptions& o) { o.logprobs = 21; }, "--logprobs"},
      {[](LoadOptions& o) { o.duration_seconds = -1; }, "--duration"},
  };
  for (const auto& [mutate, flag] : cases) {
    LoadOptions bad = options;
    mutate(bad);
    const absl::Status status = ValidateLoadOptions(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << flag;
    EXPECT_THAT(std::string(status.message()), HasSubstr(flag));
  }
}

TEST(FormatReportTest, PrintsCountsThroughputAndPercentiles) {
  LoadOptions options;
  options.model = "stories";
  options.concurrency = 2;
  LoadReport report;
  report.requests = 4;
  report.completed = 3;
  report.output_tokens = 30;
  report.prompt_tokens = 12;
  report.wall_seconds = 2.0;
  report.ttft_seconds = {0.010, 0.020, 0.030};
  report.inter_token_seconds = {0.001, 0.002, 0.003};
  report.e2e_seconds = {0.1, 0.2, 0.3};
  report.finish_reasons = {{"length", 3}};
  report.errors = {{"RESOURCE_EXHAUSTED", 1}};
  report.error_sample = {{"RESOURCE_EXHAUSTED", "queue full"}};
  const std::string table = FormatReport(report, options, "localhost:8600");
  EXPECT_THAT(table, HasSubstr("stories on localhost:8600, 2 concurrent, prompt 128 tokens, output 128 tokens"));
  EXPECT_THAT(table, HasSubstr("3 completed, 1 failed, of 4 in 2.00 s"));
  EXPECT_THAT(table, HasSubstr("15.0 output tokens/s, 6.0 prompt tokens/s, 1.50 requests/s"));
  EXPECT_THAT(table, HasSubstr("length 3"));
  EXPECT_THAT(table, HasSubstr("RESOURCE_EXHAUSTED 1"));
  EXPECT_THAT(table, HasSubstr("RESOURCE_EXHAUSTED: queue full"));
  // TTFT: mean 20 ms, p50 20, p90 28, p99 29.8, max 30.
  EXPECT_THAT(table, HasSubstr("TTFT                  20.00      20.00      28.00      29.80      30.00"));

  const nlohmann::json summary = nlohmann::json::parse(FormatReportJson(report, options));
  EXPECT_EQ(summary["concurrency"], 2);
  EXPECT_EQ(summary["completed"], 3);
  EXPECT_DOUBLE_EQ(summary["output_tokens_per_second"].get<double>(), 15.0);
  EXPECT_DOUBLE_EQ(summary["requests_per_second"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(summary["ttft_ms"]["p90"].get<double>(), 28.0);
  EXPECT_DOUBLE_EQ(summary["inter_token_ms"]["p50"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(summary["e2e_ms"]["p99"].get<double>(), 298.0);
  EXPECT_EQ(summary["finish_reasons"]["length"], 3);
  EXPECT_EQ(summary["errors"]["RESOURCE_EXHAUSTED"], 1);
}

TEST(RunLoadTest, CountsEveryRequestWhenNoServerListens) {
  client::ConnectionOptions connection_options;
  connection_options.server = "127.0.0.1:1";  // nothing listens on port 1
  connection_options.timeout_seconds = 10;
  absl::StatusOr<client::Connection> connection = client::Connection::Open(connection_options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  LoadOptions options;
  options.model = "stories";
  options.concurrency = 3;
  options.requests = 10;
  absl::StatusOr<LoadReport> report = RunLoad(*connection, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->requests, 10);
  EXPECT_EQ(report->completed, 0);
  EXPECT_EQ(report->errors, (std::map<std::string, int64_t>{{"UNAVAILABLE", 10}}));
  EXPECT_THAT(report->error_sample.at("UNAVAILABLE"), HasSubstr("127.0.0.1:1: Generate: "));
}

TEST(RunLoadTest, TimedRunStartsRequestsUntilTheDurationEnds) {
  client::ConnectionOptions connection_options;
  connection_options.server = "127.0.0.1:1";  // nothing listens on port 1: each request fails at once
  absl::StatusOr<client::Connection> connection = client::Connection::Open(connection_options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  LoadOptions options;
  options.model = "stories";
  options.concurrency = 2;
  options.requests = 1;  // ignored: the duration bounds the run
  options.duration_seconds = 0.5;
  absl::StatusOr<LoadReport> report = RunLoad(*connection, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->requests, 2);
  EXPECT_EQ(report->errors, (std::map<std::string, int64_t>{{"UNAVAILABLE", report->requests}}));
  EXPECT_GE(report->wall_seconds, 0.5);
  EXPECT_LT(report->wall_seconds, 5.0);
  EXPECT_THAT(FormatReport(*report, options, "127.0.0.1:1"), HasSubstr("2 concurrent for 0 s"));
}

}  // namespace
}  // namespace nibble::bench
