#include "service/inference_server/admin_check.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"

namespace nibble::server {

bool IsLoopbackPeer(absl::string_view peer) {
  return absl::StartsWith(peer, "unix:") || absl::StartsWith(peer, "unix-abstract:") ||
         absl::StartsWith(peer, "ipv4:127.") || absl::StartsWith(peer, "ipv6:[::1]:") ||
         absl::StartsWith(peer, "ipv6:[::ffff:127.");
}

absl::StatusOr<AdminCheck> AdminCheck::FromOptions(const ServerOptions& options,
                                                   const service::TokenCheck& client_check) {
  if (!options.admin_token_file.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(service::TokenCheck admin_check,
                            service::TokenCheck::FromFile("--admin-token-file", options.admin_token_file));
    return AdminCheck(Mode::kToken, std::move(admin_check));
  }
  return AdminCheck(options.allow_loopback_admin ? Mode::kLoopback : Mode::kDisabled, client_check);
}

grpc::Status AdminCheck::Check(const grpc::ServerContextBase& context) const {
  switch (mode_) {
    case Mode::kDisabled:
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "admin calls are off: start nibble-server with --admin-token-file, or "
                          "--allow-loopback-admin");
    case Mode::kToken:
      return token_check_.Check(context);
    case Mode::kLoopback:
      if (const std::string peer = context.peer(); !IsLoopbackPeer(peer)) {
        return grpc::Status(
            grpc::StatusCode::PERMISSION_DENIED,
            absl::StrCat("admin calls are allowed from loopback only (--allow-loopback-admin); ", QuotedPrefix(peer),
                         " is not (or start nibble-server with --admin-token-file)"));
      }
      return token_check_.Check(context);
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unknown admin check mode");
}

}  // namespace nibble::server
