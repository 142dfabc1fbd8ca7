// gRPC server reflection (grpc.reflection.v1alpha.ServerReflection) behind the service's bearer token.
//
// Debian's reflection plugin answers every caller, so a server with --auth-token-file would list its services
// and their protos to anyone. ReflectionService answers the same protocol (proto/grpc/reflection/v1alpha) from
// the process's generated descriptor pool, but checks the caller's token first, exactly as the services it
// describes do: a call without the token ends UNAUTHENTICATED before any request is read.
//
// Per request on the stream: list_services names the services given at construction; file_by_filename and
// file_containing_symbol / _extension send the file and those of its dependencies not yet sent on this
// stream; all_extension_numbers_of_type lists a message's extensions. A name that is not known gets an
// error_response NOT_FOUND quoting a short escaped prefix of it; the stream goes on.
//
// Immutable after construction; gRPC may call it from any number of threads. The TokenCheck is copied.
#pragma once

#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "service/common/security.h"

namespace nibble::service {

class ReflectionService final : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  // `services`: the fully qualified names to list (this service's own name is added).
  ReflectionService(TokenCheck token_check, std::vector<std::string> services);

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1alpha::ServerReflectionResponse,
                               grpc::reflection::v1alpha::ServerReflectionRequest>* stream) override;

 private:
  const TokenCheck token_check_;
  const std::vector<std::string> services_;
};

}  // namespace nibble::service
