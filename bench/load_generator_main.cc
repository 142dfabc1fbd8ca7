// nibble-load: a load generator for nibble-server. Keeps --concurrency Generate streams in flight until
// --requests have ended and prints throughput, TTFT / inter-token / end-to-end latency percentiles, finish
// reasons and errors by status code (bench/load_generator.h). Connection flags as for `nibble generate`.
// Exit status: 0 when every request completed, 2 when some failed (the table counts them), 1 on a setup error.
//
//   nibble-load --server localhost:8600 --model stories260K --concurrency 16 --requests 256
//       --prompt-tokens 128 --max-tokens 128
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "CLI/CLI.hpp"
#include "bench/load_generator.h"
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
  absl::StatusOr<nibble::bench::LoadReport> report = nibble::bench::RunLoad(*connection, options);
  if (!report.ok()) return nibble::client::ReportError(report.status());
  std::fputs(nibble::bench::FormatReport(*report, options, connection->server()).c_str(), stdout);
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
