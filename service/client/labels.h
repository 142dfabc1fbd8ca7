// Short lowercase names of the API's enums, as tables and logs print them: FINISH_REASON_LENGTH -> "length",
// MODEL_STATE_AVAILABLE -> "available", JOB_STATE_RUNNING -> "running" (the same words as the metrics'
// finish_reason and state labels), and the way back for the job states a user types (`nibble jobs list --state`).
// Pure functions: thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nibble/v1/inference.pb.h"
#include "nibble/v1/quantizer.pb.h"

namespace nibble::client {

std::string FinishReasonLabel(v1::FinishReason reason);
std::string ModelStateLabel(v1::ModelState state);
std::string JobStateLabel(v1::JobState state);
std::string JobPhaseLabel(v1::JobPhase phase);
std::string QuantMethodLabel(v1::QuantMethod method);  // UNSPECIFIED (the API's default) reads "awq"

// The state a label names ("queued", "running", "succeeded", "failed", "cancelled"); InvalidArgument naming
// `flag`, quoting the label and listing the states otherwise.
absl::StatusOr<v1::JobState> ParseJobState(absl::string_view label, absl::string_view flag);

}  // namespace nibble::client
