#include "cli/maintenance_commands.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/admin_table.h"
#include "cli/agent_client.h"
#include "common/duration.h"
#include "common/quantity.h"
#include "modelcache/v1/maintenance.grpc.pb.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {
namespace {

// Verify, repair and migrate take as long as hashing, fetching or copying the models does.
constexpr std::chrono::hours kOperationDeadline{24};

struct MaintenanceFlags {
  std::string socket;
  bool json = false;
  // cleanup
  std::string volume;
  bool dry_run = false;
  bool force = false;
  std::vector<std::string> models;
  bool all_models = false;
  bool staging = false;
  // A live fill rewrites its journal every few seconds: 10 minutes untouched is abandoned.
  std::string staging_older_than = "10m";
  bool trash = false;
  bool quarantine = false;
  bool unknown = false;
  // verify, repair
  std::string model;
  bool no_quarantine = false;
  // migrate
  std::string from;
  std::string to;
  int parallelism = 0;
};

int Fail(const std::string& message, int code = kExitFailed) {
  fmt::print(stderr, "modelcachectl: {}\n", message);
  return code;
}

// Connects and runs `call` with a stub and a context carrying the deadline.
template <typename Call>
int WithMaintenance(const MaintenanceFlags& flags, CliContext& context, Call call) {
  std::string socket = ResolveSocketPath(flags.socket, context.environment);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToAgent(socket, std::chrono::seconds(5));
  if (!channel.ok()) {
    return Fail(fmt::format("agent unreachable: {}", std::string(channel.status().message())),
                kExitUnreachable);
  }
  std::unique_ptr<v1::Maintenance::Stub> stub = v1::Maintenance::NewStub(*channel);
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kOperationDeadline);
  return call(*stub, rpc);
}

int RpcFailed(const grpc::Status& status) { return Fail(DescribeError(FromGrpcStatus(status))); }

std::string SpaceText(const v1::VolumeSpaceInfo& space) {
  return fmt::format("{} free of {}", FormatBytes(space.free_bytes()),
                     FormatBytes(space.capacity_bytes()));
}

void PrintCleanup(const v1::CleanupResponse& response) {
  std::cout << fmt::format("volume {} at {}\n", response.volume_id(), response.path());
  TextTable table({"KIND", "PATH", "SIZE", "ACTION"});
  for (const v1::CleanupEntry& entry : response.entries()) {
    std::string action = "-";
    if (entry.selected()) action = response.dry_run() ? "would remove" : "remove";
    if (!entry.note().empty()) action = "keep: " + entry.note();
    table.AddRow({entry.kind(), entry.path(), FormatBytes(entry.bytes()), action});
  }
  std::cout << table.Render();
  for (const std::string& kept : response.kept()) std::cout << "kept: " << kept << "\n";
  if (response.dry_run()) {
    std::cout << fmt::format("dry run: would free {} ({} bytes); nothing removed\n",
                             FormatBytes(response.planned_bytes()), response.planned_bytes());
    std::cout << fmt::format("df: {}\n", SpaceText(response.before()));
    return;
  }
  for (const std::string& problem : response.problems()) std::cout << "problem: " << problem << "\n";
  std::cout << fmt::format("removed {} items, freed {} ({} bytes)\n", response.removed_size(),
                           FormatBytes(response.freed_bytes()), response.freed_bytes());
  std::cout << fmt::format("df before: {}\ndf after:  {}\n", SpaceText(response.before()),
                           SpaceText(response.after()));
}

int RunCleanup(const MaintenanceFlags& flags, bool staging_age_given, CliContext& context) {
  v1::CleanupRequest request;
  request.set_volume_id(flags.volume);
  request.set_dry_run(flags.dry_run);
  request.set_force(flags.force);
  for (const std::string& model : flags.models) request.add_models(model);
  request.set_all_models(flags.all_models);
  request.set_staging(flags.staging || staging_age_given);
  if (request.staging()) {
    absl::StatusOr<std::chrono::seconds> age = ParseDuration(flags.staging_older_than);
    if (!age.ok()) {
      return Fail(fmt::format("--staging-older-than {}: {}", flags.staging_older_than,
                              std::string(age.status().message())),
                  kExitUsage);
    }
    request.set_staging_older_than_seconds(age->count());
  }
  request.set_trash(flags.trash);
  request.set_quarantine(flags.quarantine);
  request.set_unknown(flags.unknown);
  return WithMaintenance(flags, context, [&](v1::Maintenance::Stub& stub, grpc::ClientContext& rpc) {
    v1::CleanupResponse response;
    grpc::Status status = stub.Cleanup(&rpc, request, &response);
    if (!status.ok()) return RpcFailed(status);
    if (flags.json) {
      std::cout << ToJson(response);
    } else {
      PrintCleanup(response);
    }
    return response.problems_size() == 0 ? kExitOk : kExitFailed;
  });
}

