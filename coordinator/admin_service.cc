#include "coordinator/admin_service.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/log_fields.h"
#include "common/names.h"
#include "common/status_annotate.h"
#include "common/status_macros.h"
#include "common/uri.h"
#include "coordinator/agent_stream.h"
#include "coordinator/claims/claims_controller.h"
#include "coordinator/db/store.h"
#include "coordinator/policy/source_rules.h"
#include "coordinator/purge_commands.h"
#include "coordinator/room/room_on_demand.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

absl::Status ValidateModelRef(std::string_view name, std::string_view version,
                              bool version_required) {
  RETURN_IF_ERROR(ValidateModelName(name));
  if (!version.empty() || version_required) RETURN_IF_ERROR(ValidateModelVersion(version));
  return absl::OkStatus();
}

// The registry stores and compares sources in one spelling (common/uri.h). `what` names the
// field in the error ("set-source: source is empty").
absl::StatusOr<std::string> NormalizedSource(std::string_view what, std::string_view uri) {
  if (uri.empty()) return absl::InvalidArgumentError(fmt::format("{} is empty", what));
  absl::StatusOr<std::string> normalized = NormalizeSourceUri(uri);
  if (!normalized.ok()) return Annotate(normalized.status(), what);
  return normalized;
}

absl::Status ValidateAuditKind(std::string_view kind) {
  if (kind.empty() || kind == "purge" || kind == "source" || kind == "source-prefix") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(fmt::format(
      "audit: unknown kind \"{}\" (want purge, source or source-prefix)", kind));
}

// `via`: the call that set it ("set-source", "prefetch").
void LogSourceChange(std::string_view via, std::string_view name, std::string_view version,
                     std::string_view source, const Principal& principal) {
  spdlog::info("registry source set {}", LogFields()
                                             .Add("model", name)
                                             .Add("version", version)
                                             .Add("source", source)
                                             .Add("principal", principal.name)
                                             .Add("via", via));
}

}  // namespace

absl::Status AdminService::ListModels(v1::ListModelsResponse* response) {
  ASSIGN_OR_RETURN(std::vector<v1::ModelInfo> models, store_.ListModels(clock_.Now()));
  for (v1::ModelInfo& model : models) *response->add_models() = std::move(model);
  return absl::OkStatus();
}

absl::Status AdminService::ShowModel(const v1::ShowModelRequest& request,
                                     v1::ModelInfo* response) {
  RETURN_IF_ERROR(ValidateModelName(request.name()));
  ASSIGN_OR_RETURN(*response, store_.GetModel(request.name(), clock_.Now()));
  return absl::OkStatus();
}

absl::Status AdminService::Usage(v1::UsageResponse* response) {
  ASSIGN_OR_RETURN(*response, store_.Usage(policy_.default_quota_bytes));
  return absl::OkStatus();
}

absl::Status AdminService::Nodes(v1::NodesResponse* response) {
  ASSIGN_OR_RETURN(*response, store_.Nodes());
  return absl::OkStatus();
}

absl::Status AdminService::SetCaching(const v1::SetCachingRequest& request,
                                      v1::ModelInfo* response) {
  RETURN_IF_ERROR(ValidateModelRef(request.name(), request.version(), false));
  ASSIGN_OR_RETURN(*response, store_.SetCaching(request.name(), request.version(),
                                                request.enabled(), clock_.Now()));
  LogFields changed;
  changed.Add("model", request.name());
  if (!request.version().empty()) changed.Add("version", request.version());
  spdlog::info("caching setting changed {}",
               changed.Add("caching", request.enabled() ? "enabled" : "disabled"));
  streams_.BroadcastPolicy();
  return absl::OkStatus();
}

absl::Status AdminService::SetPin(const v1::SetPinRequest& request, v1::ModelInfo* response) {
  RETURN_IF_ERROR(ValidateModelRef(request.name(), request.version(), false));
  ASSIGN_OR_RETURN(*response,
                   store_.SetPin(request.name(), request.version(), request.pinned(), clock_.Now()));
  return absl::OkStatus();
}

