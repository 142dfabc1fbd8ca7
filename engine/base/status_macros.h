// Early-return helpers for absl::Status and absl::StatusOr, used across nibble's module boundaries.
//
//   NIBBLE_RETURN_IF_ERROR(expr);            // returns the status of expr when it is not OK
//   NIBBLE_ASSIGN_OR_RETURN(auto x, expr);   // x = *expr, or returns expr.status()
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define NIBBLE_STATUS_CONCAT_INNER(a, b) a##b
#define NIBBLE_STATUS_CONCAT(a, b) NIBBLE_STATUS_CONCAT_INNER(a, b)

#define NIBBLE_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (absl::Status nibble_status_ = (expr); !nibble_status_.ok()) { \
      return nibble_status_;                                          \
    }                                                                 \
  } while (false)

#define NIBBLE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()

#define NIBBLE_ASSIGN_OR_RETURN(lhs, expr) \
  NIBBLE_ASSIGN_OR_RETURN_IMPL(NIBBLE_STATUS_CONCAT(nibble_statusor_, __LINE__), lhs, expr)
