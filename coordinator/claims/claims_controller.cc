#include "coordinator/claims/claims_controller.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>

#include "common/log_fields.h"
#include "common/status_annotate.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "coordinator/claims/claims_metrics.h"
#include "coordinator/claims/volume_copy.h"
#include "kube/informer.h"
#include "kube/kube_client.h"
#include "kube/kube_errors.h"
#include "kube/request_log.h"
#include "modelcache/v1/coordinator.pb.h"
#include "spdlog/spdlog.h"

namespace modelcache::claims {
namespace {

using nlohmann::json;
using SteadyTime = std::chrono::steady_clock::time_point;

// Failed requests are retried after 1 s, doubling up to 30 s; a clean pass resets it.
constexpr std::chrono::milliseconds kFirstRetry{1000};
constexpr std::chrono::milliseconds kMaxRetry{30'000};
// Events come in bursts (one write makes several); a pass waits this long for the rest.
constexpr std::chrono::milliseconds kSettle{100};

std::string ErrorReason(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kPermissionDenied: return "forbidden";
    case absl::StatusCode::kUnauthenticated: return "unauthenticated";
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists: return "conflict";
    case absl::StatusCode::kInvalidArgument: return "invalid";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return "unavailable";
    default: return "other";
  }
}

}  // namespace

struct ClaimsController::Impl {
  // Wakes the reconciler on any change; remembers list/watch trouble for the view.
  class Handler final : public kube::InformerHandler {
   public:
    Handler(Impl& impl, std::string what) : impl_(impl), what_(std::move(what)) {}
    void OnAdded(const json&) override { impl_.Wake(); }
    void OnModified(const json&, const json&) override { impl_.Wake(); }
    void OnDeleted(const json&) override { impl_.Wake(); }
    void OnSynced() override { impl_.Synced(what_); }
    void OnTrouble(const absl::Status& error, std::chrono::milliseconds) override { impl_.Trouble(what_, error); }

   private:
    Impl& impl_;
    const std::string what_;
  };

  Impl(const KubernetesConfig& config, const StorageConfig& storage, const Clock& clock,
       prometheus::Registry& registry)
      : config_(config), clock_(clock), metrics_(registry) {
    settings_.source_namespace = config.source_namespace;
    settings_.claim_name = SourceClaimName(config.release, storage.pvc_name_suffix);
    settings_.bypass_storage_check = storage.bypass_storage_check;
    settings_.namespace_idle_after = config.namespace_idle_after;
  }

  void Start() {
    namespaces_ = std::make_unique<kube::Informer>(*client_, kube::Namespaces(), kube::InformerOptions{},
                                                   namespace_handler_, informer_clock_);
    volumes_ = std::make_unique<kube::Informer>(*client_, kube::PersistentVolumes(), kube::InformerOptions{},
                                                volume_handler_, informer_clock_);
    claims_ = std::make_unique<kube::Informer>(*client_, kube::PersistentVolumeClaims(), kube::InformerOptions{},
                                               claim_handler_, informer_clock_);
    started_ = clock_.Now();
    spdlog::info("cache claims reconciler starting {}",
                 LogFields()
                     .Add("api_server", client_->config().server)
                     .Add("origin", client_->config().origin)
                     .Add("source", settings_.source_namespace + "/" + settings_.claim_name));
    thread_ = std::thread([this] { Run(); });
    namespaces_->Start();
    volumes_->Start();
    claims_->Start();
  }

  void Stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_all();
    if (namespaces_) namespaces_->Stop();
    if (volumes_) volumes_->Stop();
    if (claims_) claims_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  void Wake() {
    {
      std::lock_guard lock(mutex_);
      dirty_ = true;
    }
    wake_.notify_all();
  }

  void Synced(const std::string& what) {
    {
      std::lock_guard lock(mutex_);
      troubles_.erase(what);
    }
    Wake();
  }

  void Trouble(const std::string& what, const absl::Status& error) {
    std::lock_guard lock(mutex_);
    troubles_[what] = fmt::format("listing or watching {} failed (retried): {}", what, std::string(error.message()));
  }

  absl::Status NamespaceAsked(std::string_view namespace_name, Clock::TimePoint at) {
    RETURN_IF_ERROR(ValidateNamespaceName(namespace_name));
    {
      std::lock_guard lock(mutex_);
      Clock::TimePoint& last = asks_[std::string(namespace_name)];
      last = std::max(last, at);
    }
    Wake();
    return absl::OkStatus();
  }

  ClaimsView View() const {
    std::lock_guard lock(mutex_);
    ClaimsView view = view_;
    for (const auto& [what, problem] : troubles_) {
      view.api_problem += (view.api_problem.empty() ? "" : "; ") + problem;
    }
    return view;
  }

  // ---- the reconciler's thread

