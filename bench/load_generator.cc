#include "bench/load_generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "service/client/generate_call.h"
#include "service/client/labels.h"
#include "service/client/model_reference.h"

namespace nibble::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Keeps options.concurrency calls in flight: each call's end starts the next request, until options.requests
// have been started or options.duration_seconds have passed.
class Driver {
 public:
  Driver(const client::Connection& connection, const LoadOptions& options, client::ModelReference model)
      : connection_(connection), options_(options), model_(std::move(model)) {}

  LoadReport Run() {
    const Clock::time_point start = Clock::now();
    timed_ = options_.duration_seconds > 0;
    stop_at_ = start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(std::max(options_.duration_seconds, 0.0)));
    const int32_t first = timed_ ? options_.concurrency : std::min(options_.concurrency, options_.requests);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      next_ = first;
    }
    for (int32_t i = 0; i < first; ++i) Launch(i);
    std::unique_lock<std::mutex> lock(mutex_);
    all_ended_.wait(lock, [this] { return done_; });
    report_.requests = next_;
    report_.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return std::move(report_);
  }

 private:
  void Launch(int32_t index) {
    client::StartGenerate(connection_, MakeLoadRequest(options_, model_, index), nullptr,
                          [this](client::GenerateOutcome outcome) { OnEnded(std::move(outcome)); });
  }

  void OnEnded(client::GenerateOutcome outcome) {
    int32_t launch = -1;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Record(std::move(outcome));
      ++ended_;
      if (timed_ ? Clock::now() < stop_at_ : next_ < options_.requests) launch = next_++;
      if (launch < 0 && ended_ == next_) {
        done_ = true;
        all_ended_.notify_all();
        return;  // Run() may return now: touch nothing after this
      }
    }
    if (launch >= 0) Launch(launch);
  }

  void Record(client::GenerateOutcome outcome) {
    report_.output_tokens += outcome.tokens;
    if (outcome.time_to_first_token_seconds) report_.ttft_seconds.push_back(*outcome.time_to_first_token_seconds);
    report_.inter_token_seconds.insert(report_.inter_token_seconds.end(), outcome.inter_token_seconds.begin(),
                                       outcome.inter_token_seconds.end());
    if (!outcome.status.ok()) {
      const std::string code = absl::StatusCodeToString(outcome.status.code());
      ++report_.errors[code];
      report_.error_sample.emplace(code, std::string(outcome.status.message()));
      return;
    }
    ++report_.completed;
    report_.prompt_tokens += outcome.final->usage().prompt_tokens();
    report_.e2e_seconds.push_back(outcome.e2e_seconds);
    ++report_.finish_reasons[client::FinishReasonLabel(outcome.final->finish_reason())];
  }

  const client::Connection& connection_;
  const LoadOptions& options_;
  const client::ModelReference model_;
  std::mutex mutex_;
  std::condition_variable all_ended_;
  bool timed_ = false;         // options_.duration_seconds bounds the run, not options_.requests
  Clock::time_point stop_at_;  // when timed_: no request starts after this
  int32_t next_ = 0;           // the next request to launch (= requests launched)
  int32_t ended_ = 0;          // requests that have ended
  bool done_ = false;          // every launched request has ended and none will be launched
  LoadReport report_;
};

std::string LatencyRow(absl::string_view name, const std::vector<double>& seconds) {
  double mean = 0;
  for (double value : seconds) mean += value / seconds.size();
  return absl::StrFormat("%-16s %10.2f %10.2f %10.2f %10.2f %10.2f\n", name, mean * 1e3, Percentile(seconds, 50) * 1e3,
                         Percentile(seconds, 90) * 1e3, Percentile(seconds, 99) * 1e3,
                         (seconds.empty() ? 0.0 : *std::max_element(seconds.begin(), seconds.end())) * 1e3);
}

// {"p50": ms, "p90": ms, "p99": ms} of `seconds`.
nlohmann::json PercentilesMs(const std::vector<double>& seconds) {
  return {{"p50", Percentile(seconds, 50) * 1e3},
          {"p90", Percentile(seconds, 90) * 1e3},
          {"p99", Percentile(seconds, 99) * 1e3}};
}

// "length 60, stop 4" / "RESOURCE_EXHAUSTED 3", or `none`.
std::string Counts(const std::map<std::string, int64_t>& counts, absl::string_view none) {
  if (counts.empty()) return std::string(none);
  return absl::StrJoin(
      counts, ", ", [](std::string* out, const auto& entry) { absl::StrAppend(out, entry.first, " ", entry.second); });
}

}  // namespace

v1::GenerateRequest MakeLoadRequest(const LoadOptions& options, const client::ModelReference& model, int32_t index) {
  v1::GenerateRequest request;
  request.set_model(model.name);
  request.set_version(model.version);
  if (!options.prompt.empty()) {
    request.set_text(options.prompt);
  } else {
    v1::TokenIds& ids = *request.mutable_token_ids();
    for (int32_t i = 0; i < options.prompt_tokens; ++i) ids.add_ids(3 + (i * 31 + index * 7) % 256);
  }
  request.set_max_tokens(options.max_tokens);
  request.set_ignore_eos(options.ignore_eos);
  request.set_logprobs(options.logprobs);
  request.mutable_sampling()->set_temperature(options.temperature);
  request.mutable_sampling()->set_seed(options.seed + index);
  request.set_request_id(absl::StrCat("load-", index));
  return request;
}

