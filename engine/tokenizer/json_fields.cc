#include "engine/tokenizer/json_fields.h"

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nibble {
namespace {

using nlohmann::json;

// The field's value, nullptr when absent or null; `object` must be an object.
const json* Field(const json& object, const char* field) {
  const auto it = object.find(field);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

absl::Status WrongType(absl::string_view source, absl::string_view component, const char* field,
                       absl::string_view type) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", component, ": \"", field, "\" must be ", type));
}

absl::Status NotAnObject(absl::string_view source, absl::string_view component) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", component, " is not an object"));
}

}  // namespace

absl::StatusOr<bool> OptionalBool(const json& object, const char* field, bool fallback, absl::string_view source,
                                  absl::string_view component) {
  if (!object.is_object()) return NotAnObject(source, component);
  const json* value = Field(object, field);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) return WrongType(source, component, field, "a boolean");
  return value->get<bool>();
}

absl::StatusOr<std::string> OptionalString(const json& object, const char* field, std::string fallback,
                                           absl::string_view source, absl::string_view component) {
  if (!object.is_object()) return NotAnObject(source, component);
  const json* value = Field(object, field);
  if (value == nullptr) return fallback;
  if (!value->is_string()) return WrongType(source, component, field, "a string");
  return value->get<std::string>();
}

absl::StatusOr<int64_t> OptionalInt(const json& object, const char* field, int64_t fallback, absl::string_view source,
                                    absl::string_view component) {
  if (!object.is_object()) return NotAnObject(source, component);
  const json* value = Field(object, field);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer() || (value->is_number_unsigned() && value->get<uint64_t>() > INT64_MAX)) {
    return WrongType(source, component, field, "an integer");
  }
  return value->get<int64_t>();
}

}  // namespace nibble
