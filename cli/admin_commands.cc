#include "cli/admin_commands.h"

#include <cstdio>
#include <memory>

#include "cli/admin_connection.h"
#include "cli/admin_handlers.h"
#include "common/quantity.h"
#include "common/uri.h"

namespace modelcache::cli {
namespace {

// State shared by the admin subcommands; only one runs per invocation.
struct AdminState {
  AdminOptions options;
  std::string name;
  std::string source;
  std::string volume_id;
  std::string kind;
  bool dry_run = false;
  std::string room;  // purge --dry-run --room SIZE
  bool clear = false;
  uint32_t limit = 50;
  CliContext* context = nullptr;
};

void AddConnectionFlags(CLI::App& command, AdminState& state) {
  command.add_option("--coordinator", state.options.coordinator,
                     "Coordinator host:port (default $MODELCACHE_COORDINATOR)");
  command.add_option("--token", state.options.token,
                     "Bearer token (default $MODELCACHE_TOKEN, then the kubeconfig user's token)");
  command.add_option("--kubeconfig", state.options.kubeconfig,
                     "Kubeconfig whose user token to send (default $KUBECONFIG, in-cluster, ~/.kube/config)");
  command.add_option("--context", state.options.context, "Kubeconfig context (default the current one)");
  command.add_flag("--json", state.options.json, "JSON output for scripts");
  command.add_flag("--tls", state.options.tls, "Use TLS (system roots unless --ca-file)");
  command.add_option("--ca-file", state.options.ca_file, "PEM CA certificates for TLS");
  command.add_option("--timeout", state.options.timeout_seconds, "Seconds to wait for an answer");
}

// Wraps a body that needs a connection: opens it, runs, stores the exit code.
template <typename Body>
void OnRun(CLI::App& command, std::shared_ptr<AdminState> state, Body body) {
  command.callback([state, body] {
    std::unique_ptr<AdminConnection> connection =
        AdminConnection::Open(state->options, state->context->environment);
    if (!connection) {
      state->context->exit_code = kExitUsage;
      return;
    }
    state->context->exit_code = body(*connection, *state);
  });
}

CLI::App* Command(CLI::App& parent, const std::string& name, const std::string& help,
                  AdminState& state) {
  CLI::App* command = parent.add_subcommand(name, help);
  AddConnectionFlags(*command, state);
  return command;
}

// A command that takes NAME[@VERSION] and applies `body` to it.
template <typename Body>
void RefCommand(CLI::App& app, const std::string& name, const std::string& help,
                std::shared_ptr<AdminState> state, bool version_required, Body body) {
  CLI::App* command = Command(app, name, help, *state);
  command->add_option("model", state->name, version_required ? "NAME@VERSION" : "NAME[@VERSION]")
      ->required();
  OnRun(*command, state, [body, version_required](AdminConnection& connection, AdminState& s) {
    ModelRef ref;
    if (!ParseModelRef(s.name, version_required, ref)) return kExitUsage;
    return body(connection, ref, s);
  });
}

// purge NAME[@VERSION], or --dry-run (the next policy run, or --room for a fill short of room).
int RunPurgeCommand(AdminConnection& c, AdminState& s) {
  if (s.dry_run) {
    if (!s.name.empty()) {
      std::fprintf(stderr, "modelcachectl: purge --dry-run takes no model\n");
      return kExitUsage;
    }
    if (s.room.empty() != s.volume_id.empty()) {
      std::fprintf(stderr, "modelcachectl: purge --dry-run: --room and --volume go together\n");
      return kExitUsage;
    }
    if (!s.room.empty()) {
      absl::StatusOr<uint64_t> bytes = ParseQuantity(s.room);
      if (!bytes.ok() || *bytes == 0) {
        std::fprintf(stderr, "modelcachectl: purge --dry-run --room %s: want a size such as 20Gi\n",
                     s.room.c_str());
        return kExitUsage;
      }
      return RunRoomDryRun(c, s.volume_id, *bytes);
    }
    return RunPurgeDryRun(c);
  }
  if (!s.room.empty()) {
    std::fprintf(stderr, "modelcachectl: purge --room needs --dry-run\n");
    return kExitUsage;
  }
  ModelRef ref;
  if (s.name.empty()) {
    std::fprintf(stderr, "modelcachectl: purge needs NAME[@VERSION] (or --dry-run)\n");
    return kExitUsage;
  }
  if (!ParseModelRef(s.name, false, ref)) return kExitUsage;
  return RunPurge(c, ref);
}

// models list|show|set-source|set-source-prefix.
void AddModelsCommands(CLI::App& app, std::shared_ptr<AdminState> state) {
  CLI::App* models = app.add_subcommand("models", "Models known to the coordinator");
  models->require_subcommand(1);
  CLI::App* list = Command(*models, "list", "Every model: caching, pins, cached bytes", *state);
  OnRun(*list, state, [](AdminConnection& c, AdminState&) { return RunModelsList(c); });
  CLI::App* show = Command(*models, "show", "One model: versions and where they are cached", *state);
  show->add_option("name", state->name, "Model name")->required();
  OnRun(*show, state, [](AdminConnection& c, AdminState& s) { return RunModelsShow(c, s.name); });
  CLI::App* set_source = Command(
      *models, "set-source",
      "Register where NAME@VERSION comes from (agents with a coordinator fill only from it)",
      *state);
  set_source->add_option("model", state->name, "NAME@VERSION")->required();
  set_source->add_option("source", state->source, "s3://, http(s):// or file:// URI")->required();
  OnRun(*set_source, state, [](AdminConnection& c, AdminState& s) {
    ModelRef ref;
    if (!ParseModelRef(s.name, true, ref)) return kExitUsage;
    return RunSetSource(c, ref, s.source);
  });
  CLI::App* set_prefix = Command(
      *models, "set-source-prefix",
      "The prefix every source of the model registered from now on must fall under", *state);
  set_prefix->add_option("name", state->name, "Model name")->required();
  set_prefix->add_option("prefix", state->source, "e.g. s3://models/llama/");
  set_prefix->add_flag("--clear", state->clear, "Remove the model's prefix");
  OnRun(*set_prefix, state, [](AdminConnection& c, AdminState& s) {
    if (s.clear == !s.source.empty()) {
      std::fprintf(stderr, "modelcachectl: models set-source-prefix needs PREFIX or --clear\n");
      return kExitUsage;
    }
    return RunSetSourcePrefix(c, s.name, s.source);
  });

}

// usage, nodes, namespaces: read-only views.
void AddViewCommands(CLI::App& app, std::shared_ptr<AdminState> state) {
  CLI::App* usage = Command(app, "usage", "Per volume: quota, used, free, models, nodes", *state);
  OnRun(*usage, state, [](AdminConnection& c, AdminState&) { return RunUsage(c); });
  CLI::App* nodes = Command(app, "nodes", "Agents: volume, version, connection, heartbeat", *state);
  OnRun(*nodes, state, [](AdminConnection& c, AdminState&) { return RunNodes(c); });
  CLI::App* namespaces =
      Command(app, "namespaces", "Cache claim copies per namespace: claim, PV, bound, why, problems", *state);
  OnRun(*namespaces, state, [](AdminConnection& c, AdminState&) { return RunNamespaces(c); });

}

// enable-/disable-caching, pin/unpin, delete.
void AddPolicyCommands(CLI::App& app, std::shared_ptr<AdminState> state) {
  RefCommand(app, "enable-caching", "Allow caching of a model (or one version)", state, false,
             [](AdminConnection& c, const ModelRef& r, AdminState&) { return RunSetCaching(c, r, true); });
  RefCommand(app, "disable-caching", "Refuse caching of a model (or one version)", state, false,
             [](AdminConnection& c, const ModelRef& r, AdminState&) { return RunSetCaching(c, r, false); });
  RefCommand(app, "pin", "Keep a model (or one version) from the unused and quota purges (delete still purges it)", state, false,
             [](AdminConnection& c, const ModelRef& r, AdminState&) { return RunSetPin(c, r, true); });
  RefCommand(app, "unpin", "Let the unused and quota purges take a model again", state, false,
             [](AdminConnection& c, const ModelRef& r, AdminState&) { return RunSetPin(c, r, false); });

  CLI::App* remove = Command(app, "delete", "Remove a model from the registry and purge it everywhere, pinned or not", *state);
  remove->add_option("name", state->name, "Model name")->required();
  OnRun(*remove, state, [](AdminConnection& c, AdminState& s) { return RunDelete(c, s.name); });

}

// purge and its dry runs.
void AddPurgeCommand(CLI::App& app, std::shared_ptr<AdminState> state) {
  CLI::App* purge = Command(app, "purge", "Purge NAME[@VERSION] on every volume now", *state);
  purge->add_option("model", state->name, "NAME[@VERSION]");
  purge->add_flag("--dry-run", state->dry_run, "Show what the next policy run would purge, and why");
  purge->add_option("--room", state->room,
                    "With --dry-run and --volume: what room on demand would purge now for a fill "
                    "this many bytes short (20Gi, 500M)");
  purge->add_option("--volume", state->volume_id, "With --room: the volume that needs room");
  OnRun(*purge, state, RunPurgeCommand);
}

// prefetch NAME@VERSION [--source] [--volume].
void AddPrefetchCommand(CLI::App& app, std::shared_ptr<AdminState> state) {
  CLI::App* prefetch = Command(app, "prefetch", "Warm the cache with NAME@VERSION before a rollout", *state);
  prefetch->add_option("model", state->name, "NAME@VERSION")->required();
  prefetch->add_option("--source", state->source,
                       "s3://, http(s):// or file:// URI (default: the registered source; a "
                       "version without one is registered with it)");
  prefetch->add_option("--volume", state->volume_id, "Only this volume (default: every volume)");
  OnRun(*prefetch, state, [](AdminConnection& c, AdminState& s) {
    ModelRef ref;
    if (!ParseModelRef(s.name, true, ref)) return kExitUsage;
    if (absl::Status length = CheckSourceUriLength(s.source); !length.ok()) {
      std::fprintf(stderr, "modelcachectl prefetch: --source: INVALID_ARGUMENT: %s\n",
                   std::string(length.message()).c_str());
      return kExitUsage;
    }
    return RunPrefetch(c, ref, s.source, s.volume_id);
  });

}

// audit [--limit] [--model] [--kind].
void AddAuditCommand(CLI::App& app, std::shared_ptr<AdminState> state) {
  CLI::App* audit = Command(
      app, "audit",
      "The audit log, newest first: purges (what, why, bytes freed) and source changes (who)",
      *state);
  audit->add_option("--limit", state->limit, "At most this many entries (default 50)")
      ->check(CLI::Range(1u, 100000u));
  audit->add_option("--model", state->name, "Only this model");
  audit->add_option("--kind", state->kind, "Only purges or registry source changes")
      ->check(CLI::IsMember({"purge", "source", "source-prefix"}));
  OnRun(*audit, state, [](AdminConnection& c, AdminState& s) {
    return RunAudit(c, s.limit, s.name, s.kind);
  });
}

}  // namespace

void AddAdminCommands(CLI::App& app, CliContext& context) {
  auto state = std::make_shared<AdminState>();
  state->context = &context;
  AddModelsCommands(app, state);
  AddViewCommands(app, state);
  AddPolicyCommands(app, state);
  AddPurgeCommand(app, state);
  AddPrefetchCommand(app, state);
  AddAuditCommand(app, state);
}

bool ParseModelRef(const std::string& text, bool version_required, ModelRef& ref) {
  size_t at = text.find('@');
  ref.name = text.substr(0, at);
  ref.version = at == std::string::npos ? "" : text.substr(at + 1);
  if (ref.name.empty() || (at != std::string::npos && ref.version.empty()) ||
      (version_required && ref.version.empty())) {
    std::fprintf(stderr, "modelcachectl: \"%s\": want %s\n", text.c_str(),
                 version_required ? "NAME@VERSION" : "NAME or NAME@VERSION");
    return false;
  }
  return true;
}

}  // namespace modelcache::cli