  void Run() {
    std::unique_lock lock(mutex_);
    SteadyTime next = std::chrono::steady_clock::now() + config_.resync_every;
    while (!stopping_) {
      wake_.wait_until(lock, next, [this] { return stopping_ || dirty_; });
      if (stopping_) break;
      // Let a burst of events land, so one pass sees them all.
      wake_.wait_for(lock, kSettle, [this] { return stopping_; });
      if (stopping_) break;
      dirty_ = false;
      if (!namespaces_->Synced() || !volumes_->Synced() || !claims_->Synced()) {
        next = std::chrono::steady_clock::now() + config_.resync_every;  // OnSynced wakes us
        continue;
      }
      lock.unlock();
      std::optional<std::chrono::milliseconds> delay = Pass();
      lock.lock();
      next = std::chrono::steady_clock::now() + delay.value_or(config_.resync_every);
    }
  }

  // What carrying a plan's actions out came to: errors by reason (for the metrics), whether a
  // pass should come soon, and each namespace's failed requests.
  struct ActionsOutcome {
    std::map<std::string, int> errors;
    bool retry = false;
    std::map<std::string, std::vector<std::string>> problems;
  };

  // The plan's requests in order; a volume copy waits for its claim (and gets its uid), and a
  // request that finds its object changed meanwhile is left to the next pass.
  ActionsOutcome ExecuteActions(ClaimsPlan& plan) {
    ActionsOutcome outcome;
    std::map<std::string, std::string> created_claims;  // namespace -> uid, this pass
    std::set<std::string> failed_claims;                // namespaces whose claim create failed
    for (ClaimsAction& action : plan.actions) {
      if (Stopping()) break;  // a shutdown waits for one request at most, not for the whole pass
      if (action.kind == ActionKind::kCreateVolume) {
        if (failed_claims.contains(action.namespace_name)) continue;
        if (auto uid = created_claims.find(action.namespace_name); uid != created_claims.end()) {
          action.object["spec"]["claimRef"]["uid"] = uid->second;
        }
      }
      absl::StatusOr<json> result = Execute(action);
      if (result.ok()) {
        if (action.kind == ActionKind::kCreateClaim) {
          created_claims[action.namespace_name] = (*result)["metadata"].value("uid", "");
        }
        spdlog::info("cache claim {} {}", ActionName(action.kind),
                     LogFields()
                         .Add("namespace", action.namespace_name)
                         .Add("name", action.name)
                         .Add("why", action.why));
        continue;
      }
      if (action.kind == ActionKind::kCreateClaim) failed_claims.insert(action.namespace_name);
      const absl::Status& error = result.status();
      if (absl::IsNotFound(error) &&
          (action.kind == ActionKind::kDeleteClaim || action.kind == ActionKind::kDeleteVolume)) {
        continue;  // gone already
      }
      outcome.retry = true;
      outcome.errors[ErrorReason(error)]++;
      if (absl::IsAborted(error) || absl::IsAlreadyExists(error) || absl::IsNotFound(error)) {
        // Another writer (a second coordinator, a person) got there first, or deleted what a
        // patch was for: look again.
        spdlog::info("cache claim changed meanwhile {}", LogFields()
                                                             .Add("action", ActionName(action.kind))
                                                             .Add("namespace", action.namespace_name)
                                                             .Add("name", action.name)
                                                             .Add("detail", error));
        continue;
      }
      outcome.problems[action.namespace_name].push_back(
          fmt::format("{} \"{}\" failed: {}", ActionName(action.kind), action.name, std::string(error.message())));
      spdlog::error("cache claim request failed {}",
                    LogFields()
                        .Add("action", ActionName(action.kind))
                        .Add("namespace", action.namespace_name)
                        .Add("name", action.name)
                        .Add("error", error)
                        .Add("next", fmt::format("retried in {} ms", NextRetry().count())));
    }
    return outcome;
  }

  // One pass; returns when the next one is due (nullopt: after resyncEvery).
  std::optional<std::chrono::milliseconds> Pass() {
    ClusterState cluster{.namespaces = namespaces_->List(), .volumes = volumes_->List(), .claims = claims_->List()};
    {
      std::lock_guard lock(mutex_);
      if (passes_ == 0) KeepCopiesFoundAtStart(cluster);
      cluster.asks = asks_;
    }
    const Clock::TimePoint now = clock_.Now();
    ClaimsPlan plan = PlanClaims(cluster, settings_, now);
    LogSourceChange(plan.source);
    LogNamespaceProblems(plan);

    ActionsOutcome outcome = ExecuteActions(plan);
    for (NamespaceStatus& status : plan.namespaces) {
      auto found = outcome.problems.find(status.namespace_name);
      if (found == outcome.problems.end() || !status.current) continue;
      status.problems.insert(status.problems.end(), found->second.begin(), found->second.end());
    }
    metrics_.ObservePass(plan, outcome.errors, ToUnixMillis(now) / 1000);

    std::optional<std::chrono::milliseconds> delay;
    {
      std::lock_guard lock(mutex_);
      ++passes_;
      view_.source = plan.source;
      view_.namespaces = plan.namespaces;
      view_.last_pass_unix_ms = ToUnixMillis(now);
      view_.passes = passes_;
      if (outcome.retry) {
        delay = retry_delay_;
        retry_delay_ = std::min(retry_delay_ * 2, kMaxRetry);
      } else {
        retry_delay_ = kFirstRetry;
      }
    }
    if (plan.next_expiry) {
      auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*plan.next_expiry - clock_.Now()) +
                   std::chrono::milliseconds(1);
      until = std::max(until, std::chrono::milliseconds(1));
      if (!delay || until < *delay) delay = until;
    }
    return delay;
  }

