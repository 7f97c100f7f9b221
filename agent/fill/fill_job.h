#pragma once
// One fill: a model (name@version) copied from its source into staging, verified and
// published. Everything runs on the EventLoop thread; blocking work (listing, preallocation,
// pwrite, SHA-256, fdatasync, journal, publish, trash) runs on the loop's thread pool.
//
//   QUEUED      listing (Source::List on the pool), path checks, space reservation
//   FILLING     chunks fetched in parallel (at most settings.concurrency in flight, a fixed
//               pool of buffers), each chunk written as it arrives and each file hashed
//               in order (hash_pipeline.h),
//               the resume journal saved every settings.journal_interval; a range answered
//               with HTTP 200 and the whole file is retried, and a file whose origin
//               ignores Range every time is taken as one stream (range_fallback.h)
//   PUBLISHING  files verified, manifest written, staging renamed into models/
//
// A fill that fails with UNAVAILABLE or DEADLINE_EXCEEDED (origin trouble) or is cancelled
// keeps its staging folder and journal, and the next fill of the model resumes: each
// unchanged file keeps its committed prefix and the chunks written past it, and only the
// rest is fetched (resume_plan.h). Any other failure removes the staging folder.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/fill/fill_settings.h"
#include "agent/source/source.h"
#include "agent/store/layout.h"
#include "common/clock.h"
#include "modelcache/v1/agent.pb.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

class EventLoop;
class SpaceReservations;

struct FillRequest {
  std::string name;
  std::string version;
  std::string source_uri;          // recorded in the manifest and the journal
  std::unique_ptr<Source> source;  // made from source_uri
  FillSettings settings;
  // Optional. Blocking, on the thread pool right before the staging folder is published: an
  // error (the cross-node fill lease was lost) fails the fill with it and keeps the staging
  // folder, which the agent that took the lease over is filling now.
  std::function<absl::Status()> before_publish;
  // Optional. Room on demand: called on the loop thread, once per fill, when the fill's bytes
  // do not fit on the volume; `bytes_short` is how many more it needs. It must call `done` on
  // the loop thread (or never, when the loop is stopping): OK when room was made (the fill
  // reserves again), otherwise the reason, added to the fill's RESOURCE_EXHAUSTED error.
  std::function<void(uint64_t bytes_short, std::function<void(absl::Status)> done)> make_room;
};

class FillJob {
 public:
  // At most about 4 per second, plus one per state change. Loop thread.
  using ProgressFn = std::function<void(const v1::EnsureProgress&)>;
  // Exactly once unless cancelled: the manifest of the published model (ours, or the one
  // another agent published first), or the error. Errors name the model, and the file when
  // one is at fault: "model x@1: file weights/a.bin: sha256 mismatch (want 3f.., got 9a..)".
  // The job may be destroyed from inside it.
  using DoneFn = std::function<void(absl::StatusOr<v1::Manifest>)>;

  // `loop`, `clock` and `space` must outlive the job. Construct, use and destroy on the
  // loop thread.
  FillJob(EventLoop& loop, const Clock& clock, const CacheLayout& layout,
          SpaceReservations& space, FillRequest request, ProgressFn on_progress, DoneFn on_done);
  // Cancels the fill if it is still running.
  ~FillJob();
  FillJob(const FillJob&) = delete;
  FillJob& operator=(const FillJob&) = delete;

  // Starts the fill.
  void Start();
  // Stops fetching and drops the callbacks (on_done is never called); releases the space
  // reservation and keeps the staging for resume. `drained` runs on the loop once no
  // blocking step of the fill is still running on the thread pool (at once if none is).
  void Cancel(std::function<void()> drained = nullptr);

  // The latest progress: state, bytes and files done and total, rate and ETA.
  const v1::EnsureProgress& Progress() const;

  // What this run of the fill did so far, for metrics.
  struct Counters {
    uint64_t bytes_fetched = 0;  // written from the source (a resumed prefix is not counted)
    uint32_t chunk_retries = 0;  // chunk fetches retried after a retryable error
    uint32_t ranges_ignored = 0;  // range requests answered with HTTP 200 and the whole file
    uint32_t whole_file_streams = 0;  // files taken as one stream (range_fallback.h)
  };
  const Counters& GetCounters() const;

 private:
  class Impl;
  // Shared with the thread pool's callbacks: the state lives until the last blocking step
  // has come back to the loop, even after the job was destroyed.
  std::shared_ptr<Impl> impl_;
};

// Whether a fill that failed with `status` leaves its staging folder for a later resume.
bool KeepsStagingAfter(const absl::Status& status);

}  // namespace modelcache
