#include "coordinator/webhook/certificate_keeper.h"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "common/log_fields.h"
#include "common/status_macros.h"
#include "coordinator/webhook/certificate_plan.h"
#include "kube/resource.h"
#include "spdlog/fmt/fmt.h"
#include "spdlog/spdlog.h"

namespace modelcache::webhook {
namespace {

using nlohmann::json;

constexpr char kSecretType[] = "kubernetes.io/tls";
constexpr std::chrono::seconds kFirstRetry{1};
constexpr std::chrono::seconds kLastRetry{60};

// The Secret's data keys (certificate_plan.h).
struct DataKey {
  const char* name;
  std::string StoredCertificates::*field;
};
constexpr DataKey kDataKeys[] = {{"tls.crt", &StoredCertificates::certificate},
                                 {"tls.key", &StoredCertificates::key},
                                 {"ca.crt", &StoredCertificates::ca_certificate},
                                 {"ca.key", &StoredCertificates::ca_key},
                                 {"ca-previous.crt", &StoredCertificates::previous_ca}};

const char* ActionName(CertificateAction action) {
  switch (action) {
    case CertificateAction::kKeep: return "keep";
    case CertificateAction::kNewServing: return "new serving certificate";
    case CertificateAction::kNewAuthority: return "new CA and serving certificate";
  }
  return "unknown";
}

std::string Text(const json& object, std::initializer_list<const char*> path) {
  const json* node = &object;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return "";
    node = &(*node)[key];
  }
  return node->is_string() ? node->get<std::string>() : "";
}

// The data of a Secret as read; a value that is not base64 reads as "" (and fails the plan).
StoredCertificates Decode(const json& secret) {
  StoredCertificates stored;
  const json data = secret.contains("data") && secret["data"].is_object() ? secret["data"] : json::object();
  for (const DataKey& key : kDataKeys) {
    std::string decoded;
    if (data.contains(key.name) && data[key.name].is_string() &&
        absl::Base64Unescape(data[key.name].get<std::string>(), &decoded)) {
      stored.*key.field = std::move(decoded);
    }
  }
  return stored;
}

json Encode(const StoredCertificates& stored) {
  json data = json::object();
  for (const DataKey& key : kDataKeys) {
    if (!(stored.*key.field).empty()) data[key.name] = absl::Base64Escape(stored.*key.field);
  }
  return data;
}

}  // namespace

struct CertificateKeeper::Impl {
  Impl(ManagedCertificatesConfig config_in, std::unique_ptr<kube::KubeClient> client_in, const Clock& clock_in,
       std::function<absl::Status(const PemPair&)> install_in)
      : config(std::move(config_in)),
        client(std::move(client_in)),
        clock(clock_in),
        install(std::move(install_in)),
        policy{.dns_names = config.DnsNames(),
               .valid_for = config.valid_for,
               .authority_valid_for = config.authority_valid_for,
               .renew_before = config.renew_before} {}

  std::string SecretName() const { return config.namespace_name + "/" + config.secret; }

  // The Secret as stored; nullopt when there is none.
  absl::StatusOr<std::optional<json>> ReadSecret() {
    absl::StatusOr<json> secret = client->Get(kube::Secrets(), config.namespace_name, config.secret);
    if (secret.status().code() == absl::StatusCode::kNotFound) return std::optional<json>();
    if (!secret.ok()) return secret.status();
    return std::optional<json>(*std::move(secret));
  }