  bool Stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  std::chrono::milliseconds NextRetry() {
    std::lock_guard lock(mutex_);
    return retry_delay_;
  }

  absl::StatusOr<json> Execute(const ClaimsAction& action) {
    switch (action.kind) {
      case ActionKind::kCreateClaim:
        return client_->Create(kube::PersistentVolumeClaims(), action.object);
      case ActionKind::kCreateVolume:
        return client_->Create(kube::PersistentVolumes(), action.object);
      case ActionKind::kPatchClaim:
        return client_->MergePatch(kube::PersistentVolumeClaims(), action.namespace_name, action.name, action.object);
      case ActionKind::kPatchVolume:
        return client_->MergePatch(kube::PersistentVolumes(), "", action.name, action.object);
      case ActionKind::kDeleteClaim:
        return client_->Delete(kube::PersistentVolumeClaims(), action.namespace_name, action.name,
                               action.preconditions);
      case ActionKind::kDeleteVolume:
        return client_->Delete(kube::PersistentVolumes(), "", action.name, action.preconditions);
    }
    return absl::InternalError("unknown action");
  }

  // After a restart the asks are gone (they live in memory): a copy found in a namespace
  // without the label that was made because a pod asked gets a full idle period from now. One
  // made for the label is not kept: its label went while this coordinator was not looking (or
  // another coordinator of a rollout made it), and keeping it would fight the coordinator that
  // deletes it. Copies from before the annotation count as asked.
  void KeepCopiesFoundAtStart(const ClusterState& cluster) {
    std::set<std::string> labelled;
    for (const json& ns : cluster.namespaces) {
      const json& labels = ns["metadata"].value("labels", json::object());
      if (labels.value(kNamespaceLabel, "") == kNamespaceLabelValue) labelled.insert(ns["metadata"].value("name", ""));
    }
    for (const json& claim : cluster.claims) {
      const std::string ns = claim["metadata"].value("namespace", "");
      if (!IsOurs(claim) || ns == settings_.source_namespace || labelled.contains(ns) || asks_.contains(ns)) continue;
      const json& annotations = claim["metadata"].value("annotations", json::object());
      if (annotations.value(kMadeForAnnotation, "") == "label") continue;
      asks_[ns] = started_;
      spdlog::info("cache claim copy found at start {}",
                   LogFields().Add("namespace", ns).Add("next", "kept for kubernetes.namespaceIdleAfter unless a pod asks"));
    }
  }

  void LogSourceChange(const SourceStatus& source) {
    const std::string key = source.reason + "|" + source.problem + "|" + source.volume;
    if (key == logged_source_) return;
    logged_source_ = key;
    if (!source.reason.empty()) {
      LogFields fields;
      fields.Add("claim", source.claim).Add("reason", source.reason);
      if (!source.volume.empty()) fields.Add("volume", source.volume);
      if (!source.storage.empty()) fields.Add("type", source.storage);
      if (source.reason == "storage_refused") fields.Add("key", "modelsCacheStorage.bypassStorageCheck");
      spdlog::error("cache claim source unusable {}",
                    fields.Add("error", source.problem)
                        .Add("next", "no copies are made or repaired until it is fixed; existing ones are kept"));
    } else if (source.bypassed) {
      spdlog::warn("cache claim storage check bypassed {}",
                   LogFields()
                       .Add("claim", source.claim)
                       .Add("volume", source.volume)
                       .Add("type", source.storage)
                       .Add("key", "modelsCacheStorage.bypassStorageCheck")
                       .Add("error", source.problem)
                       .Add("next", "copied anyway, as modelsCacheStorage.bypassStorageCheck is true"));
    } else {
      spdlog::info("cache claim source ready {}", LogFields()
                                                      .Add("claim", source.claim)
                                                      .Add("volume", source.volume)
                                                      .Add("type", source.storage));
    }
  }

