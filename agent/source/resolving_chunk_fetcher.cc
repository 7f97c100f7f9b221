#include "agent/source/resolving_chunk_fetcher.h"

#include <exception>
#include <optional>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "agent/loop/event_loop.h"
#include "common/concat.h"

namespace modelcache {
namespace {

constexpr int kMaxRefreshesPerChunk = 2;

// A refusal that a new signature or token can cure.
bool RefusedByTarget(const absl::Status& status) {
  return absl::IsPermissionDenied(status) || absl::IsNotFound(status);
}

std::string AuthKey(const HttpAuth& auth) {
  return Concat(auth.aws_sigv4, "\n", auth.user_password, "\n", absl::StrJoin(auth.headers, "\n"));
}

class ResolvingChunkFetcher final : public ChunkFetcher {
 public:
  ResolvingChunkFetcher(EventLoop& loop, const FillSettings& settings, NetworkPolicy network,
                        std::shared_ptr<TargetResolver> resolver)
      : loop_(loop), settings_(settings), network_(std::move(network)), resolver_(std::move(resolver)) {}

  ~ResolvingChunkFetcher() override {
    *alive_ = false;
    fetchers_.clear();  // cancels what runs there, without callbacks
  }

  uint64_t Fetch(const ChunkRequest& request, DoneFn done) override {
    const uint64_t id = next_id_++;
    Operation& operation = operations_[id];
    operation.request = request;
    operation.done = std::move(done);
    FileTarget& target = targets_[request.file];
    if (target.target && !target.resolving) {
      Issue(id);
    } else {
      target.waiting.push_back(id);
      if (!target.resolving) StartResolve(request.file, nullptr);
    }
    return id;
  }

  void Cancel(uint64_t fetch_id) override {
    auto it = operations_.find(fetch_id);
    if (it == operations_.end()) return;
    if (it->second.fetcher != nullptr) it->second.fetcher->Cancel(it->second.inner_id);
    operations_.erase(it);  // a waiting id is skipped when its resolve ends
  }

  size_t InFlight() const override { return operations_.size(); }

 private:
  struct Operation {
    ChunkRequest request;
    DoneFn done;
    int refreshes = 0;
    uint64_t generation = 0;        // of the target it was sent to
    ChunkFetcher* fetcher = nullptr;  // while a range GET runs
    uint64_t inner_id = 0;
  };
  struct FileTarget {
    std::optional<FetchTarget> target;
    SourceFile file;  // the listed file with location = the target's URL
    uint64_t generation = 0;
    uint64_t served = 0;  // chunks the current target answered
    bool resolving = false;
    std::vector<uint64_t> waiting;
  };

  void StartResolve(const SourceFile* file, const FetchTarget* refused) {
    FileTarget& target = targets_[file];
    target.resolving = true;
    auto result = std::make_shared<absl::StatusOr<FetchTarget>>(absl::InternalError("not resolved"));
    std::optional<FetchTarget> refused_copy;
    if (refused != nullptr) refused_copy = *refused;
    loop_.RunBlocking(
        [resolver = resolver_, listed = *file, refused_copy, result] {
          try {
            *result = resolver->Resolve(listed, refused_copy ? &*refused_copy : nullptr);
          } catch (const std::exception& error) {
            *result = absl::InternalError(Concat("resolve ", listed.path, ": ", error.what()));
          }
        },
        [this, alive = alive_, file, result] {
          if (*alive) OnResolved(file, std::move(*result));
        });
  }

  void OnResolved(const SourceFile* file, absl::StatusOr<FetchTarget> result) {
    FileTarget& target = targets_[file];
    target.resolving = false;
    std::vector<uint64_t> waiting = std::exchange(target.waiting, {});
    if (!result.ok()) {
      auto alive = alive_;
      for (uint64_t id : waiting) {
        Finish(id, result.status());
        if (!*alive) return;  // the fill went with its failure
      }
      return;
    }
    target.target = *std::move(result);
    target.file = *file;
    target.file.location = target.target->url;
    // The listing's identity (an LFS oid, a blob digest) is no ETag of the target's responses.
    target.file.etag.clear();
    ++target.generation;
    target.served = 0;
    for (uint64_t id : waiting) {
      if (operations_.count(id) != 0) Issue(id);
    }
  }

  ChunkFetcher& FetcherFor(const HttpAuth& auth) {
    std::unique_ptr<ChunkFetcher>& fetcher = fetchers_[AuthKey(auth)];
    if (!fetcher) fetcher = MakeHttpChunkFetcher(loop_, auth, settings_, network_);
    return *fetcher;
  }

  void Issue(uint64_t id) {
    Operation& operation = operations_.at(id);
    FileTarget& target = targets_[operation.request.file];
    ChunkFetcher& fetcher = FetcherFor(target.target->auth);
    ChunkRequest inner = operation.request;
    inner.file = &target.file;
    operation.generation = target.generation;
    operation.fetcher = &fetcher;
    operation.inner_id = fetcher.Fetch(inner, [this, id](absl::Status status) { OnFetched(id, std::move(status)); });
  }

  void OnFetched(uint64_t id, absl::Status status) {
    auto it = operations_.find(id);
    if (it == operations_.end()) return;
    Operation& operation = it->second;
    operation.fetcher = nullptr;
    FileTarget& target = targets_[operation.request.file];
    if (status.ok() && operation.generation == target.generation) ++target.served;
    if (status.ok() || !RefusedByTarget(status)) return Finish(id, std::move(status));
    // A target that served chunks and then refuses has expired: that is no fault of the
    // chunk. A target refused before it served anything counts against it.
    if (operation.generation == target.generation && target.served == 0 &&
        ++operation.refreshes > kMaxRefreshesPerChunk) {
      return Finish(id, std::move(status));
    }
    if (target.generation != operation.generation && !target.resolving) return Issue(id);  // renewed meanwhile
    target.waiting.push_back(id);
    if (!target.resolving) {
      const FetchTarget refused = *target.target;
      StartResolve(operation.request.file, &refused);
    }
  }

  void Finish(uint64_t id, absl::Status status) {
    auto it = operations_.find(id);
    if (it == operations_.end()) return;
    DoneFn done = std::move(it->second.done);
    operations_.erase(it);
    done(std::move(status));  // may destroy this fetcher: nothing after it
  }

  EventLoop& loop_;
  const FillSettings settings_;
  const NetworkPolicy network_;
  std::shared_ptr<TargetResolver> resolver_;
  std::map<std::string, std::unique_ptr<ChunkFetcher>> fetchers_;  // by credentials
  std::map<const SourceFile*, FileTarget> targets_;
  std::map<uint64_t, Operation> operations_;
  uint64_t next_id_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

std::unique_ptr<ChunkFetcher> MakeResolvingChunkFetcher(EventLoop& loop, const FillSettings& settings,
                                                        NetworkPolicy network,
                                                        std::shared_ptr<TargetResolver> resolver) {
  return std::make_unique<ResolvingChunkFetcher>(loop, settings, std::move(network), std::move(resolver));
}

}  // namespace modelcache
