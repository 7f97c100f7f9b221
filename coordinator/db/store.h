#pragma once
// The coordinator's state, persisted in SQLite: registry (models, versions, caching, pins,
// deletion, sources), volumes and agents, what each agent reported per volume, in-use leases,
// commands and the audit log (purges, source changes). Every method is thread-safe (one
// connection behind a mutex) and each mutation is one transaction (WithTransaction,
// sqlite.h), so a crash or restart loses nothing that was acknowledged. Time is the
// coordinator's Clock; the database keeps Unix milliseconds.
//
// Longer than a header should be, on purpose: this is the whole contract of the database,
// one class because every section shares the one connection, its lock and the registry's
// helpers. Each "----" section below is implemented in a file of its own: store_agents.cc,
// store_registry.cc (with registry_sources.cc), store_views.cc, store_leases.cc,
// store_commands.cc; store.cc opens, migrates and answers the health checks.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/db/sqlite.h"
#include "coordinator/policy/purge_plan.h"
#include "coordinator/policy/source_rules.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

// The newest schema; migrations 1..kSchemaVersion are applied in order at Open.
inline constexpr int kSchemaVersion = 5;

struct StoredCommand {
  v1::Command command;  // id set
  std::string volume_id;
  std::string state;    // "pending", "sent", "done", "failed"
  std::string node_name;
  std::string result_message;
  int result_code = 0;
};

// One agent's usage report, for ApplyUsageBatch. Borrows its strings and report.
struct UsageUpdate {
  std::string_view node_name;
  std::string_view volume_id;
  const v1::UsageReport* report = nullptr;
};

// One line of the audit log: a purge an agent carried out, or a change of a registry source.
struct AuditEntry {
  int64_t at_unix_ms = 0;
  std::string volume_id;
  std::string name;
  std::string version;
  std::string reason;
  uint64_t bytes_freed = 0;
  std::string node_name;
  std::string command_id;
  std::string kind = "purge";  // "purge", "source", "source-prefix"
  std::string principal;       // who changed the registry; empty for a purge
};

class CoordinatorStore {
 public:
  // Opens or creates the database and migrates it. `default_caching` applies to models the
  // registry learns from agents' reports.
  static absl::StatusOr<std::unique_ptr<CoordinatorStore>> Open(const std::string& path,
                                                                bool default_caching);

  // Start-up after a restart: no agent is connected, commands sent but unanswered go back to
  // pending (the agent deduplicates ids, so re-sending never runs a command twice).
  absl::Status ResetConnections();

  // ---- agents
  // Records the node, its volume and its extra volumes; drops its reports of any other volume.
  absl::Status RecordHello(const v1::AgentHello& hello, Clock::TimePoint now);
  absl::Status RecordDisconnect(std::string_view node_name, Clock::TimePoint now);
  // `volume_id` is the node's volume or one of its extra volumes (the caller checks which). A
  // full report replaces what the node reported before for that volume; a delta upserts and
  // removes.
  // Models the registry does not know are added with the default caching setting.
  absl::Status ApplyUsage(std::string_view node_name, std::string_view volume_id,
                          const v1::UsageReport& report, Clock::TimePoint now);
  // Several reports (of any nodes) in one transaction, applied in order: all or none. The
  // coordinator's stream worker stores what many agents sent meanwhile in one commit.
  absl::Status ApplyUsageBatch(std::span<const UsageUpdate> updates, Clock::TimePoint now);

  // ---- registry
  absl::StatusOr<v1::ModelInfo> SetCaching(std::string_view name, std::string_view version,
                                           bool enabled, Clock::TimePoint now);
  absl::StatusOr<v1::ModelInfo> SetPin(std::string_view name, std::string_view version,
                                       bool pinned, Clock::TimePoint now);
  // Marks the model deleted and its caching disabled. NOT_FOUND if unknown.
  absl::Status MarkDeleted(std::string_view name, Clock::TimePoint now);
  // NOT_FOUND if the registry has never seen the model.
  absl::StatusOr<v1::ModelInfo> GetModel(std::string_view name, Clock::TimePoint now);
  absl::StatusOr<std::vector<v1::ModelInfo>> ListModels(Clock::TimePoint now);
  // The caching rules and every registered source (what agents enforce).
  absl::StatusOr<v1::CachingPolicy> CachingPolicy();

