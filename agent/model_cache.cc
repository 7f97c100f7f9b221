#include "agent/model_cache.h"

#include <atomic>
#include <future>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/fill/fill_job.h"
#include "agent/hit_decision.h"
#include "agent/loop/event_loop.h"
#include "agent/single_flight/fill_gate.h"
#include "agent/store/index.h"
#include "agent/store/manifest.h"
#include "agent/store/space.h"
#include "agent/store/trash.h"
#include "common/log_fields.h"
#include "common/names.h"
#include "common/status_annotate.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "common/uri.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

using ModelKey = std::pair<std::string, std::string>;  // (name, version)

v1::EnsureProgress ReadyProgress(const v1::Manifest& manifest, const std::filesystem::path& path,
                                 bool hit) {
  v1::EnsureProgress progress;
  progress.set_state(v1::EnsureProgress::READY);
  progress.set_bytes_done(manifest.total_bytes());
  progress.set_bytes_total(manifest.total_bytes());
  progress.set_files_done(static_cast<uint32_t>(manifest.files_size()));
  progress.set_files_total(static_cast<uint32_t>(manifest.files_size()));
  progress.set_path(path.string());
  progress.set_hit(hit);
  return progress;
}

// What the volume said about one published model, read off the loop for a hit.
struct HitCheck {
  std::string name;
  std::string version;
  int64_t indexed_fetched_ms = 0;  // the index entry checked: a newer one is left alone
  Clock::TimePoint now;
  absl::StatusOr<v1::Manifest> on_disk = absl::UnknownError("not read");
  HitDecision decision;
  absl::Status access_saved;  // PersistAccess, when serving
};

}  // namespace

class ModelCache::Impl {
 public:
  Impl(EventLoop& loop, const Clock& clock, ModelCacheOptions options, ModelIndex index)
      : loop_(loop),
        clock_(clock),
        options_(std::move(options)),
        layout_(options_.cache_root),
        index_(std::move(index)),
        space_([root = options_.cache_root] { return ReadVolumeSpace(root); },
               [this] { return index_.TotalBytes(); }, options_.quota_bytes, options_.cache_root) {}

  uint64_t NextSubscription() { return next_subscription_++; }
  void Post(std::function<void()> task) { loop_.Post(std::move(task)); }
  void Ensure(uint64_t subscription, const v1::EnsureRequest& request, ProgressFn on_progress,
              DoneFn on_done);
  void Unsubscribe(uint64_t subscription);
  std::optional<IndexEntry> Find(const ModelKey& key) const;
  std::vector<IndexEntry> All() const { return index_.All(); }
  // Makes the index agree with what the volume holds for `key` (`on_disk`: ReadManifest
  // there, NOT_FOUND once gone), unless the entry changed since it was read (its fetch time
  // is no longer `indexed_fetched_ms`).
  void Reconcile(const ModelKey& key, int64_t indexed_fetched_ms,
                 const absl::StatusOr<v1::Manifest>& on_disk);
  // Thread-safe (const members only): the answer of Stat and List.
  v1::CachedModel ToCachedModel(const v1::Manifest& manifest, Clock::TimePoint last_access) const;
  const CacheLayout& Layout() const { return layout_; }
  void Purge(const ModelKey& key, std::function<void(absl::StatusOr<uint64_t>)> on_done);
  void EmptyTrashInBackground();
  // Cancels every fill (their staging stays for resume) and waits until none of their
  // blocking steps is running.
  void Shutdown();

  // Runs `fn` on the loop thread and waits for its result; `fallback` when the loop is
  // stopping and drops the task.
  template <typename Fn, typename T = std::invoke_result_t<Fn>>
  T OnLoop(Fn fn, T fallback) {
    if (loop_.OnLoopThread()) return fn();
    // Owned by the task: a dropped task breaks the promise instead of leaving us waiting.
    auto result = std::make_shared<std::promise<T>>();
    std::future<T> future = result->get_future();
    loop_.Post([result, fn] { result->set_value(fn()); });
    future.wait();
    try {
      return future.get();
    } catch (const std::future_error&) {
      return fallback;
    }
  }

