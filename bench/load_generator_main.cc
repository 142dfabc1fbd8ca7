// nibble-load: a load generator for nibble-server. Keeps --concurrency Generate streams in flight until
// --requests have ended (or for --duration seconds) and prints throughput, TTFT / inter-token / end-to-end
// latency percentiles, finish reasons and errors by status code (bench/load_generator.h). With --duration and
// --server-pid it is a soak and also prints the server's RSS over the run (bench/soak.h); --never-read N opens
// N streams that are never read instead (bench/never_read.h). Connection flags as for `nibble generate`.
// Exit status: 0 when every request completed, 2 when some failed (the table counts them), 1 on a setup error.
//
//   nibble-load --server localhost:8600 --model stories260K --concurrency 16 --requests 256
//       --prompt-tokens 128 --max-tokens 128
//   nibble-load --server localhost:8600 --model stories260K --concurrency 256 --duration 60 --server-pid PID
//   nibble-load --server localhost:8600 --model stories260K --never-read 200 --hold 30 --server-pid PID
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "CLI/CLI.hpp"
#include "bench/load_generator.h"
#include "bench/never_read.h"
#include "bench/soak.h"
#include "service/client/cli_status.h"
#include "service/client/connection_flags.h"

int main(int argc, char** argv) {
  CLI::App app{"nibble-load: concurrent Generate streams against a nibble server; prints a latency table"};
  nibble::client::ConnectionOptions connection_options;
  nibble::bench::LoadOptions options;
  nibble::client::AddConnectionFlags(app, connection_options, /*server_required=*/true);
  app.add_option("--model", options.model, "Model on the server: NAME or NAME:VERSION")->required();
  app.add_option("--concurrency", options.concurrency, "Streams in flight at once")->capture_default_str();
  app.add_option("--requests", options.requests, "Requests in all")->capture_default_str();
  app.add_option("--prompt-tokens", options.prompt_tokens,
                 "Prompt length in tokens (ids from [3, 259)), unless --prompt is given")
      ->capture_default_str();
  app.add_option("--prompt", options.prompt, "Prompt text, tokenized by the server (instead of --prompt-tokens)");
  std::string prompt_file;
  app.add_option("--prompt-file", prompt_file, "Read the prompt text from this file (instead of --prompt)")
      ->excludes("--prompt");
  app.add_option("--max-tokens", options.max_tokens, "Output length in tokens")->capture_default_str();
  app.add_flag("--ignore-eos,!--stop-at-eos", options.ignore_eos,
               "Ignore EOS and generate exactly --max-tokens (the default); --stop-at-eos lets EOS end a request")
      ->capture_default_str();
  app.add_option("--temperature", options.temperature, "Sampling temperature; 0 is greedy")->capture_default_str();
  app.add_option("--seed", options.seed, "Request i samples with seed + i")->capture_default_str();
  app.add_option("--logprobs", options.logprobs, "Alternatives returned with each token (0..20)")
      ->capture_default_str();
  app.add_option("--duration", options.duration_seconds,
                 "Start requests for this many seconds instead of counting them (then wait for those in flight)");
  nibble::bench::SoakOptions soak;
  nibble::bench::NeverReadOptions never_read;
  app.add_option("--server-pid", soak.server_pid,
                 "The nibble-server process on this machine: with --duration or --never-read, its RSS is sampled");
  app.add_option("--settle", soak.settle_seconds, "Seconds without clients before the last RSS sample")
      ->capture_default_str();
  int32_t never_read_streams = 0;
  app.add_option("--never-read", never_read_streams,
                 "Open this many streams that are never read, hold them, close them (needs --server-pid)");
  app.add_option("--hold", never_read.hold_seconds, "Seconds the --never-read streams stay open")
      ->capture_default_str();
  std::string json_path;
  app.add_option("--json", json_path, "Also write the summary as one JSON object to this file");
  CLI11_PARSE(app, argc, argv);
  if (!prompt_file.empty()) {
    std::ifstream file(prompt_file, std::ios::binary);
    if (!file)
      return nibble::client::ReportError(absl::NotFoundError("--prompt-file " + prompt_file + ": cannot open"));
    options.prompt.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }

  absl::StatusOr<nibble::client::Connection> connection = nibble::client::Connection::Open(connection_options);
  if (!connection.ok()) return nibble::client::ReportError(connection.status());
  if (never_read_streams > 0) {
    never_read.streams = never_read_streams;
    never_read.server_pid = soak.server_pid;
    never_read.settle_seconds = soak.settle_seconds;
    absl::StatusOr<nibble::bench::NeverReadReport> report =
        nibble::bench::RunNeverRead(*connection, options, never_read);
    if (!report.ok()) return nibble::client::ReportError(report.status());
    std::fputs(nibble::bench::FormatNeverReadReport(*report, options, never_read, connection->server()).c_str(),
               stdout);
    return 0;
  }
  absl::StatusOr<nibble::bench::LoadReport> report;
  if (options.duration_seconds > 0 && soak.server_pid > 0) {
    absl::StatusOr<nibble::bench::SoakReport> soaked = nibble::bench::RunSoak(*connection, options, soak);
    if (!soaked.ok()) return nibble::client::ReportError(soaked.status());
    std::fputs(nibble::bench::FormatSoakReport(*soaked, options, soak, connection->server()).c_str(), stdout);
    report = std::move(soaked->load);
  } else {
    report = nibble::bench::RunLoad(*connection, options);
    if (!report.ok()) return nibble::client::ReportError(report.status());
    std::fputs(nibble::bench::FormatReport(*report, options, connection->server()).c_str(), stdout);
  }
  if (!json_path.empty()) {
    std::ofstream json(json_path);
    json << nibble::bench::FormatReportJson(*report, options) << "\n";
    if (!json.flush()) {
      std::fprintf(stderr, "nibble-load: cannot write --json %s\n", json_path.c_str());
      return 1;
    }
  }
  return report->completed == report->requests ? 0 : 2;
}