  // A WARN when a namespace's problem appears (not at every pass).
  void LogNamespaceProblems(const ClaimsPlan& plan) {
    std::set<std::string> now;
    for (const NamespaceStatus& status : plan.namespaces) {
      for (const std::string& problem : status.problems) {
        if (plan.source.bypassed && problem == plan.source.problem) continue;
        if (problem.starts_with("no copy made or repaired")) continue;  // the source's ERROR says it
        const std::string key = status.namespace_name + "|" + problem;
        now.insert(key);
        if (logged_problems_.contains(key)) continue;
        spdlog::warn("cache claim problem {}", LogFields()
                                                   .Add("namespace", status.namespace_name)
                                                   .Add("claim", status.claim)
                                                   .Add("error", problem)
                                                   .Add("next", "listed by modelcachectl namespaces until it is fixed"));
      }
    }
    logged_problems_ = std::move(now);
  }

  const KubernetesConfig config_;
  const Clock& clock_;
  SystemClock informer_clock_;  // the informers measure watch health in real time
  ClaimsSettings settings_;
  ClaimsMetrics metrics_;
  kube::RequestLog request_log_;
  std::unique_ptr<kube::KubeClient> client_;
  Handler namespace_handler_{*this, "namespaces"};
  Handler volume_handler_{*this, "persistentvolumes"};
  Handler claim_handler_{*this, "persistentvolumeclaims"};
  std::unique_ptr<kube::Informer> namespaces_;
  std::unique_ptr<kube::Informer> volumes_;
  std::unique_ptr<kube::Informer> claims_;
  Clock::TimePoint started_;
  std::thread thread_;

  // The reconciler thread's own.
  std::string logged_source_;
  std::set<std::string> logged_problems_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  bool stopping_ = false;
  bool dirty_ = false;
  std::map<std::string, Clock::TimePoint> asks_;
  std::map<std::string, std::string> troubles_;  // informer -> its last failure
  ClaimsView view_;
  int64_t passes_ = 0;
  std::chrono::milliseconds retry_delay_ = kFirstRetry;
};

ClaimsController::ClaimsController(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClaimsController::~ClaimsController() { Stop(); }

absl::StatusOr<std::unique_ptr<ClaimsController>> ClaimsController::Create(const KubernetesConfig& config,
                                                                           const StorageConfig& storage,
                                                                           const Clock& clock,
                                                                           prometheus::Registry& registry) {
  absl::StatusOr<kube::KubeConfig> kube_config =
      kube::LoadKubeConfig({.kubeconfig = config.kubeconfig}, config.environment);
  if (!kube_config.ok()) {
    return Annotate(kube_config.status(), "kubernetes");
  }
  auto impl = std::make_unique<Impl>(config, storage, clock, registry);
  kube::KubeClientOptions options;
  if (!config.request_log.empty()) {
    RETURN_IF_ERROR(impl->request_log_.Open(config.request_log));
    options.on_request = [log = &impl->request_log_](const kube::RequestRecord& record) { log->Write(record); };
  }
  ASSIGN_OR_RETURN(impl->client_, kube::KubeClient::Create(*std::move(kube_config), std::move(options)));
  return std::unique_ptr<ClaimsController>(new ClaimsController(std::move(impl)));
}

void ClaimsController::Start() { impl_->Start(); }
void ClaimsController::Stop() { impl_->Stop(); }
absl::Status ClaimsController::NamespaceAsked(std::string_view namespace_name, Clock::TimePoint at) {
  return impl_->NamespaceAsked(namespace_name, at);
}
void ClaimsController::Trigger() { impl_->Wake(); }
ClaimsView ClaimsController::View() const { return impl_->View(); }

void FillNamespacesResponse(const ClaimsView& view, v1::NamespacesResponse* response) {
  response->set_enabled(true);
  response->set_source_claim(view.source.claim);
  response->set_source_volume(view.source.volume);
  response->set_storage(view.source.storage);
  response->set_source_healthy(view.source.healthy);
  if (!view.source.problem.empty()) response->add_problems(view.source.problem);
  if (!view.api_problem.empty()) response->add_problems(view.api_problem);
  if (view.passes == 0 && view.api_problem.empty()) {
    response->add_problems("no reconcile pass yet: waiting for the first complete list from the API server");
  }
  response->set_last_reconcile_unix_ms(view.last_pass_unix_ms);
  for (const NamespaceStatus& status : view.namespaces) {
    v1::CacheNamespace* out = response->add_namespaces();
    out->set_namespace_(status.namespace_name);
    out->set_claim(status.claim);
    out->set_volume(status.volume);
    out->set_phase(status.phase);
    out->set_current(status.current);
    for (const std::string& reason : status.reasons) out->add_reasons(reason);
    for (const std::string& problem : status.problems) out->add_problems(problem);
  }
}

}  // namespace modelcache::claims