 private:
  struct Subscriber {
    ProgressFn on_progress;
    DoneFn on_done;
    std::string source;  // as asked: the published manifest must name the same
  };
  // An Ensure whose hit is being checked against the volume.
  struct PendingHit {
    v1::EnsureRequest request;
    ProgressFn on_progress;
    DoneFn on_done;
  };
  struct Fill {
    std::unique_ptr<FillJob> job;  // null while another agent of the volume fills the model
    std::unique_ptr<FillGate::Ticket> ticket;  // null without a fill gate
    v1::EnsureRequest request;                 // the first caller's: the job is made from it
    v1::EnsureProgress progress;               // the latest, ours or the other agent's
    std::map<uint64_t, Subscriber> subscribers;
    std::string scheme;  // of the source, for FillStats
    Clock::TimePoint started;
  };

  // A hit in the index, or a fill joined or started.
  void Dispatch(uint64_t subscription, const v1::EnsureRequest& request, ProgressFn on_progress,
                DoneFn on_done);
  void CheckHit(uint64_t subscription, const IndexEntry& entry, PendingHit pending);
  void OnHitChecked(uint64_t subscription, const HitCheck& checked);
  void JoinOrFill(uint64_t subscription, const v1::EnsureRequest& request, ProgressFn on_progress,
                  DoneFn on_done);
  void EnterGate(const ModelKey& key, Fill& fill);
  void StartJob(const ModelKey& key, Fill& fill);
  void OnFillProgress(const ModelKey& key, const v1::EnsureProgress& progress);
  void OnFillDone(const ModelKey& key, absl::StatusOr<v1::Manifest> result, bool hit = false);

  EventLoop& loop_;
  const Clock& clock_;
  const ModelCacheOptions options_;
  const CacheLayout layout_;
  std::atomic<uint64_t> next_subscription_{1};
  // Loop thread only, from here on.
  ModelIndex index_;
  SpaceReservations space_;
  std::map<ModelKey, Fill> fills_;
  std::map<uint64_t, ModelKey> subscription_fills_;
  std::map<uint64_t, PendingHit> pending_hits_;
  // The hit checks' way back from the thread pool: reset by Shutdown on the loop, so a check
  // that comes back later finds the cache gone instead of touching it.
  std::shared_ptr<Impl*> alive_ = std::make_shared<Impl*>(this);
};

void ModelCache::Impl::Ensure(uint64_t subscription, const v1::EnsureRequest& request,
                              ProgressFn on_progress, DoneFn on_done) {
  absl::Status valid = ValidateModelName(request.name());
  if (valid.ok()) valid = ValidateModelVersion(request.version());
  if (!valid.ok()) return on_done(valid);
  ModelKey key(request.name(), request.version());
  absl::StatusOr<std::unique_ptr<Source>> source = MakeSource(request.source(), options_.sources);
  if (!source.ok()) {
    return on_done(Annotate(source.status(), absl::StrCat("model ", key.first, "@", key.second)));
  }

  Dispatch(subscription, request, std::move(on_progress), std::move(on_done));
}

void ModelCache::Impl::Dispatch(uint64_t subscription, const v1::EnsureRequest& request,
                                ProgressFn on_progress, DoneFn on_done) {
  if (const IndexEntry* entry = index_.Find(request.name(), request.version())) {
    return CheckHit(subscription, *entry,
                    PendingHit{request, std::move(on_progress), std::move(on_done)});
  }
  JoinOrFill(subscription, request, std::move(on_progress), std::move(on_done));
}

