#include "service/common/grpc_status.h"

#include <string>

namespace nibble::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace nibble::service
