// modelcachectl audit [--limit N] [--model NAME] [--kind KIND]: the coordinator's audit log of
// purges and registry source changes.
#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/admin_handlers.h"
#include "cli/admin_table.h"
#include "common/quantity.h"

namespace modelcache::cli {

int RunAudit(AdminConnection& connection, uint32_t limit, const std::string& model,
             const std::string& kind) {
  v1::AuditRequest request;
  request.set_limit(limit);
  request.set_name(model);
  request.set_kind(kind);
  v1::AuditResponse response;
  grpc::Status status = connection.Stub().Audit(connection.Context().get(), request, &response);
  if (!status.ok()) return connection.Fail("audit", status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kAdminExitOk;
  }
  if (response.records().empty()) {
    std::printf("nothing recorded%s\n", model.empty() ? "" : (" for model " + model).c_str());
    return kAdminExitOk;
  }
  // A purge names the volume, bytes, node and command; a registry change names who made it.
  auto dash = [](const std::string& text) { return text.empty() ? std::string("-") : text; };
  TextTable table({"WHEN", "KIND", "VOLUME", "MODEL", "FREED", "NODE", "COMMAND", "BY", "REASON"});
  for (const v1::AuditRecord& record : response.records()) {
    const bool purge = record.kind().empty() || record.kind() == "purge";
    table.AddRow({AgoText(record.at_unix_ms()), dash(record.kind()), dash(record.volume_id()),
                  record.version().empty() ? record.name() : record.name() + "@" + record.version(),
                  purge ? FormatBytes(record.bytes_freed()) : "-", dash(record.node_name()),
                  dash(record.command_id()), dash(record.principal()), record.reason()});
  }
  std::printf("%s", table.Render().c_str());
  return kAdminExitOk;
}

}  // namespace modelcache::cli