void ModelCache::Impl::CheckHit(uint64_t subscription, const IndexEntry& entry,
                                PendingHit pending) {
  auto checked = std::make_shared<HitCheck>();
  checked->name = pending.request.name();
  checked->version = pending.request.version();
  checked->indexed_fetched_ms = entry.manifest.fetched_unix_ms();
  checked->now = clock_.Now();
  std::string source = pending.request.source();
  pending_hits_[subscription] = std::move(pending);
  // The index remembers; the volume decides. Reading the manifest is file I/O (on a network
  // filesystem, a round trip), so it runs on the pool.
  loop_.RunBlocking(
      [layout = layout_, checked, source = std::move(source)] {
        checked->on_disk = ReadManifest(layout.ManifestPath(checked->name, checked->version));
        checked->decision = DecideHit(checked->name, checked->version, checked->on_disk, source);
        if (checked->decision.action != HitAction::kServe) return;
        checked->access_saved =
            PersistAccess(layout, checked->name, checked->version, checked->now);
        // The folder went between the two steps: not a hit after all.
        if (absl::IsNotFound(checked->access_saved)) {
          checked->decision = HitDecision{HitAction::kFillAgain, absl::OkStatus()};
          checked->on_disk = checked->access_saved;
        }
      },
      [alive = std::weak_ptr<Impl*>(alive_), subscription, checked] {
        if (std::shared_ptr<Impl*> self = alive.lock()) (*self)->OnHitChecked(subscription, *checked);
      });
}

void ModelCache::Impl::OnHitChecked(uint64_t subscription, const HitCheck& checked) {
  const ModelKey key(checked.name, checked.version);
  // The index follows the volume, whether or not the caller is still there.
  Reconcile(key, checked.indexed_fetched_ms, checked.on_disk);
  auto pending = pending_hits_.find(subscription);
  if (pending == pending_hits_.end()) return;  // unsubscribed meanwhile
  PendingHit caller = std::move(pending->second);
  pending_hits_.erase(pending);

  switch (checked.decision.action) {
    case HitAction::kRefuse:
      return caller.on_done(checked.decision.error);
    case HitAction::kFillAgain:
      return Dispatch(subscription, caller.request, std::move(caller.on_progress),
                      std::move(caller.on_done));
    case HitAction::kServe:
      break;
  }
  if (index_.Find(key.first, key.second) == nullptr) {
    // Purged on this loop while the check ran: whatever comes next decides.
    return Dispatch(subscription, caller.request, std::move(caller.on_progress),
                    std::move(caller.on_done));
  }
  index_.SetLastAccess(key.first, key.second, checked.now);
  if (!checked.access_saved.ok()) {
    // The manifest was just read: the model is there, only its access time is not saved
    // (a read-only volume, say).
    spdlog::warn("last use not saved {}",
                 LogFields()
                     .Add("model", key.first)
                     .Add("version", key.second)
                     .Add("error", checked.access_saved)
                     .Add("next", "served (the model is there); after a restart the last use "
                                  "saved before counts"));
  }
  caller.on_done(ReadyProgress(*checked.on_disk, layout_.ModelDir(key.first, key.second), true));
}

void ModelCache::Impl::JoinOrFill(uint64_t subscription, const v1::EnsureRequest& request,
                                  ProgressFn on_progress, DoneFn on_done) {
  ModelKey key(request.name(), request.version());
  auto fill = fills_.find(key);
  if (fill != fills_.end()) {
    // Single flight: a second caller joins the fill in progress, but only a fill of the
    // source it asked for: the first caller's source is the one used.
    const std::string& filling_from = fill->second.request.source();
    if (!SameSource(filling_from, request.source())) {
      return on_done(OtherSourceError(key.first, key.second, SourceConflict::kFilling,
                                      filling_from, request.source()));
    }
    fill->second.subscribers[subscription] = Subscriber{on_progress, on_done, request.source()};
    subscription_fills_[subscription] = key;
    if (on_progress) on_progress(fill->second.progress);
    return;
  }
  Fill& started = fills_[key];
  absl::StatusOr<SourceUri> uri = ParseSourceUri(request.source());
  started.scheme = uri.ok() ? uri->scheme : "other";
  started.subscribers[subscription] =
      Subscriber{std::move(on_progress), std::move(on_done), request.source()};
  subscription_fills_[subscription] = key;
  started.request = request;
  started.progress.set_state(v1::EnsureProgress::QUEUED);
  if (options_.fill_gate != nullptr) return EnterGate(key, started);
  StartJob(key, started);
}