// "NAME" or "NAME@VERSION" into the two parts; false for an empty part.
bool SplitModel(const std::string& text, bool version_required, std::string& name,
                std::string& version) {
  size_t at = text.find('@');
  name = text.substr(0, at);
  version = at == std::string::npos ? "" : text.substr(at + 1);
  if (name.empty() || (at != std::string::npos && version.empty()) ||
      (version_required && version.empty())) {
    fmt::print(stderr, "modelcachectl: '{}': want {}\n", text,
               version_required ? "NAME@VERSION" : "NAME or NAME@VERSION");
    return false;
  }
  return true;
}

int RunVerify(const MaintenanceFlags& flags, CliContext& context) {
  v1::VerifyRequest request;
  if (!flags.model.empty()) {
    std::string name, version;
    if (!SplitModel(flags.model, false, name, version)) return kExitUsage;
    request.set_name(name);
    request.set_version(version);
  }
  request.set_no_quarantine(flags.no_quarantine);
  return WithMaintenance(flags, context, [&](v1::Maintenance::Stub& stub, grpc::ClientContext& rpc) {
    v1::VerifyResponse response;
    grpc::Status status = stub.Verify(&rpc, request, &response);
    if (!status.ok()) return RpcFailed(status);
    bool damaged = false;
    bool failed = false;
    TextTable table({"NAME", "VERSION", "FILES", "HASHED", "RESULT"});
    for (const v1::ModelVerification& model : response.models()) {
      std::string result = "ok";
      if (!model.error().empty()) {
        failed = true;
        result = "error: " + model.error();
      } else if (model.bad_files_size() > 0) {
        damaged = true;
        result = fmt::format("{} bad file(s): {}: {}", model.bad_files_size(),
                             model.bad_files(0).path(), model.bad_files(0).problem());
        if (!model.quarantined_to().empty()) result += "; quarantined to " + model.quarantined_to();
      }
      table.AddRow({model.name(), model.version(), std::to_string(model.files_checked()),
                    FormatBytes(model.bytes_hashed()), result});
    }
    if (flags.json) {
      std::cout << ToJson(response);
    } else {
      std::cout << table.Render();
      if (damaged) std::cout << "damaged models: `modelcachectl repair NAME@VERSION` re-fetches their bad files\n";
    }
    if (failed) return kExitFailed;
    return damaged ? kExitDamaged : kExitOk;
  });
}

int RunRepair(const MaintenanceFlags& flags, CliContext& context) {
  v1::RepairRequest request;
  std::string name, version;
  if (!SplitModel(flags.model, true, name, version)) return kExitUsage;
  request.set_name(name);
  request.set_version(version);
  return WithMaintenance(flags, context, [&](v1::Maintenance::Stub& stub, grpc::ClientContext& rpc) {
    v1::RepairResponse response;
    grpc::Status status = stub.Repair(&rpc, request, &response);
    if (!status.ok()) return RpcFailed(status);
    if (flags.json) {
      std::cout << ToJson(response);
    } else if (response.was_clean()) {
      std::cout << fmt::format("{}@{}: verified clean, nothing to repair ({})\n", name, version,
                               response.path());
    } else {
      for (const v1::BadFileInfo& bad : response.bad_files()) {
        std::cout << fmt::format("re-fetched {}: {}\n", bad.path(), bad.problem());
      }
      std::cout << fmt::format("{}@{}: repaired from {}: {} re-fetched, {} kept; published at {}\n",
                               name, version, response.from_quarantine(),
                               FormatBytes(response.bytes_refetched()),
                               FormatBytes(response.bytes_kept()), response.path());
    }
    return kExitOk;
  });
}

int RunMigrate(const MaintenanceFlags& flags, CliContext& context) {
  v1::MigrateRequest request;
  request.set_from_volume_id(flags.from);
  request.set_to_volume_id(flags.to);
  for (const std::string& model : flags.models) request.add_models(model);
  request.set_parallelism(flags.parallelism);
  return WithMaintenance(flags, context, [&](v1::Maintenance::Stub& stub, grpc::ClientContext& rpc) {
    v1::MigrateResponse response;
    grpc::Status status = stub.Migrate(&rpc, request, &response);
    if (!status.ok()) return RpcFailed(status);
    bool failed = false;
    TextTable table({"NAME", "VERSION", "FILES", "COPIED", "RESULT"});
    for (const v1::MigratedModel& model : response.models()) {
      std::string result = model.skipped() ? "already on the target" : "copied";
      if (!model.error().empty()) {
        failed = true;
        result = "error: " + model.error();
      }
      table.AddRow({model.name(), model.version(), std::to_string(model.files()),
                    FormatBytes(model.bytes_copied()), result});
    }
    if (flags.json) {
      std::cout << ToJson(response);
    } else {
      std::cout << table.Render();
      std::cout << fmt::format("{} copied from {} to {}\n", FormatBytes(response.bytes_copied()),
                               flags.from, flags.to);
    }
    return failed ? kExitFailed : kExitOk;
  });
}

