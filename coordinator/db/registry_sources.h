#pragma once
// The registry's sources in SQLite: each version's source (versions.source), each model's
// source prefix (models.source_prefix), the audit entries of their changes, and the list the
// caching policy carries to the agents. Functions over the store's one connection: the caller
// (CoordinatorStore) holds its lock, and a transaction where several writes must be one.
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/db/sqlite.h"
#include "coordinator/policy/source_rules.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

// The version's registered source (nullopt when it has none or is unknown) and its model's
// prefix (empty when it has none or is unknown).
absl::StatusOr<SourceEntry> ReadSourceEntry(Database& db, std::string_view name,
                                            std::string_view version);

// The version and its model must exist (CoordinatorStore::EnsureVersion).
absl::Status WriteVersionSource(Database& db, std::string_view name, std::string_view version,
                                std::string_view source);
// The model must exist. Empty clears the prefix.
absl::Status WriteSourcePrefix(Database& db, std::string_view name, std::string_view prefix,
                               int64_t now_ms);

// One registry change in the audit log (kind "source" or "source-prefix"; no volume, no bytes).
absl::Status AppendRegistryAudit(Database& db, int64_t now_ms, std::string_view name,
                                 std::string_view version, std::string_view kind,
                                 std::string_view reason, std::string_view principal);

// Every registered source into `policy.sources`, ordered by name and version, and
// sources_included set.
absl::Status AddRegisteredSources(Database& db, v1::CachingPolicy& policy);

}  // namespace modelcache