void ModelCache::Impl::EnterGate(const ModelKey& key, Fill& fill) {
  FillGate::Callbacks callbacks;
  callbacks.on_turn = [this, key] {
    auto it = fills_.find(key);
    if (it != fills_.end() && it->second.job == nullptr) StartJob(key, it->second);
  };
  callbacks.on_published = [this, key](v1::Manifest manifest) {
    spdlog::info("fill published by another agent of the volume {}",
                 LogFields().Add("model", key.first).Add("version", key.second));
    OnFillDone(key, std::move(manifest), /*hit=*/true);
  };
  callbacks.on_error = [this, key](absl::Status status) { OnFillDone(key, std::move(status)); };
  callbacks.on_progress = [this, key](const v1::EnsureProgress& progress) {
    OnFillProgress(key, progress);
  };
  callbacks.on_lost = [this, key] {
    auto it = fills_.find(key);
    if (it == fills_.end()) return;
    // Another agent took the model over (we were too slow to renew): stop fetching, keep the
    // staging for it, and wait for its publish like any other agent of the volume.
    // The fill gate logged the loss and its cause (WARN); this says what the cache does.
    spdlog::info("fill stopped: lease lost, waiting for the new filler {}",
                 LogFields().Add("model", key.first).Add("version", key.second));
    it->second.job.reset();
    it->second.ticket.reset();
    EnterGate(key, it->second);
  };
  fill.ticket = options_.fill_gate->Enter(key.first, key.second, fill.request.source(),
                                         std::move(callbacks));
}

void ModelCache::Impl::StartJob(const ModelKey& key, Fill& fill) {
  absl::StatusOr<std::unique_ptr<Source>> source =
      MakeSource(fill.request.source(), options_.sources);
  if (!source.ok()) {
    return OnFillDone(key,
                      Annotate(source.status(), absl::StrCat("model ", key.first, "@", key.second)));
  }
  FillRequest fill_request;
  fill_request.name = key.first;
  fill_request.version = key.second;
  fill_request.source_uri = fill.request.source();
  fill_request.source = std::move(source).value();
  fill_request.settings = options_.fill;
  if (fill.ticket) fill_request.before_publish = fill.ticket->PublishCheck();
  if (options_.make_room) {
    fill_request.make_room = [this, key](uint64_t bytes_short,
                                         std::function<void(absl::Status)> done) {
      options_.make_room(key.first, key.second, bytes_short,
                         [loop = &loop_, done = std::move(done)](absl::Status made) {
                           loop->Post([done, made] { done(made); });
                         });
    };
  }
  spdlog::info("fill started {}", LogFields()
                                      .Add("model", key.first)
                                      .Add("version", key.second)
                                      .Add("source", fill.request.source()));
  fill.started = clock_.Now();
  fill.job = std::make_unique<FillJob>(
      loop_, clock_, layout_, space_, std::move(fill_request),
      [this, key](const v1::EnsureProgress& progress) { OnFillProgress(key, progress); },
      [this, key](absl::StatusOr<v1::Manifest> result) { OnFillDone(key, std::move(result)); });
  fill.job->Start();
}

void ModelCache::Impl::OnFillProgress(const ModelKey& key, const v1::EnsureProgress& progress) {
  auto fill = fills_.find(key);
  if (fill == fills_.end()) return;
  fill->second.progress = progress;
  if (fill->second.ticket && fill->second.job) {
    fill->second.ticket->ReportProgress(progress.bytes_done(), progress.bytes_total());
  }
  for (const auto& [subscription, subscriber] : fill->second.subscribers) {
    if (subscriber.on_progress) subscriber.on_progress(progress);
  }
}

