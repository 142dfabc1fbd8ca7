#include "service/client/model_reference.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nibble::client {

absl::StatusOr<ModelReference> ParseModelReference(absl::string_view reference) {
  ModelReference parsed;
  const size_t colon = reference.rfind(':');
  parsed.name = std::string(reference.substr(0, colon));
  if (parsed.name.empty() || absl::StrContains(parsed.name, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("model reference \"", reference, "\": give a model name, NAME or NAME:VERSION"));
  }
  if (colon != absl::string_view::npos &&
      (!absl::SimpleAtoi(reference.substr(colon + 1), &parsed.version) || parsed.version == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model reference \"", reference, "\": the version after ':' must be a positive integer"));
  }
  return parsed;
}

}  // namespace nibble::client
