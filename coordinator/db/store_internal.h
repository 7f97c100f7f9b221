#pragma once
// What the files of CoordinatorStore (store.cc and its sections store_agents.cc,
// store_registry.cc, store_views.cc, store_leases.cc, store_commands.cc) share. Not for use
// outside coordinator/db/.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modelcache::store_internal {

int64_t AsInt(uint64_t value);
// A ModelUsage state number as the database stores it ("READY", ...).
std::string StateName(int64_t state);
// One row per copy (volume, name, version) aggregated over the agents' reports: the SELECT
// and FROM, to be followed by an optional WHERE and kCopiesGroup. Its leases rule is
// described at its definition.
const std::string& CopiesSql();
inline constexpr const char* kCopiesGroup =
    " GROUP BY volume_id, name, version ORDER BY volume_id, name, version";
// "name\0version", the key of CoordinatorStore's cache of registered versions.
std::string VersionKey(std::string_view name, std::string_view version);
// The distinct nodes of a group_concat, in order.
std::vector<std::string> SplitNodes(const std::string& text);

}  // namespace modelcache::store_internal