void ModelCache::Impl::OnFillDone(const ModelKey& key, absl::StatusOr<v1::Manifest> result,
                                  bool hit) {
  auto fill = fills_.find(key);
  if (fill == fills_.end()) return;
  if (fill->second.ticket) {
    if (!result.ok() && fill->second.ticket->Lost()) {
      // The publish check found the lease taken over: the new filler finishes the model.
      spdlog::warn("fill lease lost before publishing {}",
                   LogFields()
                       .Add("model", key.first)
                       .Add("version", key.second)
                       .Add("error", result.status())
                       .Add("next", "staging kept; waiting for the new filler"));
      fill->second.job.reset();
      fill->second.ticket.reset();
      return EnterGate(key, fill->second);
    }
    fill->second.ticket->Finish(/*published=*/result.ok(), result.status());
  }
  std::map<uint64_t, Subscriber> subscribers = std::move(fill->second.subscribers);
  const bool filled_here = fill->second.job != nullptr;
  double rate = fill->second.progress.bytes_per_second();
  FillStats stats{.name = key.first,
                  .version = key.second,
                  .scheme = fill->second.scheme,
                  .status = result.status(),
                  .duration = clock_.Now() - fill->second.started};
  if (filled_here) {
    stats.bytes_fetched = fill->second.job->GetCounters().bytes_fetched;
    stats.chunk_retries = fill->second.job->GetCounters().chunk_retries;
    stats.ranges_ignored = fill->second.job->GetCounters().ranges_ignored;
    stats.whole_file_streams = fill->second.job->GetCounters().whole_file_streams;
  }
  fills_.erase(fill);  // FillJob allows being destroyed from its own DoneFn
  for (const auto& [subscription, subscriber] : subscribers) subscription_fills_.erase(subscription);

  if (filled_here && options_.on_fill_finished) options_.on_fill_finished(stats);
  LogFields fields;
  fields.Add("model", key.first)
      .Add("version", key.second)
      .Add("bytes", stats.bytes_fetched)
      .AddMillis("duration_ms", stats.duration.count());
  if (!result.ok()) {
    spdlog::warn("fill failed {}", fields.Add("error", result.status())
                                       .Add("next", KeepsStagingAfter(result.status())
                                                        ? "staging kept: the next Ensure resumes"
                                                        : "staging removed: the next Ensure "
                                                          "starts over"));
    for (const auto& [subscription, subscriber] : subscribers) subscriber.on_done(result.status());
    return;
  }
  spdlog::info("fill finished {}", fields.Add("size_bytes", result->total_bytes())
                                       .Add("files", result->files_size()));
  index_.Put(IndexEntry{*result, clock_.Now()});
  v1::EnsureProgress ready = ReadyProgress(*result, layout_.ModelDir(key.first, key.second), hit);
  ready.set_bytes_per_second(rate);
  for (const auto& [subscription, subscriber] : subscribers) {
    // Another agent of the volume may have published the model first, from its own source
    // (the gate's on_published, or the fill job finding it at listing or at publish time).
    if (!SameSource(result->source(), subscriber.source)) {
      subscriber.on_done(OtherSourceError(key.first, key.second, SourceConflict::kPublished,
                                          result->source(), subscriber.source));
      continue;
    }
    subscriber.on_done(ready);
  }
}

void ModelCache::Impl::Unsubscribe(uint64_t subscription) {
  pending_hits_.erase(subscription);
  auto it = subscription_fills_.find(subscription);
  if (it == subscription_fills_.end()) return;
  auto fill = fills_.find(it->second);
  if (fill != fills_.end()) fill->second.subscribers.erase(subscription);
  subscription_fills_.erase(it);
}

v1::CachedModel ModelCache::Impl::ToCachedModel(const v1::Manifest& manifest,
                                                Clock::TimePoint last_access) const {
  v1::CachedModel model;
  model.set_name(manifest.name());
  model.set_version(manifest.version());
  model.set_path(layout_.ModelDir(manifest.name(), manifest.version()).string());
  model.set_size_bytes(manifest.total_bytes());
  model.set_file_count(static_cast<uint32_t>(manifest.files_size()));
  model.set_source(manifest.source());
  model.set_fetched_unix_ms(manifest.fetched_unix_ms());
  model.set_last_access_unix_ms(ToUnixMillis(last_access));
  return model;
}

std::optional<IndexEntry> ModelCache::Impl::Find(const ModelKey& key) const {
  const IndexEntry* entry = index_.Find(key.first, key.second);
  if (entry == nullptr) return std::nullopt;
  return *entry;
}

