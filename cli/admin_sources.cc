// modelcachectl models set-source NAME@VERSION URI, models set-source-prefix NAME PREFIX|--clear:
// where the registry says a model version comes from (coordinator SetSource, SetSourcePrefix).
#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/admin_handlers.h"
#include "cli/admin_table.h"

namespace modelcache::cli {

int RunSetSource(AdminConnection& connection, const ModelRef& ref, const std::string& source) {
  v1::SetSourceRequest request;
  request.set_name(ref.name);
  request.set_version(ref.version);
  request.set_source(source);
  v1::ModelInfo info;
  grpc::Status status = connection.Stub().SetSource(connection.Context().get(), request, &info);
  if (!status.ok()) return connection.Fail("models set-source " + ref.name + "@" + ref.version, status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(info).c_str());
    return kAdminExitOk;
  }
  for (const v1::VersionInfo& version : info.versions()) {
    if (version.version() != ref.version) continue;
    std::printf("source of %s@%s: %s\n", ref.name.c_str(), ref.version.c_str(),
                version.source().c_str());
    // The copies came from whatever source was registered when they were filled.
    if (!version.copies().empty()) {
      std::printf("%d cached cop%s of %s@%s stay%s until purged (modelcachectl purge %s@%s)\n",
                  version.copies_size(), version.copies_size() == 1 ? "y" : "ies",
                  ref.name.c_str(), ref.version.c_str(), version.copies_size() == 1 ? "s" : "",
                  ref.name.c_str(), ref.version.c_str());
    }
  }
  return kAdminExitOk;
}

int RunSetSourcePrefix(AdminConnection& connection, const std::string& name,
                       const std::string& prefix) {
  v1::SetSourcePrefixRequest request;
  request.set_name(name);
  request.set_prefix(prefix);
  v1::ModelInfo info;
  grpc::Status status =
      connection.Stub().SetSourcePrefix(connection.Context().get(), request, &info);
  if (!status.ok()) return connection.Fail("models set-source-prefix " + name, status);
  if (connection.Options().json) {
    std::printf("%s\n", ToJson(info).c_str());
  } else if (info.source_prefix().empty()) {
    std::printf("model %s: no source prefix\n", name.c_str());
  } else {
    std::printf("model %s: sources of new versions must fall under %s\n", name.c_str(),
                info.source_prefix().c_str());
  }
  return kAdminExitOk;
}

}  // namespace modelcache::cli
