// /metrics scraped over HTTP after a known workload on a fresh server: every family design.md lists (the GPU
// ones only on CUDA), vLLM's buckets, token and request counters that match what the client saw.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

std::string Model() { return absl::StrCat("model=\"", kModel, "\""); }

TEST(MetricsTest, EveryFamilyMatchesAKnownWorkload) {
  if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
  testing::TempDir store;
  ASSERT_TRUE(PublishStories(store.path()).ok());
  auto server = StartServer(LoopbackOptions(store.path()));
  ASSERT_TRUE(server.ok()) << server.status();

  // The workload: requests that end by length and by a stop string, one refused (not counted), then one
  // cancelled by its client.
  std::map<v1::FinishReason, int> finished;
  uint64_t streamed = 0;
  uint64_t prompt_tokens = 0;
  for (int i = 0; i < 6; ++i) {
    v1::GenerateRequest request = GreedyRequest(i % 2 ? "Once upon a time" : "The cat sat", 10 + 5 * i);
    if (i >= 4) request.add_stop(".");
    if (i == 3) request.mutable_sampling()->set_temperature(0.9f);
    const StreamResult result = RunStream(*server->stub, request);
    ASSERT_TRUE(result.status.ok() && result.final) << result.status.error_message();
    ++finished[result.final->finish_reason()];
    streamed += result.tokens().size();
    prompt_tokens += result.final->usage().prompt_tokens();
  }
  v1::GenerateRequest bad = GreedyRequest("", 10);
  EXPECT_EQ(RunStream(*server->stub, bad).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const auto metrics = HttpGet(server->server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::string& text = *metrics;
  for (const char* family :
       {"nibble_time_to_first_token_seconds", "nibble_inter_token_latency_seconds",
        "nibble_e2e_request_latency_seconds", "nibble_request_queue_time_seconds", "nibble_prompt_tokens_total",
        "nibble_generation_tokens_total", "nibble_requests_total", "nibble_preemptions_total",
        "nibble_requests_running", "nibble_requests_waiting", "nibble_kv_cache_usage_ratio",
        "nibble_model_weight_bytes", "nibble_build_info", "process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_start_time_seconds", "process_open_fds"}) {
    EXPECT_TRUE(HasFamily(text, family)) << family;
  }
  // The CPU backend has no GPU memory to report.
  EXPECT_FALSE(HasFamily(text, "nibble_gpu_memory_used_bytes"));
  EXPECT_FALSE(HasFamily(text, "nibble_gpu_memory_total_bytes"));

  const std::string model = "{" + Model() + "}";
  EXPECT_EQ(MetricValue(text, "nibble_generation_tokens_total" + model), static_cast<double>(streamed));
  EXPECT_EQ(MetricValue(text, "nibble_prompt_tokens_total" + model), static_cast<double>(prompt_tokens));
  EXPECT_EQ(MetricValue(text, "nibble_requests_total{finish_reason=\"length\"," + Model() + "}").value_or(0),
            finished[v1::FINISH_REASON_LENGTH]);
  EXPECT_EQ(MetricValue(text, "nibble_requests_total{finish_reason=\"stop\"," + Model() + "}").value_or(0),
            finished[v1::FINISH_REASON_STOP]);
  EXPECT_FALSE(MetricValue(text, "nibble_requests_total{finish_reason=\"error\"," + Model() + "}"));
  for (const char* histogram : {"nibble_time_to_first_token_seconds", "nibble_e2e_request_latency_seconds",
                                "nibble_request_queue_time_seconds"}) {
    EXPECT_EQ(MetricValue(text, absl::StrCat(histogram, "_count", model)), 6.0) << histogram;
  }
  // One inter-token latency per token after each request's first.
  EXPECT_EQ(MetricValue(text, "nibble_inter_token_latency_seconds_count" + model), static_cast<double>(streamed - 6));
  // vLLM's buckets (ends of each list).
  for (const std::string& bucket : {"nibble_time_to_first_token_seconds_bucket{" + Model() + ",le=\"0.001\"}",
                                    "nibble_time_to_first_token_seconds_bucket{" + Model() + ",le=\"2560\"}",
                                    "nibble_inter_token_latency_seconds_bucket{" + Model() + ",le=\"0.01\"}",
                                    "nibble_inter_token_latency_seconds_bucket{" + Model() + ",le=\"80\"}",
                                    "nibble_e2e_request_latency_seconds_bucket{" + Model() + ",le=\"0.3\"}",
                                    "nibble_e2e_request_latency_seconds_bucket{" + Model() + ",le=\"7680\"}",
                                    "nibble_request_queue_time_seconds_bucket{" + Model() + ",le=\"7680\"}"}) {
    EXPECT_TRUE(MetricValue(text, bucket).has_value()) << bucket;
  }
  // The gauges are the engine's, updated just after a request's final event: they settle within a step.
  EXPECT_TRUE(WaitFor([&] {
    const auto now = HttpGet(server->server->metrics_port(), "/metrics");
    return now.ok() && MetricValue(*now, "nibble_requests_running" + model) == 0.0 &&
           MetricValue(*now, "nibble_requests_waiting" + model) == 0.0 &&
           MetricValue(*now, "nibble_kv_cache_usage_ratio" + model) == 0.0;
  }));
  EXPECT_GT(MetricValue(text, "nibble_model_weight_bytes{" + Model() + ",version=\"1\"}").value_or(0), 0.0);
  EXPECT_NE(text.find("nibble_build_info{cuda=\""), std::string::npos);
  EXPECT_GT(MetricValue(text, "process_resident_memory_bytes").value_or(0), 1e6);

  // A request cancelled by its client counts as "cancelled".
  {
    v1::GenerateRequest request = GreedyRequest("Once upon a time", 400);
    request.set_ignore_eos(true);
    request.clear_stop_token_ids();
    grpc::ClientContext context;
    auto reader = server->stub->Generate(&context, request);
    v1::GenerateResponse response;
    ASSERT_TRUE(reader->Read(&response));
    context.TryCancel();
    while (reader->Read(&response)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(WaitFor([&] {
    const auto after = HttpGet(server->server->metrics_port(), "/metrics");
    return after.ok() &&
           MetricValue(*after, "nibble_requests_total{finish_reason=\"cancelled\"," + Model() + "}") == 1.0;
  }));
}

// gRPC on 127.0.0.2 (loopback too, but not the address HttpGet dials): by default /metrics follows the --listen
// host and 127.0.0.1 gets no answer; with --metrics-listen 127.0.0.1:0 it answers there.
TEST(MetricsTest, MetricsListenMovesTheEndpointOffTheListenHost) {
  if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
  testing::TempDir store;
  ASSERT_TRUE(PublishStories(store.path()).ok());
  server::ServerOptions options = LoopbackOptions(store.path());
  options.listen = "127.0.0.2:0";
  auto on_listen_host = StartServer(options);
  ASSERT_TRUE(on_listen_host.ok()) << on_listen_host.status();
  EXPECT_FALSE(HttpGet(on_listen_host->server->metrics_port(), "/metrics").ok());

  options.metrics_listen = "127.0.0.1:0";
  auto moved = StartServer(options);
  ASSERT_TRUE(moved.ok()) << moved.status();
  const auto metrics = HttpGet(moved->server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(HasFamily(*metrics, "process_cpu_seconds_total"));
  EXPECT_TRUE(HasFamily(*metrics, "nibble_build_info"));
}

}  // namespace
}  // namespace nibble::e2e
