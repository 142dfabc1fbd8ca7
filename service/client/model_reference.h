// Model references as clients write them: "NAME" (the version the server serves) or "NAME:VERSION" (that
// version, which the server must have loaded). The syntax of the model store's references (model_store.h).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nibble::client {

struct ModelReference {
  std::string name;
  uint64_t version = 0;  // 0: the version the server serves
};

// InvalidArgument naming the reference when the name is empty, holds a '/' (a path, not a name) or the
// version is not a positive integer. The server validates names fully (engine/io/model_store.h).
absl::StatusOr<ModelReference> ParseModelReference(absl::string_view reference);

}  // namespace nibble::client
