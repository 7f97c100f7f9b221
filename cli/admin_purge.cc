// modelcachectl purge NAME[@VERSION], purge --dry-run [--room SIZE --volume ID], prefetch NAME@VERSION --source URI.
#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/admin_handlers.h"
#include "cli/admin_table.h"
#include "common/quantity.h"

namespace modelcache::cli {

int PrintPurgeResponse(AdminConnection& connection, const v1::PurgeResponse& response,
                       const char* empty_message) {
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kExitOk;
  }
  if (response.actions().empty()) std::printf("%s\n", empty_message);
  if (!response.actions().empty()) {
    TextTable table({"VOLUME", "MODEL", "SIZE", "REASON", "WHY", "COMMAND"});
    for (const v1::PurgeAction& action : response.actions()) {
      table.AddRow({action.volume_id(), action.name() + "@" + action.version(),
                    FormatBytes(action.size_bytes()), action.reason(), action.explanation(),
                    action.command_id().empty() ? "-" : action.command_id()});
    }
    std::printf("%s", table.Render().c_str());
  }
  if (!response.skipped().empty()) {
    std::printf("kept:\n");
    TextTable table({"VOLUME", "MODEL", "SIZE", "WHY"});
    for (const v1::PurgeAction& action : response.skipped()) {
      table.AddRow({action.volume_id(), action.name() + "@" + action.version(),
                    FormatBytes(action.size_bytes()), action.explanation()});
    }
    std::printf("%s", table.Render().c_str());
  }
  return kExitOk;
}

int RunPurge(AdminConnection& connection, const ModelRef& ref) {
  v1::PurgeRequest request;
  request.set_name(ref.name);
  request.set_version(ref.version);
  v1::PurgeResponse response;
  grpc::Status status = connection.Stub().Purge(connection.Context().get(), request, &response);
  const std::string what = "purge " + ref.name + (ref.version.empty() ? "" : "@" + ref.version);
  if (!status.ok()) return connection.Fail(what, status);
  return PrintPurgeResponse(connection, response, "nothing cached to purge");
}

int RunPurgeDryRun(AdminConnection& connection) {
  v1::PurgeResponse response;
  grpc::Status status = connection.Stub().PurgeDryRun(connection.Context().get(),
                                                      v1::PurgeDryRunRequest(), &response);
  if (!status.ok()) return connection.Fail("purge --dry-run", status);
  return PrintPurgeResponse(connection, response, "the next policy run would purge nothing");
}

int RunRoomDryRun(AdminConnection& connection, const std::string& volume_id, uint64_t bytes) {
  v1::PurgeDryRunRequest request;
  request.set_volume_id(volume_id);
  request.set_room_bytes(bytes);
  v1::PurgeResponse response;
  grpc::Status status =
      connection.Stub().PurgeDryRun(connection.Context().get(), request, &response);
  if (!status.ok()) return connection.Fail("purge --dry-run --room", status);
  return PrintPurgeResponse(connection, response, "room on demand would purge nothing");
}

int RunPrefetch(AdminConnection& connection, const ModelRef& ref, const std::string& source,
                const std::string& volume_id) {
  v1::PrefetchRequest request;
  request.set_name(ref.name);
  request.set_version(ref.version);
  request.set_source(source);
  request.set_volume_id(volume_id);
  v1::PrefetchResponse response;
  grpc::Status status = connection.Stub().Prefetch(connection.Context().get(), request, &response);
  if (!status.ok()) return connection.Fail("prefetch " + ref.name + "@" + ref.version, status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kExitOk;
  }
  for (int i = 0; i < response.command_ids_size(); ++i) {
    std::printf("prefetch of %s@%s from %s queued on volume %s (command %s)\n", ref.name.c_str(),
                ref.version.c_str(), response.source().c_str(), response.volume_ids(i).c_str(),
                response.command_ids(i).c_str());
  }
  return kExitOk;
}

}  // namespace modelcache::cli
