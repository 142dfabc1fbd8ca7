// nibble.v1.Quantizer over gRPC's synchronous API (a job service sees a few calls a minute; WatchJob streams
// hold a thread each, bounded by kMaxWatchers). Handlers only translate: check the token, call the job
// manager, turn its status into gRPC's. SubmitJob and CancelJob take the admin token when one is configured.
//
// WatchJob sends the job as it is, then again whenever it changes (re-read after each change the manager
// announces, or every second to notice a client that left), until a terminal state, which is the last message.
// A block finished between two reads is still sent as its own message (the job as it stood after that block),
// so a watcher sees every block in order.
//
// Threading: handlers run on gRPC's threads. The manager and token checks must outlive the service.
#pragma once

#include <atomic>

#include "nibble/v1/quantizer.grpc.pb.h"
#include "service/common/security.h"
#include "service/quantizer_server/job_manager.h"

namespace nibble::quantizer_server {

inline constexpr int kMaxWatchers = 64;

class QuantizerService : public v1::Quantizer::Service {
 public:
  QuantizerService(JobManager& manager, const service::TokenCheck& reader_check, const service::TokenCheck& admin_check)
      : manager_(manager), reader_check_(reader_check), admin_check_(admin_check) {}

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request, v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::Job>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request, v1::Job* response) override;

 private:
  JobManager& manager_;
  const service::TokenCheck& reader_check_;
  const service::TokenCheck& admin_check_;
  std::atomic<int> watchers_ = 0;
};

}  // namespace nibble::quantizer_server
