// Following one quantization job through nibble-quantizer's WatchJob stream (synchronous: the calling thread
// reads the stream until it ends). Used by `nibble quantize --server --watch` and `nibble jobs watch`.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "nibble/v1/quantizer.pb.h"
#include "service/client/connection.h"

namespace nibble::client {

// Calls `on_update` with each message of WatchJob(`id`) as it arrives and returns the last one, which is in a
// terminal state (succeeded, failed or cancelled) when the stream ended as the API promises. Errors: the call's
// status (naming the server and WatchJob; e.g. NOT_FOUND for an unknown id), or Internal when the stream ended
// OK without a message or before a terminal state. The job's own outcome is the caller's to judge.
absl::StatusOr<v1::Job> FollowJob(const Connection& connection, const std::string& id,
                                  const std::function<void(const v1::Job&)>& on_update);

// Whether `state` is one a job never leaves.
bool IsTerminalJobState(v1::JobState state);

}  // namespace nibble::client
