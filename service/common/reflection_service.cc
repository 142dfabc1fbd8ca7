#include "service/common/reflection_service.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/quote.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace nibble::service {
namespace {

namespace reflection = grpc::reflection::v1alpha;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

// Appends `file` and, depth first, its dependencies that `sent` does not hold yet; the client resolves imports
// from what it has received on the stream, so each file goes once.
void AddFileWithDependencies(const FileDescriptor* file, std::set<std::string>& sent,
                             reflection::FileDescriptorResponse& response) {
  if (!sent.insert(file->name()).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  response.add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) AddFileWithDependencies(file->dependency(i), sent, response);
}

void SetNotFound(absl::string_view what, const std::string& name, reflection::ServerReflectionResponse& response) {
  reflection::ErrorResponse* error = response.mutable_error_response();
  error->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  error->set_error_message(absl::StrCat(what, " ", QuotedPrefix(name), " is not known to this server"));
}

// The file that `request` asks for, or null.
const FileDescriptor* RequestedFile(const reflection::ServerReflectionRequest& request) {
  const DescriptorPool& pool = *DescriptorPool::generated_pool();
  switch (request.message_request_case()) {
    case reflection::ServerReflectionRequest::kFileByFilename:
      return pool.FindFileByName(request.file_by_filename());
    case reflection::ServerReflectionRequest::kFileContainingSymbol:
      return pool.FindFileContainingSymbol(request.file_containing_symbol());
    case reflection::ServerReflectionRequest::kFileContainingExtension: {
      const auto* type = pool.FindMessageTypeByName(request.file_containing_extension().containing_type());
      if (type == nullptr) return nullptr;
      const auto* extension = pool.FindExtensionByNumber(type, request.file_containing_extension().extension_number());
      return extension == nullptr ? nullptr : extension->file();
    }
    default:
      return nullptr;
  }
}

// What a file request names, for its NOT_FOUND message.
const char* RequestedKind(const reflection::ServerReflectionRequest& request) {
  switch (request.message_request_case()) {
    case reflection::ServerReflectionRequest::kFileByFilename:
      return "file";
    case reflection::ServerReflectionRequest::kFileContainingSymbol:
      return "symbol";
    default:
      return "extension";
  }
}
std::string RequestedName(const reflection::ServerReflectionRequest& request) {
  switch (request.message_request_case()) {
    case reflection::ServerReflectionRequest::kFileByFilename:
      return request.file_by_filename();
    case reflection::ServerReflectionRequest::kFileContainingSymbol:
      return request.file_containing_symbol();
    default:
      return absl::StrCat(request.file_containing_extension().containing_type(), "#",
                          request.file_containing_extension().extension_number());
  }
}

}  // namespace

ReflectionService::ReflectionService(TokenCheck token_check, std::vector<std::string> services)
    : token_check_(std::move(token_check)), services_([&services] {
        services.push_back(reflection::ServerReflection::service_full_name());
        return std::move(services);
      }()) {}

grpc::Status ReflectionService::ServerReflectionInfo(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<reflection::ServerReflectionResponse, reflection::ServerReflectionRequest>* stream) {
  if (grpc::Status status = token_check_.Check(*context); !status.ok()) return status;
  std::set<std::string> sent;
  reflection::ServerReflectionRequest request;
  while (stream->Read(&request)) {
    reflection::ServerReflectionResponse response;
    response.set_valid_host(request.host());
    *response.mutable_original_request() = request;
    switch (request.message_request_case()) {
      case reflection::ServerReflectionRequest::kListServices:
        for (const std::string& name : services_)
          response.mutable_list_services_response()->add_service()->set_name(name);
        break;
      case reflection::ServerReflectionRequest::kAllExtensionNumbersOfType: {
        const DescriptorPool& pool = *DescriptorPool::generated_pool();
        const auto* type = pool.FindMessageTypeByName(request.all_extension_numbers_of_type());
        if (type == nullptr) {
          SetNotFound("message type", request.all_extension_numbers_of_type(), response);
          break;
        }
        std::vector<const google::protobuf::FieldDescriptor*> extensions;
        pool.FindAllExtensions(type, &extensions);
        auto* numbers = response.mutable_all_extension_numbers_response();
        numbers->set_base_type_name(type->full_name());
        for (const auto* extension : extensions) numbers->add_extension_number(extension->number());
        break;
      }
      case reflection::ServerReflectionRequest::kFileByFilename:
      case reflection::ServerReflectionRequest::kFileContainingSymbol:
      case reflection::ServerReflectionRequest::kFileContainingExtension:
        if (const FileDescriptor* file = RequestedFile(request)) {
          AddFileWithDependencies(file, sent, *response.mutable_file_descriptor_response());
        } else {
          SetNotFound(RequestedKind(request), RequestedName(request), response);
        }
        break;
      case reflection::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET: {
        reflection::ErrorResponse* error = response.mutable_error_response();
        error->set_error_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        error->set_error_message("the request asks for nothing (no message_request field set)");
        break;
      }
    }
    if (!stream->Write(response)) break;
  }
  return grpc::Status::OK;
}

}  // namespace nibble::service
