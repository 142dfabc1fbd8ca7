// Helpers for the nibble-quantizer end-to-end tests: an in-process quantizer on loopback (port 0, the CPU
// backend) whose source roots hold the imported stories260K and ../shared's data, job specs for it, and a
// client that submits jobs and follows them to their end. Real sockets, SQLite files and stores on disk.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "nibble/v1/quantizer.grpc.pb.h"
#include "service/quantizer_server/quantizer_options.h"
#include "service/quantizer_server/quantizer_server.h"

namespace nibble::e2e {

// Options for a quantizer publishing into `store`, keeping its state in `state_dir`, reading stories260K
// (StoriesDir) and ../shared/data.
quantizer_server::QuantizerOptions QuantizerLoopbackOptions(const std::filesystem::path& store,
                                                            const std::filesystem::path& state_dir);

struct TestQuantizer {
  std::unique_ptr<quantizer_server::QuantizerServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Quantizer::Stub> stub;
};
absl::StatusOr<TestQuantizer> StartQuantizer(const quantizer_server::QuantizerOptions& options);
// A plaintext stub to a quantizer at 127.0.0.1:`port`.
std::unique_ptr<v1::Quantizer::Stub> QuantizerStub(int port);

// An AWQ job of stories260K into `name`, calibrated on `n_samples` documents of tinystories-dev-50 cut into
// blocks of `seqlen` tokens, groups of 32.
v1::JobSpec StoriesJob(const std::string& name, uint32_t n_samples = 8, uint32_t seqlen = 128);

// SubmitJob: the job, or the call's status.
absl::StatusOr<v1::Job> Submit(v1::Quantizer::Stub& stub, const v1::JobSpec& spec, const std::string& request_id = "");
// WatchJob until the stream ends: every message, in order, and the stream's status.
struct Watched {
  std::vector<v1::Job> events;
  grpc::Status status;
};
Watched WatchToEnd(v1::Quantizer::Stub& stub, const std::string& id,
                   std::chrono::seconds timeout = std::chrono::seconds(600));
// GetJob polled every 20 ms until `done(job)` holds (or `timeout`); the last job read.
absl::StatusOr<v1::Job> PollJob(v1::Quantizer::Stub& stub, const std::string& id,
                                const std::function<bool(const v1::Job&)>& done,
                                std::chrono::seconds timeout = std::chrono::seconds(600));

}  // namespace nibble::e2e
