// Who may call nibble-server's admin RPCs, LoadModel and UnloadModel (issue 13). With --admin-token-file, callers
// that send its token ("authorization: Bearer <admin token>"); else, with --allow-loopback-admin, callers on a
// loopback peer (127.0.0.0/8, ::1, a unix socket) that pass the client token check; else nobody, and the refusal
// says how to enable them. Immutable once made: any thread.
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "service/common/security.h"
#include "service/inference_server/server_options.h"

namespace nibble::server {

// Whether a gRPC peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path") is on this host.
bool IsLoopbackPeer(absl::string_view peer);

class AdminCheck {
 public:
  // From --admin-token-file and --allow-loopback-admin; `client_check` is --auth-token-file's (loopback callers
  // still need that token). Errors name the flag and file.
  static absl::StatusOr<AdminCheck> FromOptions(const ServerOptions& options, const service::TokenCheck& client_check);

  // OK; UNAUTHENTICATED for a missing or wrong token; PERMISSION_DENIED for a peer that is not loopback, or when
  // admin calls are not enabled (naming the flags that enable them).
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  enum class Mode { kDisabled, kToken, kLoopback };
  AdminCheck(Mode mode, service::TokenCheck token_check) : mode_(mode), token_check_(std::move(token_check)) {}

  Mode mode_;
  service::TokenCheck token_check_;  // kToken: the admin token; kLoopback: the client token
};

}  // namespace nibble::server
