// Helpers for the nibble-server end-to-end tests: the stories260K model published into a store on disk, an
// in-process server on loopback (port 0), a gRPC client that records whole streams, a Prometheus scrape
// over HTTP, gRPC health over a generic call (no generated code for grpc.health.v1 here), and child
// processes (the real binary; a client that gets killed).
//
// Everything is real: files on disk, sockets on 127.0.0.1. Thread-safe where stated.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/serving/generation_request.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "nibble/v1/inference.grpc.pb.h"
#include "service/inference_server/server.h"
#include "service/inference_server/server_options.h"
#include "tests/support/shared_data.h"

namespace nibble::e2e {

inline constexpr char kModel[] = "stories";
inline constexpr int32_t kBos = 1;  // tok512: a generated BOS starts a new story; clients stop there

// stories260K (../shared) imported as a Hugging Face directory, once per process; nullopt when ../shared
// lacks it (the caller skips).
std::optional<std::filesystem::path> StoriesDir();

// Publishes the imported stories260K as the next version of `model` in the store at `root`.
absl::StatusOr<uint64_t> PublishStories(const std::filesystem::path& root, const std::string& model = kModel);

// Quantizes the imported stories260K with AWQ (4-bit, groups of 32: its Linears have 64 inputs; calibrated on
// tinystories-dev-50, 8 blocks of 128 tokens: quick, not best quality) and publishes the artifact as the next version
// of `model`. NotFound without ../shared.
absl::StatusOr<uint64_t> PublishStoriesAwq(const std::filesystem::path& root, const std::string& model = kModel);

// Options for an in-process server on 127.0.0.1 with picked ports, the CPU backend, a fast store poll and admin
// calls from loopback (--allow-loopback-admin).
server::ServerOptions LoopbackOptions(const std::filesystem::path& store);

// A running in-process server and a plaintext client channel to it.
struct TestServer {
  std::unique_ptr<server::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Inference::Stub> stub;
  std::string address() const;
};
absl::StatusOr<TestServer> StartServer(const server::ServerOptions& options);

// Everything one Generate call returned.
struct StreamResult {
  grpc::Status status;
  std::vector<v1::TokenChunk> chunks;
  std::optional<v1::Final> final;
  std::vector<int32_t> tokens() const;
  std::string text() const;
};

// A greedy request for `prompt` stopping at BOS, like `nibble generate`.
v1::GenerateRequest GreedyRequest(const std::string& prompt, uint32_t max_tokens);
// The same request for offline generation on the engine (the reference a stream must equal).
GenerationRequest OfflineGreedyRequest(const std::string& prompt, int32_t max_tokens);

// Runs one Generate call to the end. `context` may carry a deadline or metadata (default: a fresh one);
// `started`, when given, is incremented when the first response arrives (to wait for streams in flight).
StreamResult RunStream(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                       grpc::ClientContext* context = nullptr, std::atomic<int>* started = nullptr);

// GET http://127.0.0.1:<port><path>: the body (Internal on a socket error or a non-200 reply, quoting the
// reply's first line). `headers`: extra header lines, each ending "\r\n".
absl::StatusOr<std::string> HttpGet(int port, const std::string& path, const std::string& headers = "");
// The value of the sample whose line starts with `sample` + ' ' (`sample`: name{labels} as exposed, labels
// in prometheus-cpp's order, i.e. sorted), or nullopt.
std::optional<double> MetricValue(const std::string& exposition, const std::string& sample);
// Whether the exposition has a "# TYPE <family> " line.
bool HasFamily(const std::string& exposition, const std::string& family);

// grpc.health.v1.Health/Check for `service`: 1 SERVING, 2 NOT_SERVING, or the call's error.
absl::StatusOr<int> HealthStatus(grpc::Channel& channel, const std::string& service);

// grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo with list_services: the raw response bytes
// (which name every service), or the call's error. `token`: sent as "authorization: Bearer <token>" unless empty.
absl::StatusOr<std::string> ReflectionListServices(grpc::Channel& channel, const std::string& token = "");

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A child process with stdout and stderr on one pipe.
class Subprocess {
 public:
  // Starts argv[0] (searched in PATH) with `argv` and the extra environment `env` ("NAME=value").
  static absl::StatusOr<Subprocess> Spawn(const std::vector<std::string>& argv,
                                          const std::vector<std::string>& env = {});
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  ~Subprocess();  // SIGKILLs and reaps a child still running

  // Reads output lines until one contains `needle`; returns that line (DeadlineExceeded after `timeout`,
  // NotFound at end of output). Everything read is kept in output().
  absl::StatusOr<std::string> WaitForLine(const std::string& needle,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void Signal(int signal) const;
  pid_t pid() const { return pid_; }
  // Waits for the exit (reading the rest of the output); the exit code, or 128 + signal.
  int Wait();
  const std::string& output() const { return output_; }

 private:
  Subprocess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string output_;
  size_t scanned_ = 0;  // output_ before this offset has been searched for lines
};

}  // namespace nibble::e2e
