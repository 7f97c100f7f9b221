// modelcachectl namespaces: the cache claim copies the coordinator keeps (kubernetes.enabled).
#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/admin_handlers.h"
#include "cli/admin_table.h"

namespace modelcache::cli {

int RunNamespaces(AdminConnection& connection) {
  v1::NamespacesResponse response;
  grpc::Status status =
      connection.Stub().Namespaces(connection.Context().get(), v1::NamespacesRequest(), &response);
  if (!status.ok()) return connection.Fail("namespaces", status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kExitOk;
  }
  if (!response.enabled()) {
    std::printf("kubernetes.enabled is false: the coordinator keeps no cache claims in other namespaces\n");
    return kExitOk;
  }
  std::printf("source: %s -> %s (%s)%s, last reconcile %s\n", response.source_claim().c_str(),
              response.source_volume().empty() ? "-" : response.source_volume().c_str(),
              response.storage().empty() ? "unknown storage" : response.storage().c_str(),
              response.source_healthy() ? "" : ", NOT COPIED", AgoText(response.last_reconcile_unix_ms()).c_str());
  for (const std::string& problem : response.problems()) std::printf("problem: %s\n", problem.c_str());
  TextTable table({"NAMESPACE", "CLAIM", "VOLUME", "PHASE", "WHY", "PROBLEMS"});
  for (const v1::CacheNamespace& entry : response.namespaces()) {
    std::string why;
    for (const std::string& reason : entry.reasons()) why += (why.empty() ? "" : "; ") + reason;
    std::string problems;
    for (const std::string& problem : entry.problems()) problems += (problems.empty() ? "" : "; ") + problem;
    table.AddRow({entry.namespace_(), entry.claim() + (entry.current() ? "" : " (previous)"),
                  entry.volume().empty() ? "-" : entry.volume(), entry.phase().empty() ? "absent" : entry.phase(), why,
                  problems.empty() ? "-" : problems});
  }
  std::printf("%s", table.Render().c_str());
  return kExitOk;
}

}  // namespace modelcache::cli
