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

// What a file request asks for: its kind and name (for a NOT_FOUND message) and the file, null when unknown.
struct FileRequest {
  const char* kind;
  std::string name;
  const FileDescriptor* file;
};

FileRequest ResolveFileRequest(const reflection::ServerReflectionRequest& request) {
  const DescriptorPool& pool = *DescriptorPool::generated_pool();
  switch (request.message_request_case()) {
    case reflection::ServerReflectionRequest::kFileByFilename:
      return {"file", request.file_by_filename(), pool.FindFileByName(request.file_by_filename())};
    case reflection::ServerReflectionRequest::kFileContainingSymbol:
      return {"symbol", request.file_containing_symbol(),
              pool.FindFileContainingSymbol(request.file_containing_symbol())};
    default: {  // kFileContainingExtension
      const reflection::ExtensionRequest& asked = request.file_containing_extension();
      const auto* type = pool.FindMessageTypeByName(asked.containing_type());
      const auto* extension = type == nullptr ? nullptr : pool.FindExtensionByNumber(type, asked.extension_number());
      return {"extension", absl::StrCat(asked.containing_type(), "#", asked.extension_number()),
              extension == nullptr ? nullptr : extension->file()};
    }
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
        if (const FileRequest asked = ResolveFileRequest(request); asked.file != nullptr) {
          AddFileWithDependencies(asked.file, sent, *response.mutable_file_descriptor_response());
        } else {
          SetNotFound(asked.kind, asked.name, response);
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
