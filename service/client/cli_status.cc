#include "service/client/cli_status.h"

#include <iostream>

namespace nibble::client {

int ReportError(const absl::Status& status) {
  std::cerr << "error: " << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
  return 1;
}

}  // namespace nibble::client