absl::Status AdminService::DeleteModel(const v1::DeleteModelRequest& request,
                                       v1::PurgeResponse* response) {
  RETURN_IF_ERROR(ValidateModelName(request.name()));
  RETURN_IF_ERROR(store_.MarkDeleted(request.name(), clock_.Now()));
  spdlog::info("model deleted from the registry {}", LogFields().Add("model", request.name()));
  streams_.BroadcastPolicy();
  ASSIGN_OR_RETURN(Snapshot snapshot, store_.LoadSnapshot());
  PurgePlan plan = Plan(snapshot, policy_, clock_.Now());
  for (const PurgeDecision& decision : plan.decisions) {
    if (decision.name != request.name() || decision.reason != PurgeReason::kDeleted) continue;
    RETURN_IF_ERROR(purges_.Queue(decision, "deleted", response->add_actions()));
  }
  for (const PurgeDecision& held : plan.held_by_lease) {
    if (held.name == request.name()) FillPurgeAction(held, "deleted", response->add_skipped());
  }
  for (const PurgeDecision& left : plan.draining) {
    if (left.name == request.name()) FillPurgeAction(left, "deleted", response->add_skipped());
  }
  streams_.DispatchAll();
  return absl::OkStatus();
}

absl::Status AdminService::Purge(const v1::PurgeRequest& request, v1::PurgeResponse* response) {
  RETURN_IF_ERROR(ValidateModelRef(request.name(), request.version(), false));
  ASSIGN_OR_RETURN(Snapshot snapshot, store_.LoadSnapshot());
  ManualPurge manual = PlanManualPurge(snapshot, request.name(), request.version(), clock_.Now());
  for (const PurgeDecision& skipped : manual.skipped) {
    FillPurgeAction(skipped, "manual", response->add_skipped());
  }
  for (const PurgeDecision& decision : manual.purge) {
    RETURN_IF_ERROR(purges_.Queue(decision, "manual", response->add_actions()));
  }
  streams_.DispatchAll();
  return absl::OkStatus();
}

