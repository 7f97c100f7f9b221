#pragma once
// The admin commands' bodies, one group per file (admin_models.cc, admin_usage.cc,
// admin_purge.cc). Each returns the exit code; admin_commands.cc parses flags and calls them.
#include <cstdint>
#include <string>

#include "cli/admin_connection.h"

namespace modelcache::cli {

struct ModelRef {
  std::string name;
  std::string version;  // empty: the whole model
};
// "NAME" or "NAME@VERSION"; false (after a message on stderr) for an empty part.
bool ParseModelRef(const std::string& text, bool version_required, ModelRef& ref);

int RunModelsList(AdminConnection& connection);
int RunModelsShow(AdminConnection& connection, const std::string& name);
int RunSetCaching(AdminConnection& connection, const ModelRef& ref, bool enabled);
int RunSetPin(AdminConnection& connection, const ModelRef& ref, bool pinned);
int RunDelete(AdminConnection& connection, const std::string& name);

// admin_sources.cc. `prefix` empty: clears it.
int RunSetSource(AdminConnection& connection, const ModelRef& ref, const std::string& source);
int RunSetSourcePrefix(AdminConnection& connection, const std::string& name,
                       const std::string& prefix);

int RunUsage(AdminConnection& connection);
int RunNodes(AdminConnection& connection);
// The cache claim copies per namespace. admin_namespaces.cc.
int RunNamespaces(AdminConnection& connection);

// Table (or JSON) of purge actions and kept copies; `empty_message` when there is none.
int PrintPurgeResponse(AdminConnection& connection, const v1::PurgeResponse& response,
                       const char* empty_message);
int RunPurge(AdminConnection& connection, const ModelRef& ref);
int RunPurgeDryRun(AdminConnection& connection);
// What room on demand would purge on `volume_id` now for a fill `bytes` short.
int RunRoomDryRun(AdminConnection& connection, const std::string& volume_id, uint64_t bytes);
// `source` empty: the registered one.
int RunPrefetch(AdminConnection& connection, const ModelRef& ref, const std::string& source,
                const std::string& volume_id);

// Newest first; `model`, `kind` empty: every model, every kind. admin_audit.cc.
int RunAudit(AdminConnection& connection, uint32_t limit, const std::string& model,
             const std::string& kind);

}  // namespace modelcache::cli
