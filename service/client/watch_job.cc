#include "service/client/watch_job.h"

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/base/quote.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"

namespace nibble::client {

bool IsTerminalJobState(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

absl::StatusOr<v1::Job> FollowJob(const Connection& connection, const std::string& id,
                                  const std::function<void(const v1::Job&)>& on_update) {
  grpc::ClientContext context;
  connection.Prepare(context);
  v1::WatchJobRequest request;
  request.set_id(id);
  std::unique_ptr<grpc::ClientReader<v1::Job>> reader = connection.quantizer().WatchJob(&context, request);
  std::optional<v1::Job> last;
  v1::Job job;
  while (reader->Read(&job)) {
    on_update(job);
    last = job;
  }
  if (absl::Status status = connection.CallStatus(reader->Finish(), "WatchJob"); !status.ok()) return status;
  if (!last || !IsTerminalJobState(last->state())) {
    return absl::InternalError(absl::StrCat(connection.server(), ": WatchJob: the stream of job ", QuotedPrefix(id),
                                            " ended before the job finished"));
  }
  return *std::move(last);
}

}  // namespace nibble::client
