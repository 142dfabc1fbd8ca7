#include "service/client/labels.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "engine/base/quote.h"

namespace nibble::client {
namespace {

// The enum value's name without `prefix`, lowercased; the number for values this build does not know.
std::string Label(const std::string& name, absl::string_view prefix, int value) {
  if (name.empty()) return absl::StrCat(value);
  absl::string_view label = name;
  absl::ConsumePrefix(&label, prefix);
  return absl::AsciiStrToLower(label);
}

}  // namespace

std::string FinishReasonLabel(v1::FinishReason reason) {
  return Label(v1::FinishReason_Name(reason), "FINISH_REASON_", reason);
}

std::string ModelStateLabel(v1::ModelState state) { return Label(v1::ModelState_Name(state), "MODEL_STATE_", state); }

std::string JobStateLabel(v1::JobState state) { return Label(v1::JobState_Name(state), "JOB_STATE_", state); }

std::string JobPhaseLabel(v1::JobPhase phase) { return Label(v1::JobPhase_Name(phase), "JOB_PHASE_", phase); }

std::string QuantMethodLabel(v1::QuantMethod method) {
  if (method == v1::QUANT_METHOD_UNSPECIFIED) method = v1::QUANT_METHOD_AWQ;
  return Label(v1::QuantMethod_Name(method), "QUANT_METHOD_", method);
}

absl::StatusOr<v1::JobState> ParseJobState(absl::string_view label, absl::string_view flag) {
  std::vector<std::string> known;
  for (int value = v1::JobState_MIN; value <= v1::JobState_MAX; ++value) {
    if (!v1::JobState_IsValid(value) || value == v1::JOB_STATE_UNSPECIFIED) continue;
    const auto state = static_cast<v1::JobState>(value);
    known.push_back(JobStateLabel(state));
    if (known.back() == absl::AsciiStrToLower(label)) return state;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": ", QuotedPrefix(label), " is not a job state (", absl::StrJoin(known, ", "), ")"));
}

}  // namespace nibble::client
