#pragma once
// The agent's cache: index of published models plus the fills in progress, with one fill
// per model (single-flight). Everything runs on the EventLoop; the public methods may be
// called from any thread (gRPC handlers) and post to the loop. Callbacks run on the loop
// thread and must not block.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/fill/fill_settings.h"
#include "agent/source/source.h"
#include "agent/store/layout.h"
#include "common/clock.h"
#include "modelcache/v1/agent.pb.h"

namespace modelcache {

class EventLoop;
class FillGate;

// What one fill did, reported when it ends (published or failed; not when cancelled).
struct FillStats {
  std::string name;
  std::string version;
  std::string scheme;    // of the source: "http", "https", "s3" or "file"
  absl::Status status;   // OK when the model was published
  uint64_t bytes_fetched = 0;  // from the source in this run; a resumed prefix is not counted
  uint32_t chunk_retries = 0;
  uint32_t ranges_ignored = 0;      // range requests answered with the whole file (HTTP 200)
  uint32_t whole_file_streams = 0;  // files taken as one stream (agent/fill/range_fallback.h)
  std::chrono::duration<double> duration{0};  // from the start of the fill to its end
};

struct ModelCacheOptions {
  std::filesystem::path cache_root;
  uint64_t quota_bytes = 0;  // 0: only the disk's free space limits fills
  FillSettings fill;
  SourceOptions sources;
  // Borrowed, outlives the cache. Null: single flight on this agent only. Otherwise every
  // fill first waits for its turn at the gate (cross-node single flight, agent/single_flight/fill_gate.h):
  // while another agent of the volume fills the model, Ensure callers get that fill's
  // progress, then READY as a hit.
  FillGate* fill_gate = nullptr;
  // Called on the loop thread after each fill of this agent ends (not for a model another
  // agent of the volume filled), e.g. for metrics; must not block.
  std::function<void(const FillStats&)> on_fill_finished;
  // Room on demand (FillRequest::make_room): called on the loop thread when a fill of
  // name@version is `bytes_short` bytes short of room; it calls `done` exactly once, on any
  // thread (the cache posts it to the loop). Empty: a fill that does not fit fails at once.
  std::function<void(const std::string& name, const std::string& version, uint64_t bytes_short,
                     std::function<void(absl::Status)> done)>
      make_room;
};

class ModelCache {
 public:
  using ProgressFn = std::function<void(const v1::EnsureProgress&)>;
  // Exactly once: the READY progress (path set), or the error.
  using DoneFn = std::function<void(absl::StatusOr<v1::EnsureProgress>)>;

  // Scans the volume (ScanVolume) and logs what it found. Blocking; call before serving.
  static absl::StatusOr<std::unique_ptr<ModelCache>> Open(EventLoop& loop, const Clock& clock,
                                                          ModelCacheOptions options);
  ~ModelCache();

  // Validates the request (INVALID_ARGUMENT), answers a hit, or joins the fill in progress
  // for the same model, or starts one. Returns a subscription id for Unsubscribe.
  // A hit is READY only after the published folder's manifest was read from the volume (off
  // the loop) and names the same source as the request (common/uri.h SameSource); a folder
  // that is gone (another agent's purge, removed by hand) is forgotten and filled again.
  // FAILED_PRECONDITION naming both sources (agent/hit_decision.h) when the model is cached,
  // or being filled here or by another agent of the volume, from another source: a caller
  // never gets another source's bytes, and never joins a fill of another source.
  uint64_t Ensure(const v1::EnsureRequest& request, ProgressFn on_progress, DoneFn on_done);
  // The caller went away: its callbacks are dropped; the fill goes on for the others.
  void Unsubscribe(uint64_t subscription);

  // What the index holds, re-checked against the volume on the calling thread (blocking file
  // I/O: call from a gRPC or reporter thread, not the loop). A model whose published folder
  // is gone is forgotten and not returned, so that `list`, `stat` and the usage reported to
  // the coordinator stop showing a model another agent of the volume purged.
  // Stat reads the manifest (NOT_FOUND when absent; the files and their source identity are
  // set); List only looks that each manifest is there.
  absl::StatusOr<v1::CachedModel> Stat(std::string_view name, std::string_view version);
  std::vector<v1::CachedModel> List();

  // Removes a published model: FAILED_PRECONDITION while a fill for it is running; otherwise
  // drops it from the index, renames its folder into trash/ (both on the loop, so no Ensure
  // can see a half-removed model) and empties the trash off the loop. Returns the model's
  // size (what the trash freed when the index did not know it); 0 when it is not on the
  // volume. Blocks until done; never call it on the loop thread.
  absl::StatusOr<uint64_t> Purge(std::string_view name, std::string_view version);

 private:
  class Impl;
  explicit ModelCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache
