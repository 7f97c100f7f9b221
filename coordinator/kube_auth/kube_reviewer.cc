#include "coordinator/kube_auth/kube_reviewer.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "common/status_macros.h"
#include "coordinator/kube_auth/review_cache.h"
#include "coordinator/kube_auth/reviews.h"
#include "kube/resource.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube_auth {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// Two workers: a slow review does not hold up the next; more would only queue at the server.
constexpr int kWorkers = 2;
// Reviews waiting beyond this are refused at once (UNAVAILABLE): the wait stays bounded.
constexpr size_t kMaxPending = 256;

// The cache key of a token: its digest, so that no token is kept in memory longer than a call.
std::string TokenKey(std::string_view token, bool agent_only) {
  Sha256 digest;
  digest.Update(std::as_bytes(std::span(token.data(), token.size())));
  return (agent_only ? "agent:" : "any:") + digest.FinishHex();
}

std::string AccessKey(const KubeIdentity& identity, std::string_view verb) {
  std::string key = fmt::format("{}\n{}\n{}", identity.username, identity.uid, verb);
  for (const std::string& group : identity.groups) key += "\n" + group;
  return key;
}

// What the API server's failure means to the caller: never access, and a message naming the
// review, so that "unavailable" is not mistaken for "the coordinator is down".
absl::Status Unavailable(std::string_view review, const absl::Status& cause) {
  return absl::UnavailableError(fmt::format("kubernetes auth: {} failed, the call is refused until the API server "
                                            "answers: {}", review, std::string(cause.message())));
}

}  // namespace

struct KubeReviewer::Impl {
  // One review, shared by every caller that asked for the same key meanwhile.
  struct Pending {
    bool done = false;
    absl::Status status;
    KubeIdentity identity;  // a TokenReview's
    nlohmann::json answer;  // a SubjectAccessReview's
  };

  Impl(const KubernetesAuthConfig& config, const Clock& clock)
      : config_(config), agent_username_(config.AgentUsername()), identities_(clock, config.cache_for),
        access_(clock, config.cache_for) {}

  void Start() {
    for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { Work(); });
  }

  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
  }

  absl::StatusOr<Principal> Check(std::string_view token, Permission permission, std::string_view what) {
    const SteadyTime deadline = std::chrono::steady_clock::now() + config_.review_timeout;
    ASSIGN_OR_RETURN(KubeIdentity identity, Identify(token, permission == Permission::kAgentStream, deadline));
    if (identity.audience_bound && identity.username == agent_username_) {
      Principal agent{identity.username, Role::kAgent};
      RETURN_IF_ERROR(Authorize(agent, permission, what));
      return agent;
    }
    if (permission == Permission::kAgentStream) {
      return absl::PermissionDeniedError(fmt::format("{} may not {}: only the agents' ServiceAccount {} may",
                                                     identity.username, what, agent_username_));
    }
    const std::string verb(VerbFor(permission));
    const std::string key = AccessKey(identity, verb);
    if (!access_.Find(key)) {
      std::shared_ptr<Pending> pending = Run(key, deadline, [this, identity, verb](Pending& result) {
        absl::StatusOr<nlohmann::json> answer =
            client_->Create(kube::SubjectAccessReviews(), SubjectAccessReviewRequest(identity, verb));
        if (answer.ok()) {
          result.answer = *std::move(answer);
        } else {
          result.status = Unavailable("SubjectAccessReview", answer.status());
        }
      });
      if (pending == nullptr) return Overloaded(deadline, "SubjectAccessReview");
      RETURN_IF_ERROR(pending->status);
      // A refusal is the caller's answer, not cached: a new binding works at once.
      RETURN_IF_ERROR(ReadSubjectAccessReview(pending->answer, identity, permission, what));
      access_.Put(key, true);
    }
    return Principal{identity.username, RoleFor(permission)};
  }

  // The identity of `token`: from the cache, or from TokenReviews (the coordinator's audience,
  // then, unless only an agent may call, the API server's own audiences).
  absl::StatusOr<KubeIdentity> Identify(std::string_view token, bool agent_only, SteadyTime deadline) {
    const std::string key = TokenKey(token, agent_only);
    if (std::optional<KubeIdentity> cached = identities_.Find(key)) return *cached;
    std::shared_ptr<Pending> pending =
        Run(key, deadline, [this, token = std::string(token), agent_only](Pending& result) {
          absl::StatusOr<KubeIdentity> identity = Review(token, config_.audience);
          if (!identity.ok() && absl::IsUnauthenticated(identity.status()) && !agent_only) {
            absl::StatusOr<KubeIdentity> user = Review(token, "");
            if (user.ok() || !absl::IsUnauthenticated(user.status())) identity = std::move(user);
          }
          if (identity.ok()) {
            result.identity = *identity;
            result.status = absl::OkStatus();
          } else {
            result.status = identity.status();
          }
        });
    if (pending == nullptr) return Overloaded(deadline, "TokenReview");
    RETURN_IF_ERROR(pending->status);
    identities_.Put(key, pending->identity);
    return pending->identity;
  }

  absl::StatusOr<KubeIdentity> Review(const std::string& token, std::string_view audience) {
    absl::StatusOr<nlohmann::json> answer = client_->Create(kube::TokenReviews(), TokenReviewRequest(token, audience));
    if (!answer.ok()) return Unavailable("TokenReview", answer.status());
    return ReadTokenReview(*answer, audience);
  }

  // The role a user acting under `permission` is logged with: the least that holds it.
  static Role RoleFor(Permission permission) {
    switch (permission) {
      case Permission::kRead: return Role::kViewer;
      case Permission::kAdmin: return Role::kAdmin;
      default: return Role::kMaintainer;
    }
  }

  absl::Status Overloaded(SteadyTime deadline, std::string_view review) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::UnavailableError(fmt::format(
          "kubernetes auth: no {} answer from the API server within {} s; the call is refused", review,
          config_.review_timeout.count()));
    }
    return absl::UnavailableError(
        fmt::format("kubernetes auth: {} reviews are already waiting for the API server; the call is refused",
                    kMaxPending));
  }

  // Runs `review` on a worker, or joins the one already running under `key`, and waits for it
  // until `deadline`. Null when it did not finish in time or too many wait.
  std::shared_ptr<Pending> Run(const std::string& key, SteadyTime deadline, std::function<void(Pending&)> review) {
    std::unique_lock lock(mutex_);
    std::shared_ptr<Pending>& slot = pending_[key];
    std::shared_ptr<Pending> pending = slot;
    if (pending == nullptr) {
      if (queue_.size() >= kMaxPending) {
        pending_.erase(key);
        return nullptr;
      }
      pending = slot = std::make_shared<Pending>();
      queue_.push_back(Job{key, pending, std::move(review)});
      wake_.notify_all();
    }
    if (!done_.wait_until(lock, deadline, [&] { return pending->done; })) return nullptr;
    return pending;
  }

  void Work() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Job job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      Pending result;
      job.review(result);
      lock.lock();
      job.pending->status = std::move(result.status);
      job.pending->identity = std::move(result.identity);
      job.pending->answer = std::move(result.answer);
      job.pending->done = true;
      pending_.erase(job.key);
      done_.notify_all();
    }
  }

  struct Job {
    std::string key;
    std::shared_ptr<Pending> pending;
    std::function<void(Pending&)> review;
  };

  const KubernetesAuthConfig config_;
  const std::string agent_username_;
  std::unique_ptr<kube::KubeClient> client_;
  ReviewCache<KubeIdentity> identities_;
  ReviewCache<bool> access_;

  std::mutex mutex_;
  std::condition_variable wake_;  // workers: a job or stopping
  std::condition_variable done_;  // callers: a review finished
  bool stopping_ = false;                                 // guarded by mutex_
  std::deque<Job> queue_;                                 // guarded by mutex_
  std::map<std::string, std::shared_ptr<Pending>> pending_;  // guarded by mutex_
  std::vector<std::thread> workers_;
};

KubeReviewer::KubeReviewer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KubeReviewer::~KubeReviewer() { impl_->Stop(); }

absl::StatusOr<std::unique_ptr<KubeReviewer>> KubeReviewer::Create(
    const KubernetesAuthConfig& config, kube::KubeConfig kube_config, const Clock& clock,
    std::function<void(const kube::RequestRecord&)> on_request) {
  auto impl = std::make_unique<Impl>(config, clock);
  kube::KubeClientOptions options;
  // A review never outlives the wait of the call that asked for it by much.
  options.request_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.review_timeout);
  options.on_request = std::move(on_request);
  ASSIGN_OR_RETURN(impl->client_, kube::KubeClient::Create(std::move(kube_config), std::move(options)));
  impl->Start();
  return std::unique_ptr<KubeReviewer>(new KubeReviewer(std::move(impl)));
}

absl::StatusOr<Principal> KubeReviewer::Check(std::string_view token, Permission permission, std::string_view what) {
  return impl_->Check(token, permission, what);
}

}  // namespace modelcache::kube_auth
