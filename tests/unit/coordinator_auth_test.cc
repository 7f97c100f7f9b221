#include "coordinator/auth.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

TokenTable Table() {
  auto table = TokenTable::Parse(
      "# comment\n\nt-admin admin alice\nt-maint maintainer\nt-view viewer carol\nt-agent agent\n");
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

TEST(TokenTable, AuthenticatesBearerTokensAndNamesTheCaller) {
  TokenTable table = Table();
  EXPECT_EQ(table.Size(), 4u);
  auto alice = table.Authenticate("Bearer t-admin");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->role, Role::kAdmin);
  auto maintainer = table.Authenticate("Bearer t-maint");
  ASSERT_TRUE(maintainer.ok());
  EXPECT_EQ(maintainer->name, "maintainer");  // the role names an unnamed token
}

TEST(TokenTable, MissingMalformedOrUnknownTokenIsUnauthenticated) {
  TokenTable table = Table();
  EXPECT_EQ(table.Authenticate("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(table.Authenticate("t-admin").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(table.Authenticate("Basic t-admin").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(table.Authenticate("Bearer nope").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenTable, RejectsUnknownRoleAndDuplicateToken) {
  auto unknown = TokenTable::Parse("a root\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(std::string(unknown.status().message()).find("\"root\""), std::string::npos);
  EXPECT_FALSE(TokenTable::Parse("a admin\na viewer\n").ok());
  EXPECT_FALSE(TokenTable::Parse("lonely\n").ok());
}

TEST(Authorize, RolesGrantWhatTheContractSays) {
  struct Case {
    Role role;
    Permission permission;
    bool allowed;
  };
  const Case cases[] = {
      {Role::kAgent, Permission::kAgentStream, true},  {Role::kAdmin, Permission::kAgentStream, false},
      {Role::kAgent, Permission::kRead, false},        {Role::kViewer, Permission::kRead, true},
      {Role::kViewer, Permission::kMaintain, false},   {Role::kMaintainer, Permission::kMaintain, true},
      {Role::kMaintainer, Permission::kAdmin, false},  {Role::kAdmin, Permission::kAdmin, true},
      {Role::kAdmin, Permission::kMaintain, true},     {Role::kAdmin, Permission::kRead, true},
      {Role::kViewer, Permission::kLease, false},      {Role::kAgent, Permission::kLease, true},
      {Role::kMaintainer, Permission::kLease, true},
  };
  for (const Case& c : cases) {
    absl::Status status = Authorize(Principal{"x", c.role}, c.permission, "do it");
    EXPECT_EQ(status.ok(), c.allowed) << RoleName(c.role) << " " << static_cast<int>(c.permission);
    if (!c.allowed) EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  }
}

}  // namespace
}  // namespace modelcache
