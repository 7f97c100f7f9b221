#pragma once
// Bearer tokens and roles for the coordinator's RPCs. The tokens file has one token per line:
//   <token> <role> [<name>]        # role: admin | maintainer | viewer | agent
// Blank lines and lines starting with '#' are ignored. `name` (default: the role) names the
// caller in logs; the token itself is never logged.
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace modelcache {

enum class Role { kAgent, kViewer, kMaintainer, kAdmin };
const char* RoleName(Role role);

// What an RPC needs. kRead: viewer and up. kMaintain: maintainer and up. kAdmin: admin.
// kAgentStream: agent only. kLease: agent, maintainer or admin.
enum class Permission { kAgentStream, kRead, kMaintain, kAdmin, kLease };

struct Principal {
  std::string name;
  Role role = Role::kViewer;
};

class TokenTable {
 public:
  // INVALID_ARGUMENT naming the line for an unknown role, a missing role or a duplicate token.
  static absl::StatusOr<TokenTable> Parse(std::string_view text);
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // `authorization` is the metadata value, "Bearer <token>". UNAUTHENTICATED when it is
  // missing, malformed or the token is unknown.
  absl::StatusOr<Principal> Authenticate(std::string_view authorization) const;
  size_t Size() const { return tokens_.size(); }

 private:
  std::map<std::string, Principal, std::less<>> tokens_;
};

// PERMISSION_DENIED naming the caller, its role and what it tried.
absl::Status Authorize(const Principal& principal, Permission permission, std::string_view what);

}  // namespace modelcache