  // Writes `stored` into the Secret: a create when there was none, an update at the read
  // resourceVersion otherwise (ABORTED when someone wrote it meanwhile: the next pass reads
  // again). A Secret of another type is deleted first: a Secret's type cannot change.
  absl::Status WriteSecret(const std::optional<json>& current, const StoredCertificates& stored) {
    json labels = {{"app.kubernetes.io/name", "modelcache-coordinator"},
                   {"app.kubernetes.io/managed-by", "modelcache"}};
    if (current && Text(*current, {"type"}) == kSecretType) {
      json secret = *current;
      for (const auto& [key, value] : labels.items()) secret["metadata"]["labels"][key] = value;
      secret["data"] = Encode(stored);
      secret.erase("stringData");
      RETURN_IF_ERROR(client->Update(kube::Secrets(), secret).status());
      return absl::OkStatus();
    }
    if (current) {
      spdlog::info("webhook certificate Secret has another type: replacing it {}",
                   LogFields().Add("secret", SecretName()).Add("type", Text(*current, {"type"})).Add("want", kSecretType));
      kube::DeletePreconditions same{.uid = Text(*current, {"metadata", "uid"}),
                                     .resource_version = Text(*current, {"metadata", "resourceVersion"})};
      absl::StatusOr<json> deleted = client->Delete(kube::Secrets(), config.namespace_name, config.secret, same);
      if (!deleted.ok() && deleted.status().code() != absl::StatusCode::kNotFound) return deleted.status();
    }
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", config.secret}, {"namespace", config.namespace_name}, {"labels", labels}}},
                   {"type", kSecretType},
                   {"data", Encode(stored)}};
    return client->Create(kube::Secrets(), secret).status();
  }

  // Sets caBundle on the configuration's webhooks that call our Service. A merge patch
  // replaces the whole webhooks list, so it carries the list as read and the read
  // resourceVersion: a concurrent change makes it ABORTED rather than lost. (Server-side apply
  // would merge webhooks by name on a real API server, but the other required fields of each
  // webhook are not ours to own.)
  absl::Status PatchCaBundle(const std::string& bundle) {
    const kube::Resource& resource = kube::MutatingWebhookConfigurations();
    absl::StatusOr<json> configuration = client->Get(resource, "", config.webhook_configuration);
    if (configuration.status().code() == absl::StatusCode::kNotFound) {
      return absl::FailedPreconditionError(fmt::format(
          "mutatingwebhookconfigurations \"{}\" not found: apply deploy/overlays/webhook (or set "
          "webhook.certificates.mutatingWebhookConfiguration)",
          config.webhook_configuration));
    }
    if (!configuration.ok()) return configuration.status();
    json webhooks = configuration->contains("webhooks") && (*configuration)["webhooks"].is_array()
                        ? (*configuration)["webhooks"]
                        : json::array();
    const std::string encoded = absl::Base64Escape(bundle);
    int ours = 0;
    int changed = 0;
    for (json& webhook : webhooks) {
      if (Text(webhook, {"clientConfig", "service", "name"}) != config.service ||
          Text(webhook, {"clientConfig", "service", "namespace"}) != config.namespace_name) {
        continue;
      }
      ++ours;
      if (Text(webhook, {"clientConfig", "caBundle"}) == encoded) continue;
      webhook["clientConfig"]["caBundle"] = encoded;
      ++changed;
    }
    if (ours == 0) {
      return absl::FailedPreconditionError(
          fmt::format("mutatingwebhookconfigurations \"{}\": no webhook calls service {}/{}",
                      config.webhook_configuration, config.namespace_name, config.service));
    }
    if (changed == 0) return absl::OkStatus();
    json patch = {{"metadata", {{"resourceVersion", Text(*configuration, {"metadata", "resourceVersion"})}}},
                  {"webhooks", webhooks}};
    RETURN_IF_ERROR(client->MergePatch(resource, "", config.webhook_configuration, patch).status());
    spdlog::info("webhook caBundle patched {}", LogFields()
                                                    .Add("mutatingWebhookConfiguration", config.webhook_configuration)
                                                    .Add("webhooks", changed));
    return absl::OkStatus();
  }

  absl::StatusOr<Clock::TimePoint> Pass() {
    const Clock::TimePoint now = clock.Now();
    ASSIGN_OR_RETURN(std::optional<json> secret, ReadSecret());
    std::optional<StoredCertificates> stored;
    if (secret) stored = Decode(*secret);
    CertificatePlan plan = PlanCertificates(stored ? &*stored : nullptr, policy, now);
    if (plan.action != CertificateAction::kKeep) {
      ASSIGN_OR_RETURN(StoredCertificates renewed, CarryOut(plan, stored ? &*stored : nullptr, policy, now));
      RETURN_IF_ERROR(WriteSecret(secret, renewed));
      spdlog::info("webhook certificate made {}", LogFields()
                                                      .Add("secret", SecretName())
                                                      .Add("action", ActionName(plan.action))
                                                      .Add("reason", plan.reason));
      stored = std::move(renewed);
      plan = PlanCertificates(&*stored, policy, now);
    }
    RETURN_IF_ERROR(PatchCaBundle(CaBundle(*stored, now)));
    PemPair serving{stored->certificate, stored->key};
    if (!installed || *installed != serving) {
      RETURN_IF_ERROR(install(serving));
      installed = serving;
      spdlog::info("webhook certificate served {}", LogFields().Add("secret", SecretName()));
    }
    return plan.renew_at;
  }

  void Run() {
    std::chrono::seconds retry = kFirstRetry;
    std::unique_lock lock(mutex);
    while (!stopping) {
      lock.unlock();
      absl::StatusOr<Clock::TimePoint> renew_at = Pass();
      const Clock::TimePoint now = clock.Now();
      Clock::TimePoint next;
      if (renew_at.ok()) {
        next = std::min(now + config.check_every, std::max(*renew_at, now + kFirstRetry));
        retry = kFirstRetry;
      } else {
        spdlog::warn("webhook certificates not in place {}",
                     LogFields()
                         .Add("error", renew_at.status())
                         .Add("next", fmt::format("retry in {}s; labelled pods are refused until then", retry.count())));
        next = now + retry;
        retry = std::min(retry * 2, kLastRetry);
      }
      lock.lock();
      clock.WaitUntil(lock, wake, next, [this] { return stopping; });
    }
  }

  const ManagedCertificatesConfig config;
  const std::unique_ptr<kube::KubeClient> client;
  const Clock& clock;
  const std::function<absl::Status(const PemPair&)> install;
  const CertificatePolicy policy;
  std::optional<PemPair> installed;  // the pass's own (one pass at a time)

  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;  // guarded by mutex
  std::thread thread;
};

CertificateKeeper::CertificateKeeper(ManagedCertificatesConfig config, std::unique_ptr<kube::KubeClient> client,
                                     const Clock& clock, std::function<absl::Status(const PemPair&)> install)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(client), clock, std::move(install))) {}

CertificateKeeper::~CertificateKeeper() { Stop(); }

void CertificateKeeper::Start() {
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void CertificateKeeper::Stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

absl::StatusOr<Clock::TimePoint> CertificateKeeper::RunOnce() { return impl_->Pass(); }

}  // namespace modelcache::webhook
