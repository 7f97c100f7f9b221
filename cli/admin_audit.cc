// modelcachectl audit [--limit N] [--model NAME]: the coordinator's purge audit log.
#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/admin_handlers.h"
#include "cli/admin_table.h"
#include "common/quantity.h"

namespace modelcache::cli {

int RunAudit(AdminConnection& connection, uint32_t limit, const std::string& model) {
  v1::AuditRequest request;
  request.set_limit(limit);
  request.set_name(model);
  v1::AuditResponse response;
  grpc::Status status = connection.Stub().Audit(connection.Context().get(), request, &response);
  if (!status.ok()) return connection.Fail("audit", status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kAdminExitOk;
  }
  if (response.records().empty()) {
    std::printf("no purges recorded%s\n", model.empty() ? "" : (" for model " + model).c_str());
    return kAdminExitOk;
  }
  TextTable table({"WHEN", "VOLUME", "MODEL", "FREED", "NODE", "COMMAND", "REASON"});
  for (const v1::AuditRecord& record : response.records()) {
    table.AddRow({AgoText(record.at_unix_ms()), record.volume_id(),
                  record.name() + "@" + record.version(), FormatBytes(record.bytes_freed()),
                  record.node_name(), record.command_id(), record.reason()});
  }
  std::printf("%s", table.Render().c_str());
  return kAdminExitOk;
}

}  // namespace modelcache::cli