absl::Status AdminService::PurgeDryRun(const v1::PurgeDryRunRequest& request,
                                       v1::PurgeResponse* response) {
  if (request.room_bytes() > 0) {
    ASSIGN_OR_RETURN(*response, room_.DryRun(request.volume_id(), request.room_bytes()));
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Snapshot snapshot, store_.LoadSnapshot());
  PurgePlan plan = Plan(snapshot, policy_, clock_.Now());
  for (const PurgeDecision& decision : plan.decisions) {
    FillPurgeAction(decision, PurgeReasonName(decision.reason), response->add_actions());
  }
  for (const PurgeDecision& held : plan.held_by_lease) {
    FillPurgeAction(held, PurgeReasonName(held.reason), response->add_skipped());
  }
  for (const PurgeDecision& left : plan.draining) {
    FillPurgeAction(left, PurgeReasonName(left.reason), response->add_skipped());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, bool>> AdminService::PrefetchSource(
    const v1::PrefetchRequest& request) {
  const std::string& name = request.name();
  const std::string& version = request.version();
  ASSIGN_OR_RETURN(SourceEntry entry, store_.GetSourceEntry(name, version));
  if (request.source().empty()) {
    if (!entry.source) {
      return absl::FailedPreconditionError(fmt::format(
          "model {}@{}: no source is registered (register one with: modelcachectl models "
          "set-source {}@{} URI, or prefetch --source URI)",
          name, version, name, version));
    }
    return std::make_pair(*entry.source, false);
  }
  ASSIGN_OR_RETURN(std::string source, NormalizedSource("prefetch: source", request.source()));
  ASSIGN_OR_RETURN(bool register_source, DecideSourceChange(name, version, source, entry,
                                                            SourceChange::kRegisterOnly));
  return std::make_pair(std::move(source), register_source);
}

absl::Status AdminService::Prefetch(const v1::PrefetchRequest& request,
                                    const Principal& principal, v1::PrefetchResponse* response) {
  const std::string& name = request.name();
  const std::string& version = request.version();
  RETURN_IF_ERROR(ValidateModelRef(name, version, true));
  ASSIGN_OR_RETURN(bool enabled, CachingEnabled(name, version));
  if (!enabled) {
    return absl::FailedPreconditionError(
        fmt::format("model {}@{}: caching is disabled", name, version));
  }
  // The source: the registered one; one given must be it, or becomes it when there is none.
  ASSIGN_OR_RETURN(auto chosen, PrefetchSource(request));
  const auto& [source, register_source] = chosen;
  std::set<std::string> volumes = streams_.ConnectedVolumes(request.volume_id());
  if (volumes.empty()) {
    return absl::FailedPreconditionError(
        request.volume_id().empty()
            ? std::string("prefetch: no agent is connected")
            : fmt::format("prefetch: no agent of volume {} is connected", request.volume_id()));
  }
  if (register_source) {
    // Checked again in the store's transaction: another caller may have registered one.
    RETURN_IF_ERROR(store_.SetSource(name, version, source, SourceChange::kRegisterOnly,
                                     principal.name, clock_.Now())
                        .status());
    LogSourceChange("prefetch", name, version, source, principal);
    // Before the commands: the agents hold the registry that names this source.
    streams_.BroadcastPolicy();
  }
  response->set_source(source);
  for (const std::string& volume : volumes) {
    v1::Command command;
    command.mutable_prefetch()->set_name(name);
    command.mutable_prefetch()->set_version(version);
    command.mutable_prefetch()->set_source(source);
    ASSIGN_OR_RETURN(command, store_.EnqueueCommand(volume, command, clock_.Now()));
    response->add_command_ids(command.id());
    response->add_volume_ids(volume);
  }
  streams_.DispatchAll();
  return absl::OkStatus();
}

absl::Status AdminService::SetSource(const v1::SetSourceRequest& request,
                                     const Principal& principal, v1::ModelInfo* response) {
  RETURN_IF_ERROR(ValidateModelRef(request.name(), request.version(), true));
  ASSIGN_OR_RETURN(std::string source, NormalizedSource("set-source: source", request.source()));
  ASSIGN_OR_RETURN(*response, store_.SetSource(request.name(), request.version(), source,
                                               SourceChange::kSet, principal.name, clock_.Now()));
  LogSourceChange("set-source", request.name(), request.version(), source, principal);
  streams_.BroadcastPolicy();
  return absl::OkStatus();
}

absl::Status AdminService::SetSourcePrefix(const v1::SetSourcePrefixRequest& request,
                                           const Principal& principal, v1::ModelInfo* response) {
  RETURN_IF_ERROR(ValidateModelName(request.name()));
  std::string prefix;
  if (!request.prefix().empty()) {
    ASSIGN_OR_RETURN(prefix, NormalizedSource("set-source-prefix: prefix", request.prefix()));
  }
  ASSIGN_OR_RETURN(*response,
                   store_.SetSourcePrefix(request.name(), prefix, principal.name, clock_.Now()));
  spdlog::info("registry source prefix set {}",
               LogFields()
                   .Add("model", request.name())
                   .Add("prefix", prefix.empty() ? "none" : prefix)
                   .Add("principal", principal.name));
  return absl::OkStatus();
}

absl::Status AdminService::Audit(const v1::AuditRequest& request, v1::AuditResponse* response) {
  if (!request.name().empty()) RETURN_IF_ERROR(ValidateModelName(request.name()));
  RETURN_IF_ERROR(ValidateAuditKind(request.kind()));
  const size_t limit = request.limit() == 0 ? 100 : request.limit();
  ASSIGN_OR_RETURN(std::vector<AuditEntry> entries,
                   store_.Audit(limit, request.name(), request.kind()));
  for (const AuditEntry& entry : entries) {
    v1::AuditRecord* record = response->add_records();
    record->set_at_unix_ms(entry.at_unix_ms);
    record->set_volume_id(entry.volume_id);
    record->set_name(entry.name);
    record->set_version(entry.version);
    record->set_reason(entry.reason);
    record->set_bytes_freed(entry.bytes_freed);
    record->set_node_name(entry.node_name);
    record->set_command_id(entry.command_id);
    record->set_kind(entry.kind);
    record->set_principal(entry.principal);
  }
  return absl::OkStatus();
}

absl::Status AdminService::Namespaces(v1::NamespacesResponse* response) {
  if (claims_ != nullptr) claims::FillNamespacesResponse(claims_->View(), response);
  return absl::OkStatus();
}

absl::StatusOr<bool> AdminService::CachingEnabled(const std::string& name,
                                                  const std::string& version) {
  absl::StatusOr<v1::ModelInfo> model = store_.GetModel(name, clock_.Now());
  if (absl::IsNotFound(model.status())) return config_.default_caching_enabled;
  if (!model.ok()) return model.status();
  for (const v1::VersionInfo& info : model->versions()) {
    if (info.version() == version) return info.caching_enabled();
  }
  return model->caching_enabled();
}

}  // namespace modelcache