void ModelCache::Impl::Reconcile(const ModelKey& key, int64_t indexed_fetched_ms,
                                 const absl::StatusOr<v1::Manifest>& on_disk) {
  const IndexEntry* entry = index_.Find(key.first, key.second);
  if (entry == nullptr || entry->manifest.fetched_unix_ms() != indexed_fetched_ms) return;
  if (absl::IsNotFound(on_disk.status())) {
    spdlog::info("published model gone from the volume {}",
                 LogFields()
                     .Add("model", key.first)
                     .Add("version", key.second)
                     .Add("path", layout_.ModelDir(key.first, key.second).string())
                     .Add("next", "forgotten; the next Ensure fills it again"));
    index_.Remove(key.first, key.second);
    return;
  }
  if (absl::IsDataLoss(on_disk.status()) ||
      (on_disk.ok() && (on_disk->name() != key.first || on_disk->version() != key.second))) {
    // A broken manifest is not servable (the caller was told why): nothing to list either.
    index_.Remove(key.first, key.second);
    return;
  }
  // Any other error (EIO, a stale NFS handle) says nothing about the model: keep it.
  if (!on_disk.ok()) return;
  // Another agent of the volume purged and filled it again: its manifest is the truth.
  if (on_disk->fetched_unix_ms() != entry->manifest.fetched_unix_ms() ||
      on_disk->source() != entry->manifest.source()) {
    index_.Put(IndexEntry{*on_disk, entry->last_access});
  }
}

void ModelCache::Impl::Purge(const ModelKey& key,
                             std::function<void(absl::StatusOr<uint64_t>)> on_done) {
  const std::string model = absl::StrCat(key.first, "@", key.second);
  if (fills_.count(key) != 0) {
    return on_done(absl::FailedPreconditionError(
        absl::StrCat("model ", model, ": a fill is in progress, not purging it")));
  }
  uint64_t known_bytes = 0;
  if (const IndexEntry* entry = index_.Find(key.first, key.second)) {
    known_bytes = entry->manifest.total_bytes();
  }
  // The rename runs here, on the loop, right after the index forgets the model: an Ensure
  // posted meanwhile then starts a fresh fill instead of answering with a folder that is about
  // to vanish. A rename plus two directory fsyncs is short enough for the loop.
  absl::StatusOr<std::filesystem::path> trashed =
      MoveToTrash(layout_, layout_.ModelDir(key.first, key.second));
  if (!trashed.ok() && !absl::IsNotFound(trashed.status())) {
    return on_done(Annotate(trashed.status(), absl::StrCat("model ", model)));
  }
  index_.Remove(key.first, key.second);
  if (!trashed.ok()) return on_done(uint64_t{0});  // not on the volume
  spdlog::info("purge moved to trash {}", LogFields()
                                             .Add("model", key.first)
                                             .Add("version", key.second)
                                             .Add("bytes", known_bytes));
  auto freed = std::make_shared<absl::StatusOr<uint64_t>>(uint64_t{0});
  loop_.RunBlocking([layout = layout_, freed] { *freed = EmptyTrash(layout); },
                    [freed, known_bytes, key, on_done = std::move(on_done)] {
                      // The model is already out of the cache; a failed delete is retried by
                      // the next trash sweep, so the purge itself succeeded.
                      if (!freed->ok()) {
                        spdlog::warn("trash not emptied after a purge {}",
                                     LogFields()
                                         .Add("model", key.first)
                                         .Add("version", key.second)
                                         .Add("error", freed->status())
                                         .Add("next", "the purge counts as done; the trash is "
                                                      "emptied again at the next purge or "
                                                      "agent start"));
                        return on_done(known_bytes);
                      }
                      on_done(known_bytes > 0 ? known_bytes : **freed);
                    });
}

