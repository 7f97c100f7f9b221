#include "agent/pod_leases/pod_lease_follower.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "agent/pod_leases/pod_lease_wants.h"
#include "common/log_fields.h"
#include "common/pod_annotations.h"
#include "common/status_annotate.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "kube/informer.h"
#include "kube/kube_client.h"
#include "kube/request_log.h"
#include "spdlog/spdlog.h"

namespace modelcache::pod_leases {

struct PodLeaseFollower::Impl final : public kube::InformerHandler {
  Impl(PodLeaseFollowerOptions options, PodLeaseTable& leases, const Clock& clock)
      : options_(std::move(options)), leases_(leases), clock_(clock) {}

  void OnAdded(const nlohmann::json& pod) override { Follow(pod); }
  void OnModified(const nlohmann::json&, const nlohmann::json& pod) override { Follow(pod); }
  void OnDeleted(const nlohmann::json& last_known) override {
    PodLeases gone = LeasesOf(last_known);
    gone.wants.clear();
    Apply(gone, "pod gone");
  }
  void OnSynced() override {
    std::lock_guard lock(mutex_);
    if (unreachable_) {
      spdlog::info("pod leases resynced {}", LogFields().Add("node", options_.node_name).Add("pods", held_.size()));
    }
    unreachable_ = false;
  }
  void OnTrouble(const absl::Status&, std::chrono::milliseconds retry_in) override {
    // The informer logged the failure; say once per outage what it means for the leases.
    std::lock_guard lock(mutex_);
    if (unreachable_) return;
    unreachable_ = true;
    spdlog::info("pod leases kept while the API server does not answer {}",
                 LogFields()
                     .Add("node", options_.node_name)
                     .Add("pods", held_.size())
                     .Add("retry_in_ms", static_cast<int64_t>(retry_in.count())));
  }

  void Follow(const nlohmann::json& pod) {
    PodLeases wanted = LeasesOf(pod);
    Apply(wanted, wanted.skipped);
  }

  // Makes the table hold exactly `wanted.wants` for the pod `wanted.uid`.
  void Apply(const PodLeases& wanted, const std::string& why) {
    if (wanted.uid.empty()) return;
    bool changed = false;
    {
      std::lock_guard lock(mutex_);
      auto found = held_.find(wanted.uid);
      std::set<PodLeaseWant> before = found == held_.end() ? std::set<PodLeaseWant>() : found->second.wants;
      std::set<PodLeaseWant> after(wanted.wants.begin(), wanted.wants.end());
      for (const PodLeaseWant& model : before) {
        if (after.count(model) > 0) continue;
        leases_.Release(model.name, model.version, found->second.holder);
        changed = true;
        spdlog::info("pod lease ended {}", LogFields()
                                               .Add("model", model.name + "@" + model.version)
                                               .Add("holder", found->second.holder)
                                               .Add("reason", why.empty() ? "annotations changed" : why));
      }
      for (const PodLeaseWant& model : after) {
        if (before.count(model) > 0) continue;
        leases_.HoldUntilReleased(model.name, model.version, wanted.holder);
        changed = true;
        spdlog::info("pod lease taken {}",
                     LogFields().Add("model", model.name + "@" + model.version).Add("holder", wanted.holder));
      }
      if (after.empty()) {
        held_.erase(wanted.uid);
      } else {
        held_[wanted.uid] = Held{wanted.holder, std::move(after)};
      }
    }
    if (changed && options_.on_leases_changed) options_.on_leases_changed();
  }

  struct Held {
    std::string holder;
    std::set<PodLeaseWant> wants;
  };

  const PodLeaseFollowerOptions options_;
  PodLeaseTable& leases_;
  const Clock& clock_;
  kube::RequestLog request_log_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<kube::Informer> informer_;

  mutable std::mutex mutex_;       // guards held_ and unreachable_
  std::map<std::string, Held> held_;  // by pod uid
  bool unreachable_ = false;
};

PodLeaseFollower::PodLeaseFollower(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PodLeaseFollower::~PodLeaseFollower() { Stop(); }

absl::StatusOr<std::unique_ptr<PodLeaseFollower>> PodLeaseFollower::Create(const PodLeasesConfig& config,
                                                                           PodLeaseFollowerOptions options,
                                                                           PodLeaseTable& leases, const Clock& clock) {
  if (options.node_name.empty()) {
    return absl::InvalidArgumentError("kubernetes.podLeases: the agent's nodeName is empty (set nodeName or --node-name)");
  }
  absl::StatusOr<kube::KubeConfig> kube_config =
      kube::LoadKubeConfig({.kubeconfig = config.kubeconfig}, config.environment);
  if (!kube_config.ok()) {
    return Annotate(kube_config.status(), "kubernetes");
  }
  auto impl = std::make_unique<Impl>(std::move(options), leases, clock);
  kube::KubeClientOptions client_options;
  client_options.field_manager = "modelcache-agent";
  client_options.user_agent = "modelcache-agent";
  if (!config.request_log.empty()) {
    RETURN_IF_ERROR(impl->request_log_.Open(config.request_log));
    client_options.on_request = [log = &impl->request_log_](const kube::RequestRecord& record) { log->Write(record); };
  }
  ASSIGN_OR_RETURN(impl->client_, kube::KubeClient::Create(*std::move(kube_config), std::move(client_options)));
  kube::InformerOptions informer;
  informer.label_selector = fmt::format("{}={}", kInjectLabel, kInjectLabelValue);
  informer.field_selector = "spec.nodeName=" + impl->options_.node_name;
  informer.backoff = impl->options_.backoff;
  impl->informer_ = std::make_unique<kube::Informer>(*impl->client_, kube::Pods(), std::move(informer), *impl, clock);
  return std::unique_ptr<PodLeaseFollower>(new PodLeaseFollower(std::move(impl)));
}

void PodLeaseFollower::Start() {
  spdlog::info("following the pods of this node {}",
               LogFields().Add("node", impl_->options_.node_name).Add("api_server", impl_->client_->config().origin));
  impl_->informer_->Start();
}

void PodLeaseFollower::Stop() {
  if (impl_ && impl_->informer_) impl_->informer_->Stop();
}

bool PodLeaseFollower::Synced() const { return impl_->informer_->Synced(); }

size_t PodLeaseFollower::PodsHolding() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->held_.size();
}

}  // namespace modelcache::pod_leases
