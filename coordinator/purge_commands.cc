#include "coordinator/purge_commands.h"

#include <string>

#include "common/log_fields.h"
#include "common/status_macros.h"
#include "coordinator/db/store.h"
#include "coordinator/metrics.h"
#include "spdlog/spdlog.h"

namespace modelcache {

void FillPurgeAction(const PurgeDecision& decision, std::string_view reason,
                     v1::PurgeAction* action) {
  action->set_volume_id(decision.volume_id);
  action->set_name(decision.name);
  action->set_version(decision.version);
  action->set_size_bytes(decision.size_bytes);
  action->set_reason(std::string(reason));
  action->set_explanation(decision.explanation);
}

absl::Status PurgeCommands::Queue(const PurgeDecision& decision, std::string_view reason,
                                  v1::PurgeAction* action) {
  if (action != nullptr) FillPurgeAction(decision, reason, action);
  ASSIGN_OR_RETURN(bool open,
                   store_.HasOpenPurge(decision.volume_id, decision.name, decision.version));
  if (open) return absl::OkStatus();  // already on its way
  v1::Command command;
  command.mutable_purge()->set_name(decision.name);
  command.mutable_purge()->set_version(decision.version);
  command.mutable_purge()->set_reason(fmt::format("{}: {}", reason, decision.explanation));
  ASSIGN_OR_RETURN(command, store_.EnqueueCommand(decision.volume_id, command,
                                                  clock_.Now()));
  if (action != nullptr) action->set_command_id(command.id());
  metrics_.CountPurgeDecision(reason);
  spdlog::info("purge queued {}", LogFields()
                                      .Add("model", decision.name)
                                      .Add("version", decision.version)
                                      .Add("volume", decision.volume_id)
                                      .Add("command", command.id())
                                      .Add("reason", reason)
                                      .Add("bytes", decision.size_bytes)
                                      .Add("why", decision.explanation));
  return absl::OkStatus();
}

}  // namespace modelcache