int RunVolumes(const MaintenanceFlags& flags, CliContext& context) {
  return WithMaintenance(flags, context, [&](v1::Maintenance::Stub& stub, grpc::ClientContext& rpc) {
    v1::VolumesResponse response;
    grpc::Status status = stub.Volumes(&rpc, v1::VolumesRequest(), &response);
    if (!status.ok()) return RpcFailed(status);
    if (flags.json) {
      std::cout << ToJson(response);
      return kExitOk;
    }
    TextTable table({"VOLUME", "PATH", "ROLE", "FREE", "CAPACITY"});
    for (const v1::MountedVolume& volume : response.volumes()) {
      table.AddRow({volume.volume_id(), volume.path(), volume.serving() ? "cache" : "extra",
                    FormatBytes(volume.space().free_bytes()),
                    FormatBytes(volume.space().capacity_bytes())});
    }
    std::cout << table.Render();
    return kExitOk;
  });
}

void CommonFlags(CLI::App& command, MaintenanceFlags& flags) {
  command.add_option("--socket", flags.socket, "Agent socket (default $MODELCACHE_SOCKET)");
  command.add_flag("--json", flags.json, "Print JSON instead of a table");
}

}  // namespace

void AddMaintenanceCommands(CLI::App& app, CliContext& context) {
  auto flags = std::make_shared<MaintenanceFlags>();

  CLI::App* volumes = app.add_subcommand("volumes", "Cache volumes this node's agent mounts, with their ids");
  CommonFlags(*volumes, *flags);
  volumes->callback([flags, &context] { context.exit_code = RunVolumes(*flags, context); });

  CLI::App* cleanup = app.add_subcommand(
      "cleanup",
      "List what is on a cache volume (models, staging, trash, quarantine, unknown) and remove "
      "what is asked, reporting df before and after");
  CommonFlags(*cleanup, *flags);
  cleanup->add_option("--volume", flags->volume, "Volume id (see `modelcachectl volumes`)")->required();
  cleanup->add_flag("--dry-run", flags->dry_run, "Only show what would be removed");
  cleanup->add_flag("--force", flags->force, "Also remove models with a live lease");
  cleanup->add_option("--models", flags->models, "Models to remove: NAME or NAME@VERSION")
      ->delimiter(',');
  cleanup->add_flag("--all-models", flags->all_models, "Remove every model");
  cleanup->add_flag("--staging", flags->staging,
                    "Remove abandoned fills (staging not modified for --staging-older-than, 10m)");
  CLI::Option* staging_age = cleanup->add_option(
      "--staging-older-than", flags->staging_older_than,
      "Age of an abandoned staging folder (implies --staging), e.g. 1h; 0s: every one");
  cleanup->add_flag("--trash", flags->trash, "Empty trash/");
  cleanup->add_flag("--quarantine", flags->quarantine, "Remove quarantined models");
  cleanup->add_flag("--unknown", flags->unknown, "Remove folders that are not the cache's");
  cleanup->callback([flags, staging_age, &context] {
    context.exit_code = RunCleanup(*flags, staging_age->count() > 0, context);
  });

  CLI::App* verify = app.add_subcommand(
      "verify", "Re-hash cached models against their manifests; damaged ones go to quarantine "
                "(exit 1 when one is damaged)");
  CommonFlags(*verify, *flags);
  verify->add_option("model", flags->model, "NAME or NAME@VERSION (default: every model)");
  verify->add_flag("--no-quarantine", flags->no_quarantine, "Report only; leave damaged models");
  verify->callback([flags, &context] { context.exit_code = RunVerify(*flags, context); });

  CLI::App* repair = app.add_subcommand(
      "repair", "Re-fetch only the bad files of a damaged (or quarantined) model and republish it");
  CommonFlags(*repair, *flags);
  repair->add_option("model", flags->model, "NAME@VERSION")->required();
  repair->callback([flags, &context] { context.exit_code = RunRepair(*flags, context); });

  CLI::App* migrate = app.add_subcommand(
      "migrate", "Copy published models from one volume to another through an agent that mounts both");
  CommonFlags(*migrate, *flags);
  migrate->add_option("--from", flags->from, "Source volume id")->required();
  migrate->add_option("--to", flags->to, "Target volume id")->required();
  migrate->add_option("--models", flags->models, "NAME or NAME@VERSION (default: every model)")
      ->delimiter(',');
  migrate->add_option("--parallelism", flags->parallelism, "Copy threads (default: the agent's)");
  migrate->callback([flags, &context] { context.exit_code = RunMigrate(*flags, context); });
}

}  // namespace modelcache::cli
