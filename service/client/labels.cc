#include "service/client/labels.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

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

}  // namespace nibble::client