  // ---- registry sources (the SQL is in coordinator/db/registry_sources.cc)
  // Registers or changes name@version's source (normalized by the caller) as
  // DecideSourceChange (coordinator/policy/source_rules.h) allows, with its audit entry (kind
  // "source", by `principal`), in one transaction; creates the registry entries. No change and
  // no audit entry when the source is the registered one already.
  absl::StatusOr<v1::ModelInfo> SetSource(std::string_view name, std::string_view version,
                                          std::string_view source, SourceChange change,
                                          std::string_view principal, Clock::TimePoint now);
  // Sets or (empty) clears the model's source prefix (normalized by the caller), audited
  // (kind "source-prefix") when it changes; creates the model entry.
  absl::StatusOr<v1::ModelInfo> SetSourcePrefix(std::string_view name, std::string_view prefix,
                                                std::string_view principal, Clock::TimePoint now);
  // The version's registered source and its model's prefix (none for unknown entries).
  absl::StatusOr<SourceEntry> GetSourceEntry(std::string_view name, std::string_view version);

  // ---- views
  absl::StatusOr<v1::UsageResponse> Usage(uint64_t default_quota_bytes);
  absl::StatusOr<v1::NodesResponse> Nodes();
  // Everything the purge policy needs.
  absl::StatusOr<Snapshot> LoadSnapshot();

  // ---- in-use leases (the AcquireLease/RenewLease/ReleaseLease RPCs)
  // renew_only: NOT_FOUND unless a lease for the same key is still live at `now`.
  absl::StatusOr<v1::Lease> PutInUseLease(const v1::LeaseRequest& request, Clock::TimePoint now,
                                     bool renew_only);
  absl::StatusOr<v1::Lease> ReleaseInUseLease(const v1::LeaseRequest& request);

  // ---- commands
  // Stores a new pending command for the volume and returns it with its id.
  absl::StatusOr<v1::Command> EnqueueCommand(std::string_view volume_id, v1::Command command,
                                             Clock::TimePoint now);
  // True when a purge of this copy is pending or sent.
  absl::StatusOr<bool> HasOpenPurge(std::string_view volume_id, std::string_view name,
                                    std::string_view version);
  // Atomically hands every pending command of the volume to `node_name` (state sent).
  absl::StatusOr<std::vector<v1::Command>> ClaimPending(std::string_view volume_id,
                                                        std::string_view node_name,
                                                        Clock::TimePoint now);
  // Records an agent's answer. A purge that succeeded removes the copy's reports and writes
  // the audit log. Answers for unknown or already finished commands are ignored (OK).
  absl::Status RecordResult(std::string_view node_name, const v1::CommandResult& result,
                            Clock::TimePoint now);
  absl::StatusOr<std::optional<StoredCommand>> GetCommand(std::string_view id);
  // The newest `limit` audit entries, newest first; only model `name` and only `kind` unless
  // empty.
  absl::StatusOr<std::vector<AuditEntry>> Audit(size_t limit, std::string_view name = {},
                                                std::string_view kind = {});

  // ---- health and metrics
  // A trivial query: OK while the database answers.
  absl::Status Ping();
  struct Gauges {
    uint64_t volumes = 0;
    std::map<std::string, uint64_t> models_per_volume;  // READY copies, every known volume
    uint64_t purges_outstanding = 0;                    // purge commands pending or sent
    uint64_t purges_failed = 0;                         // purge commands answered with an error
  };
  absl::StatusOr<Gauges> ReadGauges();
  // Failed SQLite statements since Open (lock-free).
  uint64_t SqliteErrors() const { return db_->Errors(); }

 private:
  CoordinatorStore(std::unique_ptr<Database> db, bool default_caching)
      : db_(std::move(db)), default_caching_(default_caching) {}
  absl::Status EnsureModel(std::string_view name, int64_t now_ms);
  absl::Status EnsureVersion(std::string_view name, std::string_view version, int64_t now_ms);
  absl::StatusOr<v1::ModelInfo> GetModelLocked(std::string_view name, int64_t now_ms);
  // `ensured` gets the versions it added to the registry (keys of known_versions_).
  absl::Status ApplyUsageLocked(std::string_view node_name, std::string_view volume_id,
                                const v1::UsageReport& report, int64_t now_ms,
                                std::vector<std::string>& ensured);

  std::mutex mutex_;  // guards db_ (one connection, serialised)
  std::unique_ptr<Database> db_;
  const bool default_caching_;
  // "name\0version" of versions committed to the registry, so reports skip re-inserting them.
  std::unordered_set<std::string> known_versions_;
};

// Applies the numbered migrations up to `target` to `db` (exposed for the migration tests,
// which build an older schema with a smaller target).
absl::Status MigrateSchema(Database& db, int target = kSchemaVersion);

}  // namespace modelcache
