// modelcachectl models list|show, enable-caching, disable-caching, pin, unpin, delete.
#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/admin_handlers.h"
#include "cli/admin_table.h"
#include "common/quantity.h"

namespace modelcache::cli {
namespace {

const char* YesNo(bool value) { return value ? "yes" : "no"; }

std::string Ref(const ModelRef& ref) {
  return ref.version.empty() ? ref.name : ref.name + "@" + ref.version;
}

void PrintModelSummary(const v1::ModelInfo& info) {
  std::printf("model %s: caching %s, pinned %s%s, cached %s\n", info.name().c_str(),
              info.caching_enabled() ? "enabled" : "disabled", YesNo(info.pinned()),
              info.deleted() ? ", DELETED from the registry" : "",
              FormatBytes(info.cached_bytes()).c_str());
  std::printf("source prefix: %s\n",
              info.source_prefix().empty() ? "none" : info.source_prefix().c_str());
}

}  // namespace

int RunModelsList(AdminConnection& connection) {
  v1::ListModelsResponse response;
  grpc::Status status =
      connection.Stub().ListModels(connection.Context().get(), v1::ListModelsRequest(), &response);
  if (!status.ok()) return connection.Fail("models list", status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(response).c_str());
    return kAdminExitOk;
  }
  TextTable table({"NAME", "CACHING", "PINNED", "DELETED", "VERSIONS", "COPIES", "CACHED"});
  for (const v1::ModelInfo& model : response.models()) {
    int copies = 0;
    for (const v1::VersionInfo& version : model.versions()) copies += version.copies_size();
    table.AddRow({model.name(), model.caching_enabled() ? "enabled" : "disabled",
                  YesNo(model.pinned()), YesNo(model.deleted()),
                  std::to_string(model.versions_size()), std::to_string(copies),
                  FormatBytes(model.cached_bytes())});
  }
  std::printf("%s", table.Render().c_str());
  return kAdminExitOk;
}

int RunModelsShow(AdminConnection& connection, const std::string& name) {
  v1::ShowModelRequest request;
  request.set_name(name);
  v1::ModelInfo info;
  grpc::Status status = connection.Stub().ShowModel(connection.Context().get(), request, &info);
  if (!status.ok()) return connection.Fail("models show " + name, status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(info).c_str());
    return kAdminExitOk;
  }
  PrintModelSummary(info);
  TextTable table({"VERSION", "CACHING", "PINNED", "VOLUME", "SIZE", "STATE", "LAST ACCESS",
                   "LEASES", "NODES", "SOURCE"});
  for (const v1::VersionInfo& version : info.versions()) {
    std::string caching = version.caching_enabled() ? "enabled" : "disabled";
    if (version.caching_overridden()) caching += " (override)";
    // Agents with a coordinator refuse a version without a registered source.
    const std::string source = version.source().empty() ? "(not registered)" : version.source();
    if (version.copies().empty()) {
      table.AddRow({version.version(), caching, YesNo(version.pinned()), "-", "-", "-", "-", "-",
                    "-", source});
    }
    for (const v1::CacheCopy& copy : version.copies()) {
      std::string nodes;
      for (const std::string& node : copy.nodes()) nodes += (nodes.empty() ? "" : ",") + node;
      table.AddRow({version.version(), caching, YesNo(version.pinned()), copy.volume_id(),
                    FormatBytes(copy.size_bytes()), copy.state(),
                    AgoText(copy.last_access_unix_ms()), std::to_string(copy.live_leases()),
                    nodes, source});
    }
  }
  std::printf("%s", table.Render().c_str());
  return kAdminExitOk;
}

int RunSetCaching(AdminConnection& connection, const ModelRef& ref, bool enabled) {
  v1::SetCachingRequest request;
  request.set_name(ref.name);
  request.set_version(ref.version);
  request.set_enabled(enabled);
  v1::ModelInfo info;
  grpc::Status status = connection.Stub().SetCaching(connection.Context().get(), request, &info);
  const std::string what = std::string(enabled ? "enable" : "disable") + "-caching " + Ref(ref);
  if (!status.ok()) return connection.Fail(what, status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(info).c_str());
  } else {
    std::printf("caching %s for %s\n", enabled ? "enabled" : "disabled", Ref(ref).c_str());
  }
  return kAdminExitOk;
}

int RunSetPin(AdminConnection& connection, const ModelRef& ref, bool pinned) {
  v1::SetPinRequest request;
  request.set_name(ref.name);
  request.set_version(ref.version);
  request.set_pinned(pinned);
  v1::ModelInfo info;
  grpc::Status status = connection.Stub().SetPin(connection.Context().get(), request, &info);
  if (!status.ok()) return connection.Fail(std::string(pinned ? "pin " : "unpin ") + Ref(ref), status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(info).c_str());
  } else {
    std::printf("%s %s\n", pinned ? "pinned" : "unpinned", Ref(ref).c_str());
  }
  return kAdminExitOk;
}

int RunDelete(AdminConnection& connection, const std::string& name) {
  v1::DeleteModelRequest request;
  request.set_name(name);
  v1::PurgeResponse response;
  grpc::Status status = connection.Stub().DeleteModel(connection.Context().get(), request, &response);
  if (!status.ok()) return connection.Fail("delete " + name, status);
  if (!connection.Options().json) std::printf("model %s deleted from the registry\n", name.c_str());
  return PrintPurgeResponse(connection, response, "no cached copies to purge");
}

}  // namespace modelcache::cli
