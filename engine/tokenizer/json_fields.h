// Optional typed fields of the JSON files beside a model's tokenizer (tokenizer.json's components): the
// fallback when the field is absent or null, InvalidArgument "<source>: <component>: "<field>" must be a
// boolean" (a string, an integer) when it holds another type or `object` is not an object. nlohmann's
// json::value(field, fallback) throws there instead, which no reader of files from a model store may do.
// Pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace nibble {

absl::StatusOr<bool> OptionalBool(const nlohmann::json& object, const char* field, bool fallback,
                                  absl::string_view source, absl::string_view component);
absl::StatusOr<std::string> OptionalString(const nlohmann::json& object, const char* field, std::string fallback,
                                           absl::string_view source, absl::string_view component);
absl::StatusOr<int64_t> OptionalInt(const nlohmann::json& object, const char* field, int64_t fallback,
                                    absl::string_view source, absl::string_view component);

}  // namespace nibble
