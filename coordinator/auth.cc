#include "coordinator/auth.h"

#include <sstream>

#include "common/fs.h"
#include "common/status_annotate.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

bool ParseRole(std::string_view text, Role& role) {
  if (text == "admin") role = Role::kAdmin;
  else if (text == "maintainer") role = Role::kMaintainer;
  else if (text == "viewer") role = Role::kViewer;
  else if (text == "agent") role = Role::kAgent;
  else return false;
  return true;
}

bool Allows(Role role, Permission permission) {
  switch (permission) {
    case Permission::kAgentStream: return role == Role::kAgent;
    case Permission::kRead: return role != Role::kAgent;
    case Permission::kMaintain: return role == Role::kMaintainer || role == Role::kAdmin;
    case Permission::kAdmin: return role == Role::kAdmin;
    case Permission::kLease: return role != Role::kViewer;
  }
  return false;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAgent: return "agent";
    case Role::kViewer: return "viewer";
    case Role::kMaintainer: return "maintainer";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

absl::StatusOr<TokenTable> TokenTable::Parse(std::string_view text) {
  TokenTable table;
  std::istringstream lines{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::istringstream words(line);
    std::string token, role_text, name;
    if (!(words >> token) || token[0] == '#') continue;
    if (!(words >> role_text)) {
      return absl::InvalidArgumentError(fmt::format("tokens line {}: missing role", number));
    }
    Role role;
    if (!ParseRole(role_text, role)) {
      return absl::InvalidArgumentError(fmt::format(
          "tokens line {}: unknown role \"{}\" (want admin, maintainer, viewer, agent)", number,
          role_text));
    }
    if (!(words >> name)) name = role_text;
    if (!table.tokens_.emplace(token, Principal{name, role}).second) {
      return absl::InvalidArgumentError(fmt::format("tokens line {}: duplicate token", number));
    }
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return Annotate(text.status(), "tokens file");
  absl::StatusOr<TokenTable> table = Parse(*text);
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", path, std::string(table.status().message())));
  }
  return table;
}

absl::StatusOr<Principal> TokenTable::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.empty()) return absl::UnauthenticatedError("missing bearer token");
  if (authorization.substr(0, kPrefix.size()) != kPrefix) {
    return absl::UnauthenticatedError("authorization is not \"Bearer <token>\"");
  }
  auto found = tokens_.find(authorization.substr(kPrefix.size()));
  if (found == tokens_.end()) return absl::UnauthenticatedError("unknown token");
  return found->second;
}

absl::Status Authorize(const Principal& principal, Permission permission, std::string_view what) {
  if (Allows(principal.role, permission)) return absl::OkStatus();
  return absl::PermissionDeniedError(fmt::format("{} (role {}) may not {}", principal.name,
                                                 RoleName(principal.role), what));
}

}  // namespace modelcache
