#include "bench/never_read.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"

namespace nibble::bench {
namespace {

constexpr std::chrono::milliseconds kSampleInterval(250);

// One Generate call that is started and never read.
struct UnreadStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader;
};

void SleepSeconds(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

}  // namespace

absl::Status ValidateNeverReadOptions(const LoadOptions& load, const NeverReadOptions& never_read) {
  if (absl::Status status = ValidateLoadOptions(load); !status.ok()) return status;
  if (never_read.streams <= 0) return absl::InvalidArgumentError("--never-read must be positive");
  if (never_read.hold_seconds <= 0 || !std::isfinite(never_read.hold_seconds)) {
    return absl::InvalidArgumentError("--hold must be a positive number of seconds");
  }
  return ValidateServerWatch(never_read.server_pid, never_read.settle_seconds);
}

absl::StatusOr<NeverReadReport> RunNeverRead(const client::Connection& connection, const LoadOptions& load,
                                             const NeverReadOptions& never_read) {
  if (absl::Status status = ValidateNeverReadOptions(load, never_read); !status.ok()) return status;
  absl::StatusOr<client::ModelReference> model = client::ParseModelReference(load.model);
  if (!model.ok()) return model.status();
  if (absl::StatusOr<int64_t> rss = ReadRssBytes(never_read.server_pid); !rss.ok()) {
    return absl::Status(rss.status().code(), absl::StrCat("--server-pid: ", rss.status().message()));
  }
  RssSampler sampler(never_read.server_pid, kSampleInterval);
  NeverReadReport report;
  report.streams = never_read.streams;
  const RssSample before = sampler.Take();

  // Each reader's constructor sends the request and returns; nothing ever calls Read.
  std::vector<std::unique_ptr<UnreadStream>> streams;
  for (int32_t i = 0; i < never_read.streams; ++i) {
    auto stream = std::make_unique<UnreadStream>();
    connection.Prepare(stream->context);
    stream->reader = connection.inference().Generate(&stream->context, MakeLoadRequest(load, *model, i));
    streams.push_back(std::move(stream));
  }
  const RssSample opened = sampler.Take();
  report.open_seconds = opened.seconds - before.seconds;
  SleepSeconds(never_read.hold_seconds / 2);
  const RssSample middle = sampler.Take();
  SleepSeconds(never_read.hold_seconds / 2);
  const RssSample held = sampler.Take();

  for (auto& stream : streams) stream->context.TryCancel();
  for (auto& stream : streams) {
    const grpc::Status status = stream->reader->Finish();
    ++report.statuses[absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))];
  }
  streams.clear();
  SleepSeconds(never_read.settle_seconds);
  const RssSample after = sampler.Take();
  sampler.Stop();
  report.rss = sampler.Samples();
  report.hold_max = MaxSample(report.rss, opened.seconds, held.seconds);
  report.marks = {{"before", before},
                  {"opened", opened},
                  {"mid-hold", middle},
                  {"end of hold", held},
                  {absl::StrFormat("+%.0f s closed", never_read.settle_seconds), after}};
  return report;
}

std::string FormatNeverReadReport(const NeverReadReport& report, const LoadOptions& load,
                                  const NeverReadOptions& never_read, const std::string& server) {
  const std::string prompt = load.prompt.empty() ? absl::StrCat(load.prompt_tokens, " tokens")
                                                 : absl::StrCat("text of ", load.prompt.size(), " bytes");
  std::string out = absl::StrFormat(
      "nibble-load --never-read: %s on %s, %d streams never read, held %.0f s, prompt %s, output %d tokens%s\n",
      load.model, server, report.streams, never_read.hold_seconds, prompt, load.max_tokens,
      load.logprobs > 0 ? absl::StrCat(", ", load.logprobs, " logprobs each") : "");
  absl::StrAppendFormat(&out, "%-16s %.2f s to start every call\n", "opened", report.open_seconds);
  out += FormatRssMarks("server RSS (MiB)", report.marks);
  absl::StrAppendFormat(&out, "%-16s %.1f MiB at %.1f s (pid %d, %d samples)\n", "max while held",
                        report.hold_max.bytes / (1024.0 * 1024.0), report.hold_max.seconds, never_read.server_pid,
                        report.rss.size());
  absl::StrAppendFormat(&out, "%-16s %s (CANCELLED is this client's own close)\n", "at close",
                        absl::StrJoin(report.statuses, ", ", [](std::string* line, const auto& entry) {
                          absl::StrAppend(line, entry.first, " ", entry.second);
                        }));
  return out;
}

}  // namespace nibble::bench
