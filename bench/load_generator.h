// nibble-load's core: keeps a fixed number of Generate streams in flight against one nibble server until a
// given number of requests have ended (or for a given time), timing each on the client
// (service/client/generate_call.h), and summarises them as a table: throughput, TTFT, inter-token and
// end-to-end latency percentiles, finish reasons and errors by status code.
//
// RunLoad blocks the calling thread; the streams run on gRPC's callback threads. The other functions are pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nibble/v1/inference.pb.h"
#include "service/client/connection.h"
#include "service/client/model_reference.h"

namespace nibble::bench {

struct LoadOptions {
  std::string model;        // NAME or NAME:VERSION on the server (required)
  int32_t concurrency = 8;  // streams in flight at once (> 0)
  int32_t requests = 64;    // requests in all (> 0), unless duration_seconds is set
  // When > 0: start new requests for this long instead of counting them (a soak), then wait for the ones in
  // flight to end.
  double duration_seconds = 0;
  // The prompt: this text (the server tokenizes it) or, when empty, prompt_tokens token ids taken from
  // [3, 259) (the byte tokens of Llama's SentencePiece vocabularies: valid in any vocabulary of 259 or more).
  std::string prompt;
  int32_t prompt_tokens = 128;
  int32_t max_tokens = 128;  // output length (> 0)
  bool ignore_eos = true;    // generate exactly max_tokens (EOS does not end a request)
  float temperature = 0.0f;  // 0: greedy
  uint64_t seed = 1;         // request i samples with seed + i
  int32_t logprobs = 0;      // alternatives returned with each token, 0..20 (bigger responses)
};

// What the requests did. Latencies are in seconds, one entry per request (TTFT, e2e) or per token (ITL).
struct LoadReport {
  int64_t requests = 0;       // requests sent
  int64_t completed = 0;      // ended with their final message and a finish reason other than ERROR
  int64_t prompt_tokens = 0;  // as the servers' usage reports them, over completed requests
  int64_t output_tokens = 0;  // tokens received, over all requests
  double wall_seconds = 0.0;  // first request sent to last ended
  std::vector<double> ttft_seconds;
  std::vector<double> inter_token_seconds;
  std::vector<double> e2e_seconds;                  // completed requests only
  std::map<std::string, int64_t> finish_reasons;    // "length", "stop", ... over completed requests
  std::map<std::string, int64_t> errors;            // status code name ("RESOURCE_EXHAUSTED") -> count
  std::map<std::string, std::string> error_sample;  // status code name -> the first message seen
};

// Request `index` of a run on `model` (options.model parsed).
v1::GenerateRequest MakeLoadRequest(const LoadOptions& options, const client::ModelReference& model, int32_t index);

// InvalidArgument naming the option when `options` cannot describe a run.
absl::Status ValidateLoadOptions(const LoadOptions& options);

// Runs the load (ValidateLoadOptions first) and returns what happened; failed requests are counted in the
// report, not returned as an error.
absl::StatusOr<LoadReport> RunLoad(const client::Connection& connection, const LoadOptions& options);

// The p-th percentile (p in [0, 100]) of `values` with linear interpolation between closest ranks (numpy's
// default); 0 for no values.
double Percentile(std::vector<double> values, double p);

// The report as a table, with a header line describing the run.
std::string FormatReport(const LoadReport& report, const LoadOptions& options, const std::string& server);

// The report's summary as one JSON object (for scripts that tabulate several runs): the run's options, counts,
// throughputs (per second of wall time), latency percentiles p50/p90/p99 in ms, finish reasons and errors.
std::string FormatReportJson(const LoadReport& report, const LoadOptions& options);

}  // namespace nibble::bench
