#include "service/quantizer_server/quantizer_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "service/common/grpc_status.h"

namespace nibble::quantizer_server {
namespace {

bool Terminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

template <typename T>
grpc::Status Respond(const absl::StatusOr<T>& result, T* response) {
  if (!result.ok()) return service::ToGrpcStatus(result.status());
  *response = *result;
  return grpc::Status::OK;
}

// Counts a WatchJob stream for as long as it lives.
class WatcherSlot {
 public:
  explicit WatcherSlot(std::atomic<int>& watchers) : watchers_(watchers), taken_(++watchers_ <= kMaxWatchers) {}
  ~WatcherSlot() { --watchers_; }
  bool taken() const { return taken_; }

 private:
  std::atomic<int>& watchers_;
  const bool taken_;
};

}  // namespace

grpc::Status QuantizerService::SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                                         v1::Job* response) {
  if (grpc::Status allowed = admin_check_.Check(*context); !allowed.ok()) return allowed;
  return Respond(manager_.Submit(request->spec(), request->request_id()), response);
}

grpc::Status QuantizerService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                      v1::Job* response) {
  if (grpc::Status allowed = reader_check_.Check(*context); !allowed.ok()) return allowed;
  return Respond(manager_.Get(request->id()), response);
}

grpc::Status QuantizerService::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                                        v1::ListJobsResponse* response) {
  if (grpc::Status allowed = reader_check_.Check(*context); !allowed.ok()) return allowed;
  return Respond(manager_.List(request->state(), request->page_size(), request->page_token()), response);
}

grpc::Status QuantizerService::CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                                         v1::Job* response) {
  if (grpc::Status allowed = admin_check_.Check(*context); !allowed.ok()) return allowed;
  return Respond(manager_.Cancel(request->id()), response);
}

grpc::Status QuantizerService::WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                                        grpc::ServerWriter<v1::Job>* writer) {
  if (grpc::Status allowed = reader_check_.Check(*context); !allowed.ok()) return allowed;
  const WatcherSlot slot(watchers_);
  if (!slot.taken()) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("already ", kMaxWatchers, " WatchJob streams; try again later"));
  }
  uint64_t seen = manager_.changes();
  absl::StatusOr<v1::Job> job = manager_.Get(request->id());
  if (!job.ok()) return service::ToGrpcStatus(job.status());
  std::string last_sent;
  int blocks_sent = job->blocks_size();  // the first message carries the blocks done so far
  while (true) {
    // Blocks finished since the last message, each as its own message first.
    if (blocks_sent > job->blocks_size()) blocks_sent = job->blocks_size();  // the job started again
    for (; blocks_sent + 1 < job->blocks_size(); ++blocks_sent) {
      v1::Job after_block = *job;
      after_block.mutable_blocks()->DeleteSubrange(blocks_sent + 1, job->blocks_size() - blocks_sent - 1);
      after_block.set_blocks_done(after_block.blocks(blocks_sent).index() + 1);
      after_block.set_phase(v1::JOB_PHASE_SEARCHING);
      if (!writer->Write(after_block)) return grpc::Status(grpc::StatusCode::CANCELLED, "the watcher left");
    }
    blocks_sent = job->blocks_size();
    std::string serialized = job->SerializeAsString();
    if (serialized != last_sent) {
      if (!writer->Write(*job)) return grpc::Status(grpc::StatusCode::CANCELLED, "the watcher left");
      last_sent = std::move(serialized);
    }
    if (Terminal(job->state())) return grpc::Status::OK;
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the watcher left");
    seen = manager_.WaitForChange(seen, std::chrono::steady_clock::now() + std::chrono::seconds(1));
    job = manager_.Get(request->id());
    if (!job.ok()) return service::ToGrpcStatus(job.status());
  }
}

}  // namespace nibble::quantizer_server
