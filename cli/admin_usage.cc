// modelcachectl usage, nodes.
#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/admin_handlers.h"
#include "cli/admin_table.h"
#include "common/quantity.h"

namespace modelcache::cli {

int RunUsage(AdminConnection& connection) {
  v1::UsageResponse response;
  grpc::Status status =
      connection.Stub().Usage(connection.Context().get(), v1::UsageRequest(), &response);
  if (!status.ok()) return connection.Fail("usage", status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kExitOk;
  }
  TextTable table({"VOLUME", "QUOTA", "USED", "USED%", "FS FREE", "MODELS", "NODES"});
  for (const v1::VolumeUsage& volume : response.volumes()) {
    std::string nodes;
    for (const std::string& node : volume.nodes()) nodes += (nodes.empty() ? "" : ",") + node;
    // Mounted as an extra volume only (the old volume after a storage switch).
    for (const std::string& node : volume.extra_nodes()) {
      nodes += (nodes.empty() ? "" : ",") + node + "(extra)";
    }
    std::string percent = "-";
    if (volume.quota_bytes() > 0) {
      percent = std::to_string(volume.used_bytes() * 100 / volume.quota_bytes()) + "%";
    }
    table.AddRow({volume.volume_id(),
                   volume.quota_bytes() > 0 ? FormatBytes(volume.quota_bytes()) : "none",
                   FormatBytes(volume.used_bytes()), percent, FormatBytes(volume.free_bytes()),
                   std::to_string(volume.model_count()), nodes});
  }
  std::printf("%s", table.Render().c_str());
  return kExitOk;
}

int RunNodes(AdminConnection& connection) {
  v1::NodesResponse response;
  grpc::Status status =
      connection.Stub().Nodes(connection.Context().get(), v1::NodesRequest(), &response);
  if (!status.ok()) return connection.Fail("nodes", status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kExitOk;
  }
  TextTable table({"NODE", "VOLUME", "AGENT", "CONNECTED", "LAST HEARTBEAT", "CAPACITY", "FREE"});
  for (const v1::NodeInfo& node : response.nodes()) {
    table.AddRow({node.node_name(), node.volume_id(), node.agent_version(),
                  node.connected() ? "yes" : "no", AgoText(node.last_heartbeat_unix_ms()),
                  FormatBytes(node.capacity_bytes()), FormatBytes(node.free_bytes())});
  }
  std::printf("%s", table.Render().c_str());
  return kExitOk;
}

}  // namespace modelcache::cli
