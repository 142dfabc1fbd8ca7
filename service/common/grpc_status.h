// absl::Status -> grpc::Status at the RPC boundary: the same code (absl's codes are gRPC's) and message.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace nibble::service {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace nibble::service