void ModelCache::Impl::EmptyTrashInBackground() {
  loop_.RunBlocking(
      [layout = layout_] {
        absl::StatusOr<uint64_t> freed = EmptyTrash(layout);
        if (!freed.ok()) {
          spdlog::warn("trash not emptied {}",
                       LogFields()
                           .Add("volume", layout.Root().string())
                           .Add("error", freed.status())
                           .Add("next", "the trash is emptied again at the next purge or agent "
                                        "start"));
        } else if (*freed > 0) {
          spdlog::info("trash emptied {}", LogFields()
                                               .Add("volume", layout.Root().string())
                                               .Add("bytes", *freed));
        }
      },
      [] {});
}

void ModelCache::Impl::Shutdown() {
  auto cancel_all = [this](std::function<void()> drained) {
    for (auto& [key, fill] : fills_) {
      if (fill.job) {
        fill.job->Cancel(drained);
      } else if (drained) {
        drained();  // only waiting at the gate: nothing runs on the pool
      }
      for (const auto& [subscription, subscriber] : fill.subscribers) {
        subscriber.on_done(absl::CancelledError(absl::StrCat(
            "model ", key.first, "@", key.second, ": the agent is shutting down")));
      }
    }
    fills_.clear();
    subscription_fills_.clear();
    // Hit checks still on the pool come back to nothing.
    alive_.reset();
    for (const auto& [subscription, pending] : pending_hits_) {
      pending.on_done(absl::CancelledError(absl::StrCat("model ", pending.request.name(), "@",
                                                        pending.request.version(),
                                                        ": the agent is shutting down")));
    }
    pending_hits_.clear();
  };
  if (loop_.OnLoopThread()) return cancel_all(nullptr);
  // Owned by the task and the cancelled jobs: if the loop drops them, the promise breaks and
  // the wait ends.
  auto drained = std::make_shared<std::promise<void>>();
  std::future<void> all_drained = drained->get_future();
  loop_.Post([cancel_all, drained, remaining = std::make_shared<size_t>(0), this]() mutable {
    *remaining = fills_.size() + 1;
    auto one_drained = [remaining, drained] {
      if (--*remaining == 0) drained->set_value();
    };
    drained.reset();
    cancel_all(one_drained);
    one_drained();
  });
  all_drained.wait();
}

absl::StatusOr<std::unique_ptr<ModelCache>> ModelCache::Open(EventLoop& loop, const Clock& clock,
                                                             ModelCacheOptions options) {
  CacheLayout layout(options.cache_root);
  RETURN_IF_ERROR(layout.CreateDirectories());
  ASSIGN_OR_RETURN(ScanReport report, ScanVolume(layout));
  for (const ScanProblem& problem : report.problems) {
    spdlog::warn("volume scan problem {}", LogFields()
                                               .Add("volume", layout.Root().string())
                                               .Add("path", problem.path)
                                               .Add("error", problem.error)
                                               .Add("next", problem.next));
  }
  LogFields scanned;
  scanned.Add("volume", layout.Root().string())
      .Add("models", report.index.Size())
      .Add("bytes", report.index.TotalBytes())
      .Add("resumable_fills", report.staging_found.size());
  if (!report.staging_found.empty()) {
    scanned.Add("resumable", absl::StrJoin(report.staging_found, ","));
  }
  spdlog::info("volume scanned {}",
               scanned.Add("stale_staging_removed_bytes", report.staging_removed_bytes));
  auto impl = std::make_unique<Impl>(loop, clock, std::move(options), std::move(report.index));
  Impl* raw = impl.get();
  loop.Post([raw] { raw->EmptyTrashInBackground(); });
  return std::unique_ptr<ModelCache>(new ModelCache(std::move(impl)));
}

ModelCache::ModelCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModelCache::~ModelCache() { impl_->Shutdown(); }

uint64_t ModelCache::Ensure(const v1::EnsureRequest& request, ProgressFn on_progress,
                            DoneFn on_done) {
  uint64_t subscription = impl_->NextSubscription();
  Impl* impl = impl_.get();
  impl_->Post([impl, subscription, request, on_progress = std::move(on_progress),
                       on_done = std::move(on_done)]() mutable {
    impl->Ensure(subscription, request, std::move(on_progress), std::move(on_done));
  });
  return subscription;
}

void ModelCache::Unsubscribe(uint64_t subscription) {
  Impl* impl = impl_.get();
  impl_->Post([impl, subscription] { impl->Unsubscribe(subscription); });
}

