#pragma once
// The memory the agent gives source listings, across all fills. A listing (modelcache.json, S3
// ListObjectsV2 pages, HEAD answers) is read into memory whole, and an origin can send one
// that never ends: capped per listing only, eight of them took an agent to 2 GB. So every
// listing takes a slot (at most Limits::max_in_flight at once) and charges each byte it
// receives against Limits::max_total_bytes, shared by all listings, until it ends.
// Thread-safe: listings run on the worker threads.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace modelcache {

class ListingBudget {
 public:
  // The agent's `listing` config block (docs/configuration.md).
  struct Limits {
    uint64_t max_total_bytes = 256ull << 20;  // listing.maxTotalBytes
    uint32_t max_in_flight = 8;               // listing.maxInFlight
  };

  // One listing's share: its slot and the bytes it charged, given back when destroyed.
  class Listing {
   public:
    ~Listing();
    Listing(const Listing&) = delete;
    Listing& operator=(const Listing&) = delete;

    // Takes `bytes` more; false (and nothing taken) when all listings together would pass
    // max_total_bytes.
    bool Charge(uint64_t bytes);
    // Gives back `bytes` it took (at most what it holds): a buffer it charged was freed.
    void Refund(uint64_t bytes);
    uint64_t charged() const { return charged_; }
    // RESOURCE_EXHAUSTED for a response cut because the budget ran out: names `what` (the
    // request, "GET <url>"), the bytes it got, the limit and its config key.
    absl::Status CutError(std::string_view what) const;

   private:
    friend class ListingBudget;
    Listing(ListingBudget& budget, std::string source) : budget_(budget), source_(std::move(source)) {}
    ListingBudget& budget_;
    const std::string source_;
    uint64_t charged_ = 0;  // the listing's own thread only
  };

  explicit ListingBudget(Limits limits);
  // Listings must not outlive the budget.
  ~ListingBudget() = default;

  // A slot for a listing of `source` (its URI or URL, for messages). RESOURCE_EXHAUSTED
  // naming the source and listing.maxInFlight when that many listings run already.
  absl::StatusOr<std::unique_ptr<Listing>> Enter(std::string_view source);

  uint64_t bytes_in_use() const;
  uint32_t in_flight() const;
  const Limits& limits() const { return limits_; }

 private:
  void Return(uint64_t bytes, bool slot);

  const Limits limits_;
  mutable std::mutex mutex_;
  uint64_t bytes_in_use_ = 0;  // guarded by mutex_
  uint32_t in_flight_ = 0;     // guarded by mutex_
};

}  // namespace modelcache
