#include "tests/e2e/quantizer_test_support.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "tests/e2e/server_test_support.h"
#include "tests/support/shared_data.h"

namespace nibble::e2e {

quantizer_server::QuantizerOptions QuantizerLoopbackOptions(const std::filesystem::path& store,
                                                            const std::filesystem::path& state_dir) {
  quantizer_server::QuantizerOptions options;
  options.store = store.string();
  options.state_dir = state_dir.string();
  if (const auto stories = StoriesDir()) options.source_roots.push_back(stories->parent_path().string());
  if (const auto data = testing::SharedFile("data")) options.source_roots.push_back(data->string());
  options.listen = "127.0.0.1:0";
  options.metrics_port = 0;
  options.backend = "cpu";
  return options;
}

std::unique_ptr<v1::Quantizer::Stub> QuantizerStub(int port) {
  return v1::Quantizer::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
}

absl::StatusOr<TestQuantizer> StartQuantizer(const quantizer_server::QuantizerOptions& options) {
  TestQuantizer test;
  absl::StatusOr<std::unique_ptr<quantizer_server::QuantizerServer>> server =
      quantizer_server::QuantizerServer::Start(options);
  if (!server.ok()) return server.status();
  test.server = std::move(server).value();
  test.channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", test.server->port()), grpc::InsecureChannelCredentials());
  test.stub = v1::Quantizer::NewStub(test.channel);
  return test;
}

v1::JobSpec StoriesJob(const std::string& name, uint32_t n_samples, uint32_t seqlen) {
  v1::JobSpec spec;
  spec.set_source_model(StoriesDir().value_or("").string());
  spec.set_name(name);
  spec.set_method(v1::QUANT_METHOD_AWQ);
  spec.set_group_size(32);
  spec.set_calibration_file(testing::SharedFile("data/tinystories-dev-50.txt").value_or("").string());
  spec.set_separator("<|endoftext|>");
  spec.set_n_samples(n_samples);
  spec.set_seqlen(seqlen);
  return spec;
}

absl::StatusOr<v1::Job> Submit(v1::Quantizer::Stub& stub, const v1::JobSpec& spec, const std::string& request_id) {
  grpc::ClientContext context;
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  request.set_request_id(request_id);
  v1::Job job;
  const grpc::Status status = stub.SubmitJob(&context, request, &job);
  if (!status.ok()) return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  return job;
}

Watched WatchToEnd(v1::Quantizer::Stub& stub, const std::string& id, std::chrono::seconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::WatchJobRequest request;
  request.set_id(id);
  Watched watched;
  std::unique_ptr<grpc::ClientReader<v1::Job>> reader = stub.WatchJob(&context, request);
  v1::Job job;
  while (reader->Read(&job)) watched.events.push_back(job);
  watched.status = reader->Finish();
  return watched;
}

absl::StatusOr<v1::Job> PollJob(v1::Quantizer::Stub& stub, const std::string& id,
                                const std::function<bool(const v1::Job&)>& done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_id(id);
    v1::Job job;
    const grpc::Status status = stub.GetJob(&context, request, &job);
    if (status.ok() && done(job)) return job;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("job ", id, " did not get there: ", job.DebugString()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace nibble::e2e