// Why the disk, and not news of purges from the coordinator: the volume is the one thing
// every agent of it shares. It knows of purges by another agent while this one was cut off
// from the coordinator, of agents without a coordinator, and of folders removed by hand or by
// `modelcachectl cleanup`; a message from the coordinator would cover only the first case,
// and only when delivered. The price is one stat() per model per List (the usage report runs
// it every report interval) and one manifest read per Stat.
absl::StatusOr<v1::CachedModel> ModelCache::Stat(std::string_view name, std::string_view version) {
  ModelKey key{std::string(name), std::string(version)};
  Impl* impl = impl_.get();
  const std::string model = absl::StrCat(key.first, "@", key.second);
  std::optional<IndexEntry> entry =
      impl->OnLoop([impl, key] { return impl->Find(key); }, std::optional<IndexEntry>());
  if (!entry) return absl::NotFoundError(absl::StrCat("model ", model, " is not in the cache"));
  absl::StatusOr<v1::Manifest> on_disk =
      ReadManifest(impl->Layout().ManifestPath(key.first, key.second));
  const int64_t indexed_fetched_ms = entry->manifest.fetched_unix_ms();
  impl->OnLoop(
      [impl, key, indexed_fetched_ms, on_disk] {
        impl->Reconcile(key, indexed_fetched_ms, on_disk);
        return true;
      },
      false);
  if (absl::IsNotFound(on_disk.status())) {
    return absl::NotFoundError(absl::StrCat("model ", model, " is not in the cache (its folder ",
                                            impl->Layout().ModelDir(key.first, key.second).string(),
                                            " was removed)"));
  }
  if (!on_disk.ok()) {
    return Annotate(on_disk.status(), absl::StrCat("model ", model));
  }
  v1::CachedModel cached = impl->ToCachedModel(*on_disk, entry->last_access);
  *cached.mutable_files() = on_disk->files();
  if (on_disk->has_source_revision()) *cached.mutable_source_revision() = on_disk->source_revision();
  return cached;
}

std::vector<v1::CachedModel> ModelCache::List() {
  Impl* impl = impl_.get();
  std::vector<IndexEntry> entries =
      impl->OnLoop([impl] { return impl->All(); }, std::vector<IndexEntry>());
  std::vector<v1::CachedModel> models;
  std::vector<std::pair<ModelKey, int64_t>> gone;
  for (const IndexEntry& entry : entries) {
    const v1::Manifest& manifest = entry.manifest;
    // Only a manifest known to be absent counts as gone; a volume that does not answer now
    // keeps its models listed.
    absl::StatusOr<bool> published =
        IsPublished(impl->Layout(), manifest.name(), manifest.version());
    if (published.ok() && !*published) {
      gone.emplace_back(ModelKey(manifest.name(), manifest.version()), manifest.fetched_unix_ms());
      continue;
    }
    models.push_back(impl->ToCachedModel(manifest, entry.last_access));
  }
  if (!gone.empty()) {
    impl->OnLoop(
        [impl, gone] {
          for (const auto& [key, fetched_ms] : gone) {
            impl->Reconcile(key, fetched_ms, absl::NotFoundError("no manifest"));
          }
          return true;
        },
        false);
  }
  return models;
}

absl::StatusOr<uint64_t> ModelCache::Purge(std::string_view name, std::string_view version) {
  ModelKey key{std::string(name), std::string(version)};
  Impl* impl = impl_.get();
  // Owned by the task (and its trash callback): a dropped task breaks the promise.
  auto result = std::make_shared<std::promise<absl::StatusOr<uint64_t>>>();
  std::future<absl::StatusOr<uint64_t>> future = result->get_future();
  impl_->Post([impl, key, result] {
    impl->Purge(key, [result](absl::StatusOr<uint64_t> freed) { result->set_value(std::move(freed)); });
  });
  future.wait();
  try {
    return future.get();
  } catch (const std::future_error&) {
    return absl::UnavailableError("the agent is shutting down");
  }
}

}  // namespace modelcache