absl::Status ValidateLoadOptions(const LoadOptions& options) {
  if (absl::StatusOr<client::ModelReference> model = client::ParseModelReference(options.model); !model.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--model: ", model.status().message()));
  }
  if (options.concurrency <= 0) return absl::InvalidArgumentError("--concurrency must be positive");
  if (options.duration_seconds < 0 || !std::isfinite(options.duration_seconds)) {
    return absl::InvalidArgumentError("--duration must be a finite number of seconds, 0 or more");
  }
  if (options.duration_seconds == 0 && options.requests <= 0) {
    return absl::InvalidArgumentError("--requests must be positive");
  }
  if (options.prompt.empty() && options.prompt_tokens <= 0) {
    return absl::InvalidArgumentError("--prompt-tokens must be positive (or give --prompt)");
  }
  if (options.max_tokens <= 0) return absl::InvalidArgumentError("--max-tokens must be positive");
  if (options.logprobs < 0 || options.logprobs > 20) return absl::InvalidArgumentError("--logprobs must be in 0..20");
  return absl::OkStatus();
}

absl::StatusOr<LoadReport> RunLoad(const client::Connection& connection, const LoadOptions& options) {
  if (absl::Status status = ValidateLoadOptions(options); !status.ok()) return status;
  absl::StatusOr<client::ModelReference> model = client::ParseModelReference(options.model);
  if (!model.ok()) return model.status();
  return Driver(connection, options, *std::move(model)).Run();
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * (values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (rank - below) * (values[above] - values[below]);
}

std::string FormatReport(const LoadReport& report, const LoadOptions& options, const std::string& server) {
  const std::string prompt = options.prompt.empty() ? absl::StrCat(options.prompt_tokens, " tokens")
                                                    : absl::StrCat("text of ", options.prompt.size(), " bytes");
  const double seconds = std::max(report.wall_seconds, 1e-9);
  const std::string duration =
      options.duration_seconds > 0 ? absl::StrFormat(" for %.0f s", options.duration_seconds) : std::string();
  std::string out =
      absl::StrFormat("nibble-load: %s on %s, %d concurrent%s, prompt %s, output %d tokens%s\n", options.model, server,
                      options.concurrency, duration, prompt, options.max_tokens, options.ignore_eos ? "" : " at most");
  absl::StrAppendFormat(&out, "%-16s %d completed, %d failed, of %d in %.2f s\n", "requests", report.completed,
                        report.requests - report.completed, report.requests, report.wall_seconds);
  absl::StrAppendFormat(&out, "%-16s %.1f output tokens/s, %.1f prompt tokens/s, %.2f requests/s\n", "throughput",
                        report.output_tokens / seconds, report.prompt_tokens / seconds, report.completed / seconds);
  absl::StrAppendFormat(&out, "%-16s %s\n", "finish reasons", Counts(report.finish_reasons, "none"));
  absl::StrAppendFormat(&out, "%-16s %s\n", "errors", Counts(report.errors, "none"));
  for (const auto& [code, message] : report.error_sample)
    absl::StrAppendFormat(&out, "%-16s %s: %s\n", "", code, message);
  absl::StrAppendFormat(&out, "%-16s %10s %10s %10s %10s %10s\n", "latency (ms)", "mean", "p50", "p90", "p99", "max");
  out += LatencyRow("TTFT", report.ttft_seconds);
  out += LatencyRow("inter-token", report.inter_token_seconds);
  out += LatencyRow("end-to-end", report.e2e_seconds);
  return out;
}

std::string FormatReportJson(const LoadReport& report, const LoadOptions& options) {
  const double seconds = std::max(report.wall_seconds, 1e-9);
  const nlohmann::json summary = {
      {"model", options.model},
      {"concurrency", options.concurrency},
      {"duration_seconds", options.duration_seconds},
      {"prompt_tokens_per_request", options.prompt.empty() ? options.prompt_tokens : 0},
      {"max_tokens", options.max_tokens},
      {"requests", report.requests},
      {"completed", report.completed},
      {"wall_seconds", report.wall_seconds},
      {"output_tokens", report.output_tokens},
      {"output_tokens_per_second", report.output_tokens / seconds},
      {"requests_per_second", report.completed / seconds},
      {"ttft_ms", PercentilesMs(report.ttft_seconds)},
      {"inter_token_ms", PercentilesMs(report.inter_token_seconds)},
      {"e2e_ms", PercentilesMs(report.e2e_seconds)},
      {"finish_reasons", report.finish_reasons},
      {"errors", report.errors},
  };
  return summary.dump();
}

}  // namespace nibble::bench
