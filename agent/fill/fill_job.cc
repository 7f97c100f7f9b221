#include "agent/fill/fill_job.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <exception>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <uv.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/fill/chunk_planner.h"
#include "agent/fill/file_writer.h"
#include "agent/fill/hash_pipeline.h"
#include "agent/fill/listing_check.h"
#include "agent/fill/range_fallback.h"
#include "agent/fill/resume_plan.h"
#include "agent/fill/retry_policy.h"
#include "agent/loop/event_loop.h"
#include "agent/source/chunk_fetcher.h"
#include "agent/store/index.h"
#include "agent/store/manifest.h"
#include "agent/store/publish.h"
#include "agent/store/space.h"
#include "agent/store/trash.h"
#include "common/fs.h"
#include "common/log_fields.h"
#include "common/names.h"
#include "common/status_annotate.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// Buffers beyond `concurrency`: completed chunks can wait for their file's head chunk
// while the network keeps `concurrency` requests busy.
constexpr size_t kSpareBuffers = 4;
constexpr uint64_t kProgressIntervalMs = 250;  // at most 4 updates per second
constexpr uint64_t kRateWindowMs = 5000;       // moving average of the rate

// Chunk buffers are aligned so that FileWriter can write them past the page cache, and
// large ones are backed by huge pages where the kernel allows (THP "madvise"): faulting in
// and pinning 4 KiB pages was a tenth of a fill's CPU.
struct FreeChunkBuffer {
  void operator()(std::byte* buffer) const { std::free(buffer); }
};
using ChunkBuffer = std::unique_ptr<std::byte[], FreeChunkBuffer>;

ChunkBuffer AllocateChunkBuffer(uint64_t size) {
  constexpr size_t kHugePage = 2 << 20;
  const size_t alignment = size >= kHugePage ? kHugePage : FileWriter::kDirectIoAlignment;
  const size_t rounded = (static_cast<size_t>(size) + alignment - 1) / alignment * alignment;
  void* memory = std::aligned_alloc(alignment, rounded);
  if (memory == nullptr) throw std::bad_alloc();
  if (alignment == kHugePage) (void)::madvise(memory, rounded, MADV_HUGEPAGE);  // a hint only
  return ChunkBuffer(static_cast<std::byte*>(memory));
}

// A uv timer whose handle outlives the object until libuv's close callback frees it, so it
// may be destroyed at any time on the loop thread, even from its own callback.
class Timer {
 public:
  Timer(uv_loop_t* loop, uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> fn)
      : handle_(new Handle{{}, std::move(fn)}) {
    uv_timer_init(loop, &handle_->timer);
    handle_->timer.data = handle_;
    uv_timer_start(
        &handle_->timer,
        [](uv_timer_t* timer) {
          auto* handle = static_cast<Handle*>(timer->data);
          handle->fn();
        },
        timeout_ms, repeat_ms);
  }
  ~Timer() {
    auto* raw = reinterpret_cast<uv_handle_t*>(&handle_->timer);
    if (uv_is_closing(raw)) {
      // EventLoop::Stop closed every handle already, and the loop no longer runs.
      delete handle_;
      return;
    }
    uv_timer_stop(&handle_->timer);
    uv_close(raw, [](uv_handle_t* closed) { delete static_cast<Handle*>(closed->data); });
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

 private:
  struct Handle {
    uv_timer_t timer;
    std::function<void()> fn;
  };
  Handle* handle_;
};

// Resume leaves files that are no longer listed in the tree; they must not be published.
absl::Status RemoveUnlisted(const std::filesystem::path& tree, const std::vector<SourceFile>& files) {
  std::set<std::string> listed;
  for (const SourceFile& file : files) listed.insert(file.path);
  std::vector<std::filesystem::path> strays;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(tree, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_directory(error) &&
        listed.count(it->path().lexically_relative(tree).generic_string()) == 0) {
      strays.push_back(it->path());
    }
  }
  if (error) return ErrnoStatus(error.value(), "list", tree);
  for (const auto& stray : strays) RETURN_IF_ERROR(RemoveTree(stray));
  return absl::OkStatus();
}

// A file that could not keep what the journal claimed (it had another size, or its prefix
// could not be read back) starts over: the journal says so before any chunk lands, so that a
// crash now does not resume from bytes that are gone.
absl::Status CorrectJournal(const std::filesystem::path& journal_path, v1::FillJournal journal,
                            const std::vector<std::unique_ptr<FileWriter>>& writers) {
  bool changed = false;
  for (size_t i = 0; i < writers.size(); ++i) {
    v1::FillJournal::File* entry = journal.mutable_files(static_cast<int>(i));
    const FileWriter& writer = *writers[i];
    if (writer.resumed_bytes() != entry->committed_bytes()) {
      entry->set_committed_bytes(writer.resumed_bytes());
      changed = true;
    }
    if (!writer.kept_past_prefix() && entry->written_size() > 0) {
      entry->clear_written();
      changed = true;
    }
  }
  return changed ? WriteJournal(journal_path, journal) : absl::OkStatus();
}

// On a worker: the staging tree for `files` (emptied first when `fresh`), the starting
// journal, and one open writer per file (into `writers`), each keeping what `start` says.
absl::Status PrepareStaging(const CacheLayout& layout, const std::string& name,
                            const std::string& version, const std::vector<SourceFile>& files,
                            const ResumeStart& start, bool fresh, bool direct_io,
                            std::vector<std::unique_ptr<FileWriter>>& writers) {
  std::filesystem::path tree = layout.StagingTree(name, version);
  if (fresh) RETURN_IF_ERROR(RemoveTree(layout.StagingFor(name, version)));
  RETURN_IF_ERROR(CreateDirectories(tree));
  // The journal first: a crash from here on leaves a staging that ScanVolume keeps.
  RETURN_IF_ERROR(WriteJournal(layout.JournalPath(name, version), start.journal));
  if (!fresh) RETURN_IF_ERROR(RemoveUnlisted(tree, files));
  for (size_t i = 0; i < files.size(); ++i) {
    std::filesystem::path target = tree / files[i].path;
    std::error_code error;
    if (std::filesystem::is_directory(target, error)) RETURN_IF_ERROR(RemoveTree(target));
    RETURN_IF_ERROR(CreateDirectories(target.parent_path()));
    auto writer = FileWriter::Open(target, files[i].size, start.resume_from[i], direct_io,
                                   start.keep_past_prefix[i]);
    if (!writer.ok()) return Annotate(writer.status(), absl::StrCat("file ", files[i].path));
    writers.push_back(std::move(writer).value());
  }
  return CorrectJournal(layout.JournalPath(name, version), start.journal, writers);
}

}  // namespace

bool KeepsStagingAfter(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

class FillJob::Impl : public std::enable_shared_from_this<FillJob::Impl> {
 public:
  Impl(EventLoop& loop, const Clock& clock, const CacheLayout& layout, SpaceReservations& space,
       FillRequest request, ProgressFn on_progress, DoneFn on_done)
      : loop_(loop),
        clock_(clock),
        layout_(layout),
        space_(space),
        name_(std::move(request.name)),
        version_(std::move(request.version)),
        source_uri_(std::move(request.source_uri)),
        source_(std::move(request.source)),
        settings_(request.settings),
        before_publish_(std::move(request.before_publish)),
        make_room_(std::move(request.make_room)),
        on_progress_(std::move(on_progress)),
        on_done_(std::move(on_done)),
        owner_(absl::StrCat("model ", name_, "@", version_)),
        random_(std::random_device{}()),
        retry_(settings_.retry, [this] {
          return std::uniform_real_distribution<double>(0.0, 1.0)(random_);
        }) {
    settings_.concurrency = std::max<uint32_t>(settings_.concurrency, 1);
    settings_.chunk_size = std::max<uint64_t>(settings_.chunk_size, 4096);
    progress_.set_state(v1::EnsureProgress::QUEUED);
  }

  void Start();
  void Cancel(std::function<void()> drained);

  v1::EnsureProgress progress_;
  FillJob::Counters counters_;  // for metrics

 private:
  enum class Phase { kIdle, kListing, kPreparing, kFilling, kPublishing, kCleaningUp, kDone, kCancelled };

  struct FileState {
    SourceFile source;
    std::shared_ptr<FileWriter> writer;  // shared with the worker writing a run
    HashPipeline pipeline;
    // Chunk writes that completed, and how many of them the last journal's fdatasync covered:
    // the journal claims only what is durable.
    uint64_t writes = 0;
    uint64_t synced_writes = 0;
    bool done = false;
    std::string sha256;  // lowercase hex, once done
    RangeAnswers range_answers;  // to range requests for part of this file
    bool streaming = false;      // taken as one stream (range_fallback.h): no more ranges
  };

  // A file taken as one stream: a GET without Range whose body is cut, as it arrives, into
  // the chunks the plan still wants, each written and hashed like a fetched chunk. The
  // rest of the body (chunks already fetched as ranges or on disk from an interrupted fill)
  // is skipped.
  struct WholeFileStream {
    std::map<uint64_t, uint64_t> wanted;  // offset -> length of the chunks still wanted
    bool fetching = false;
    uint64_t fetch_id = 0;
    uint32_t attempts = 0;
    std::unique_ptr<Timer> retry_timer;
    bool waiting_for_buffer = false;  // paused until a buffer is free (Pump resumes it)
    // The buffer of the chunk the stream took over (or of its piece when an attempt
    // failed), kept for its next piece: later chunks of the file may hold every other buffer
    // while they wait for that piece to be hashed before them.
    std::optional<size_t> spare;
    std::optional<size_t> buffer;     // the chunk being filled, at `piece_offset`
    uint64_t piece_offset = 0;
    uint64_t piece_filled = 0;
    bool finish_posted = false;
  };

  struct ActiveChunk {
    PlannedChunk chunk;
    size_t buffer = 0;
    uint32_t attempts = 0;
    bool fetching = false;
    uint64_t fetch_id = 0;
    std::unique_ptr<Timer> retry_timer;
  };

  struct Listing {
    std::optional<v1::Manifest> published;  // another agent of the volume published it
    std::vector<SourceFile> files;
    std::vector<SourceArchive> archives;
    absl::StatusOr<v1::FillJournal> journal = absl::NotFoundError("not read");
  };

  // Blocking `work` on the pool, `done` back on the loop (skipped once cancelled).
  void Run(std::function<absl::Status()> work, std::function<void(absl::Status)> done);
  void AfterWork();

  void OnListed(absl::Status status, Listing listing);
  // The fill does not fit (`full`): asks make_room_ once, then OnListed again or fails.
  void AskForRoom(absl::Status full, Listing listing);
  void OnPrepared(absl::Status status, std::vector<std::unique_ptr<FileWriter>> writers);
  void Pump();
  std::optional<size_t> AcquireBuffer();
  void Issue(uint64_t chunk_id);
  void OnFetched(uint64_t chunk_id, absl::Status status);
  void StreamWholeFile(size_t file_index);
  void IssueStream(size_t file_index);
  size_t TakeStreamData(size_t file_index, uint64_t offset, std::span<const std::byte> data);
  void OnStreamDone(size_t file_index, absl::Status status);
  void FinishStreamEarly(size_t file_index);
  void EndStream(size_t file_index);
  void ResumeWaitingStreams();
  void WriteChunk(size_t file_index, ReadyChunk chunk);
  void StartRun(size_t file_index);
  void OnRunDone(size_t file_index, const std::vector<ReadyChunk>& run, absl::Status status);
  void FileComplete(size_t file_index);
  void OnJournalTick();
  v1::FillJournal JournalSnapshot() const;
  void OnProgressTick();
  void StartArchives();
  void CountArchiveBytes();
  void OnArchivesDone(absl::Status status, std::vector<UnpackedFile> unpacked);
  void MaybePublish();
  void StartPublish();
  void ContinuePublish();
  void Fail(absl::Status status);
  void ContinueCleanup();
  void StopActivity();
  void ReleaseReservation();
  void Deliver(absl::StatusOr<v1::Manifest> result);
  void Emit();

  absl::Status ModelError(const absl::Status& status) const {
    return Annotate(status, absl::StrCat("model ", name_, "@", version_));
  }
  absl::Status FileError(size_t file_index, const absl::Status& status) const {
    return Annotate(status, absl::StrCat("model ", name_, "@", version_, ": file ",
                                         files_[file_index].source.path));
  }

  EventLoop& loop_;
  const Clock& clock_;
  const CacheLayout layout_;
  SpaceReservations& space_;
  const std::string name_;
  const std::string version_;
  const std::string source_uri_;
  std::unique_ptr<Source> source_;  // List() runs on the pool; nothing else touches it then
  FillSettings settings_;
  std::function<absl::Status()> before_publish_;  // called on the pool only
  std::function<void(uint64_t, std::function<void(absl::Status)>)> make_room_;  // may be empty
  bool asked_for_room_ = false;
  bool keep_staging_ = false;  // before_publish_ refused: the staging is someone else's now
  ProgressFn on_progress_;
  DoneFn on_done_;
  const std::string owner_;  // the space reservation's owner
  std::mt19937_64 random_;
  RetryPolicy retry_;

  Phase phase_ = Phase::kIdle;
  int pending_work_ = 0;  // Run() calls whose `done` has not run yet
  std::function<void()> drained_;
  bool reserved_ = false;
  bool journal_running_ = false;
  bool publish_started_ = false;
  bool cleanup_started_ = false;
  absl::Status failure_;

  std::vector<FileState> files_;
  // What an interrupted fill left on disk, per file (from OnListed until OnPrepared).
  std::vector<FileResume> resume_;
  // Bumped when a chunk is written or hashed: the journal is saved again when it moved.
  uint64_t journal_changes_ = 0;
  uint64_t journaled_changes_ = 0;
  std::vector<PlannedChunk> plan_;  // chunks in the order they are started
  size_t next_planned_ = 0;
  std::unique_ptr<ChunkFetcher> fetcher_;
  std::map<uint64_t, ActiveChunk> chunks_;  // fetching or waiting to retry
  std::map<size_t, WholeFileStream> streams_;  // by file index; fetching or waiting to retry
  RangeAnswers range_answers_;              // of the whole fill
  uint64_t next_chunk_id_ = 1;
  size_t fetching_ = 0;
  std::vector<ChunkBuffer> buffers_;
  std::vector<size_t> free_buffers_;
  size_t max_buffers_ = 0;
  uint64_t reserved_bytes_ = 0;  // what space_ holds for this fill

  // Archives (Source::Archives) unpack on the pool while the listed files fill.
  std::vector<SourceArchive> archives_;
  uint64_t archive_bytes_ = 0;  // their compressed sizes
  bool archives_done_ = true;
  std::vector<UnpackedFile> unpacked_;
  std::shared_ptr<std::atomic<uint64_t>> archive_bytes_read_ = std::make_shared<std::atomic<uint64_t>>(0);
  uint64_t archive_bytes_counted_ = 0;  // of archive_bytes_read_, already in progress_
  std::shared_ptr<std::atomic<bool>> archives_cancelled_ = std::make_shared<std::atomic<bool>>(false);

  std::unique_ptr<Timer> journal_timer_;
  std::unique_ptr<Timer> progress_timer_;
  std::deque<std::pair<uint64_t, uint64_t>> rate_samples_;  // (uv_now ms, bytes_done)
  uint64_t emitted_bytes_ = 0;
  uint32_t emitted_files_ = 0;
};

void FillJob::Impl::Run(std::function<absl::Status()> work, std::function<void(absl::Status)> done) {
  ++pending_work_;
  auto result = std::make_shared<absl::Status>();
  loop_.RunBlocking(
      [work = std::move(work), result] {
        try {
          *result = work();
        } catch (const std::exception& error) {
          *result = absl::InternalError(absl::StrCat("unexpected exception: ", error.what()));
        } catch (...) {
          *result = absl::InternalError("unexpected exception");
        }
      },
      [self = shared_from_this(), done = std::move(done), result] {
        --self->pending_work_;
        if (self->phase_ != Phase::kCancelled) done(*result);
        self->AfterWork();
      });
}

void FillJob::Impl::AfterWork() {
  switch (phase_) {
    case Phase::kCleaningUp:
      ContinueCleanup();
      break;
    case Phase::kPublishing:
      ContinuePublish();
      break;
    case Phase::kCancelled:
      if (pending_work_ == 0 && drained_) std::exchange(drained_, nullptr)();
      break;
    default:
      break;
  }
}

void FillJob::Impl::Start() {
  if (phase_ != Phase::kIdle) return;
  phase_ = Phase::kListing;
  Emit();
  auto listing = std::make_shared<Listing>();
  Source* source = source_.get();
  std::filesystem::path journal_path = layout_.JournalPath(name_, version_);
  std::filesystem::path manifest_path = layout_.ManifestPath(name_, version_);
  Run(
      [source, journal_path, manifest_path, listing] {
        if (auto manifest = ReadManifest(manifest_path); manifest.ok()) {
          listing->published = std::move(manifest).value();
          return absl::OkStatus();
        }
        listing->journal = ReadJournal(journal_path);
        ASSIGN_OR_RETURN(listing->files, source->List());
        listing->archives = source->Archives();
        return absl::OkStatus();
      },
      [this, listing](absl::Status status) { OnListed(std::move(status), std::move(*listing)); });
}

void FillJob::Impl::OnListed(absl::Status status, Listing listing) {
  if (phase_ != Phase::kListing) return;
  if (status.ok() && listing.published) {
    spdlog::info("fill not needed: published meanwhile on this volume {}",
                 LogFields().Add("model", name_).Add("version", version_));
    progress_.set_state(v1::EnsureProgress::READY);
    progress_.set_path(layout_.ModelDir(name_, version_).string());
    return Deliver(*std::move(listing.published));
  }
  if (status.ok()) status = CheckListing(listing.files, !listing.archives.empty());
  if (!status.ok()) return Fail(ModelError(status));

  // A journal from an earlier fill of the same model from the same source lets unchanged
  // files (same size and etag) keep their committed prefix and the chunks written past it.
  const v1::FillJournal* journal = listing.journal.ok() ? &*listing.journal : nullptr;
  resume_ = PlanResume(listing.files, journal, name_, version_, source_uri_);
  ResumeStart start = StartFrom(listing.files, resume_, name_, version_, source_uri_);
  // CheckListing made sure the sum of the sizes fits. An archive's unpacked size is known
  // only once it is read: its compressed size is reserved now (weights hardly compress), and
  // the rest once it is unpacked.
  uint64_t total_bytes = start.total_bytes;
  for (const SourceArchive& archive : listing.archives) {
    total_bytes += archive.size;
    archive_bytes_ += archive.size;
  }
  archives_ = std::move(listing.archives);
  archives_done_ = archives_.empty();
  reserved_bytes_ = total_bytes - start.prefix_bytes;
  absl::Status reserved = space_.Reserve(owner_, reserved_bytes_);
  if (!reserved.ok()) {
    if (absl::IsResourceExhausted(reserved) && make_room_ && !asked_for_room_) {
      listing.archives = std::move(archives_);  // OnListed runs again once there is room
      archive_bytes_ = 0;
      return AskForRoom(std::move(reserved), std::move(listing));
    }
    return Fail(reserved);  // names the owner: "model x@1: needs ..."
  }
  reserved_ = true;
  if (start.prefix_bytes + start.written_bytes > 0) {
    spdlog::info("fill resuming from staging {}",
                 LogFields()
                     .Add("model", name_)
                     .Add("version", version_)
                     .Add("bytes", start.prefix_bytes + start.written_bytes)
                     .Add("prefix_bytes", start.prefix_bytes)
                     .Add("written_chunk_bytes", start.written_bytes)
                     .Add("total_bytes", total_bytes));
  }
  for (const SourceFile& file : listing.files) {
    FileState state;
    state.source = file;
    files_.push_back(std::move(state));
  }
  progress_.set_bytes_total(total_bytes);
  progress_.set_files_total(static_cast<uint32_t>(files_.size()));
  phase_ = Phase::kPreparing;

  const bool fresh = journal == nullptr || journal->name() != name_ ||
                     journal->version() != version_ || journal->source() != source_uri_;
  auto writers = std::make_shared<std::vector<std::unique_ptr<FileWriter>>>();
  Run(
      [layout = layout_, name = name_, version = version_, files = std::move(listing.files),
       start = std::move(start), fresh, direct_io = settings_.direct_io, writers] {
        return PrepareStaging(layout, name, version, files, start, fresh, direct_io, *writers);
      },
      [this, writers](absl::Status status) { OnPrepared(std::move(status), std::move(*writers)); });
}

void FillJob::Impl::OnPrepared(absl::Status status,
                               std::vector<std::unique_ptr<FileWriter>> writers) {
  if (phase_ != Phase::kPreparing) return;
  if (!status.ok()) return Fail(ModelError(status));
  phase_ = Phase::kFilling;
  progress_.set_state(v1::EnsureProgress::FILLING);

  std::vector<uint64_t> sizes;
  std::vector<FileResume> present(files_.size());
  uint64_t bytes_done = 0;
  for (size_t i = 0; i < files_.size(); ++i) {
    FileState& file = files_[i];
    file.writer = std::move(writers[i]);
    file.pipeline = HashPipeline(file.writer->resumed_bytes());
    present[i].prefix = file.writer->resumed_bytes();
    // Chunks the interrupted fill wrote past its prefix: hashed from disk in their turn.
    if (file.writer->kept_past_prefix() && present[i].prefix == resume_[i].prefix) {
      present[i].written = resume_[i].written;
      for (const ByteRange& range : present[i].written) {
        file.pipeline.Add(ReadyChunk{.offset = range.offset, .on_disk_bytes = range.length});
      }
    }
    bytes_done += present[i].Bytes();
    sizes.push_back(file.source.size);
  }
  resume_.clear();
  absl::StatusOr<std::vector<PlannedChunk>> plan = PlanChunks(sizes, present, settings_.chunk_size);
  if (!plan.ok()) return Fail(ModelError(plan.status()));
  plan_ = std::move(plan).value();
  progress_.set_bytes_done(bytes_done);
  max_buffers_ = settings_.concurrency + kSpareBuffers;
  fetcher_ = source_->MakeChunkFetcher(loop_, settings_);
  rate_samples_.emplace_back(uv_now(loop_.Raw()), bytes_done);
  Emit();

  uint64_t journal_ms = std::max<int64_t>(settings_.journal_interval.count(), 10);
  journal_timer_ = std::make_unique<Timer>(loop_.Raw(), journal_ms, journal_ms,
                                           [this] { OnJournalTick(); });
  progress_timer_ = std::make_unique<Timer>(loop_.Raw(), kProgressIntervalMs, kProgressIntervalMs,
                                            [this] { OnProgressTick(); });
  for (size_t i = 0; i < files_.size() && phase_ == Phase::kFilling; ++i) {
    if (files_[i].writer->complete()) FileComplete(i);
  }
  for (size_t i = 0; i < files_.size() && phase_ == Phase::kFilling; ++i) StartRun(i);
  if (phase_ == Phase::kFilling && !archives_.empty()) StartArchives();
  if (phase_ == Phase::kFilling) MaybePublish();
  if (phase_ == Phase::kFilling) Pump();
}

void FillJob::Impl::StartArchives() {
  ArchiveJob job;
  job.tree = layout_.StagingTree(name_, version_);
  for (const FileState& file : files_) job.listed.insert(file.source.path);
  // A decompression bomb stops here, long before the volume fills up.
  job.max_output_bytes = std::max<uint64_t>(4 * archive_bytes_, archive_bytes_ + (1ull << 30));
  job.stall_timeout = settings_.stall_timeout;
  job.max_attempts = settings_.retry.max_attempts;
  job.on_bytes = [read = archive_bytes_read_](uint64_t bytes) { read->fetch_add(bytes); };
  job.cancelled = [cancelled = archives_cancelled_] { return cancelled->load(); };
  auto unpacked = std::make_shared<std::vector<UnpackedFile>>();
  Source* source = source_.get();
  Run(
      [source, job = std::move(job), unpacked]() -> absl::Status {
        ASSIGN_OR_RETURN(*unpacked, source->UnpackArchives(job));
        return absl::OkStatus();
      },
      [this, unpacked](absl::Status status) { OnArchivesDone(std::move(status), std::move(*unpacked)); });
}

void FillJob::Impl::CountArchiveBytes() {
  const uint64_t read = archive_bytes_read_->load();
  if (read <= archive_bytes_counted_) return;
  progress_.set_bytes_done(progress_.bytes_done() + (read - archive_bytes_counted_));
  counters_.bytes_fetched += read - archive_bytes_counted_;
  archive_bytes_counted_ = read;
}

void FillJob::Impl::OnArchivesDone(absl::Status status, std::vector<UnpackedFile> unpacked) {
  if (phase_ != Phase::kFilling) return;
  CountArchiveBytes();
  if (!status.ok()) return Fail(ModelError(status));
  uint64_t unpacked_bytes = 0;
  for (const UnpackedFile& file : unpacked) unpacked_bytes += file.size;
  if (unpacked_bytes > archive_bytes_) {
    reserved_bytes_ += unpacked_bytes - archive_bytes_;
    absl::Status reserved = space_.Reserve(owner_, reserved_bytes_);
    if (!reserved.ok()) return Fail(reserved);
  }
  progress_.set_files_total(progress_.files_total() + static_cast<uint32_t>(unpacked.size()));
  progress_.set_files_done(progress_.files_done() + static_cast<uint32_t>(unpacked.size()));
  unpacked_ = std::move(unpacked);
  archives_done_ = true;
  MaybePublish();
}

void FillJob::Impl::AskForRoom(absl::Status full, Listing listing) {
  asked_for_room_ = true;
  absl::StatusOr<uint64_t> short_by = space_.Shortfall(owner_, reserved_bytes_);
  if (!short_by.ok()) return Fail(short_by.status());
  spdlog::info("fill needs room {}", LogFields()
                                         .Add("model", name_)
                                         .Add("version", version_)
                                         .Add("bytes_short", *short_by)
                                         .Add("next", "asking the coordinator for room on demand"));
  auto retry = std::make_shared<Listing>(std::move(listing));
  make_room_(*short_by, [weak = weak_from_this(), full = std::move(full), retry](absl::Status made) {
    std::shared_ptr<Impl> self = weak.lock();
    if (!self || self->phase_ != Phase::kListing) return;  // cancelled meanwhile
    if (!made.ok()) {
      return self->Fail(absl::ResourceExhaustedError(
          absl::StrCat(full.message(), "; ", made.message())));
    }
    self->OnListed(absl::OkStatus(), std::move(*retry));
  });
}

void FillJob::Impl::MaybePublish() {
  if (phase_ != Phase::kFilling || !archives_done_) return;
  for (const FileState& file : files_) {
    if (!file.done) return;
  }
  StartPublish();
}

std::optional<size_t> FillJob::Impl::AcquireBuffer() {
  if (!free_buffers_.empty()) {
    size_t buffer = free_buffers_.back();
    free_buffers_.pop_back();
    return buffer;
  }
  if (buffers_.size() >= max_buffers_) return std::nullopt;
  buffers_.push_back(AllocateChunkBuffer(settings_.chunk_size));
  return buffers_.size() - 1;
}

void FillJob::Impl::Pump() {
  // A stream waiting for a buffer gets the next free one before any new range request, so
  // that it cannot be starved. Resuming may take every free buffer.
  ResumeWaitingStreams();
  // Chunks go out in file order, so every waiting chunk waits for an earlier one that holds
  // a buffer and is in flight or retrying: running out of buffers cannot deadlock.
  while (phase_ == Phase::kFilling && fetching_ < settings_.concurrency) {
    while (next_planned_ < plan_.size() && files_[plan_[next_planned_].file_index].streaming) {
      ++next_planned_;  // its stream takes this chunk
    }
    if (next_planned_ == plan_.size()) return;
    const size_t file_index = plan_[next_planned_].file_index;
    if (files_[file_index].range_answers.served == 0 && OriginIgnoresRanges(range_answers_)) {
      StreamWholeFile(file_index);
      continue;
    }
    std::optional<size_t> buffer = AcquireBuffer();
    if (!buffer) return;
    uint64_t chunk_id = next_chunk_id_++;
    ActiveChunk& active = chunks_[chunk_id];
    active.chunk = plan_[next_planned_++];
    active.buffer = *buffer;
    Issue(chunk_id);
  }
}

void FillJob::Impl::Issue(uint64_t chunk_id) {
  ActiveChunk& active = chunks_.at(chunk_id);
  active.fetching = true;
  ++fetching_;
  ChunkRequest request;
  request.file = &files_[active.chunk.file_index].source;
  request.offset = active.chunk.offset;
  request.buffer = std::span<std::byte>(buffers_[active.buffer].get(), active.chunk.length);
  // Fetcher callbacks capture `this` only: StopActivity cancels every fetch before the
  // job can go away, and a cancelled fetch never calls back.
  uint64_t fetch_id = fetcher_->Fetch(
      request, [this, chunk_id](absl::Status status) { OnFetched(chunk_id, std::move(status)); });
  auto it = chunks_.find(chunk_id);
  if (it != chunks_.end() && it->second.fetching) it->second.fetch_id = fetch_id;
}

void FillJob::Impl::OnFetched(uint64_t chunk_id, absl::Status status) {
  auto it = chunks_.find(chunk_id);
  if (it == chunks_.end() || !it->second.fetching) return;
  ActiveChunk& active = it->second;
  active.fetching = false;
  --fetching_;
  if (phase_ != Phase::kFilling) return;
  const size_t file_index = active.chunk.file_index;
  const bool part_of_file = active.chunk.length != files_[file_index].source.size;

  if (!status.ok()) {
    ++active.attempts;
    const bool can_retry = retry_.ShouldRetry(active.attempts, status);
    if (IsRangeIgnored(status)) {
      ++counters_.ranges_ignored;
      ++files_[file_index].range_answers.ignored;
      ++range_answers_.ignored;
      if (ShouldStreamWholeFile(files_[file_index].range_answers, range_answers_, can_retry)) {
        StreamWholeFile(file_index);
        Pump();
        return;
      }
    }
    if (can_retry) {
      ++counters_.chunk_retries;
      std::chrono::milliseconds delay = retry_.Backoff(active.attempts, status);
      spdlog::debug("fill {}@{}: retrying chunk in {} ms after: {}", name_, version_,
                    delay.count(), status);
      // The chunk keeps its buffer while it waits, so its file's run cannot starve.
      active.retry_timer = std::make_unique<Timer>(
          loop_.Raw(), static_cast<uint64_t>(delay.count()), 0, [this, chunk_id] {
            auto retry = chunks_.find(chunk_id);
            if (retry == chunks_.end() || phase_ != Phase::kFilling) return;
            retry->second.retry_timer.reset();
            Issue(chunk_id);
          });
      Pump();
      return;
    }
    return Fail(FileError(file_index, status));
  }

  if (part_of_file) {
    ++files_[file_index].range_answers.served;
    ++range_answers_.served;
  }
  ReadyChunk ready{active.chunk.offset,
                   std::span<const std::byte>(buffers_[active.buffer].get(), active.chunk.length),
                   active.buffer};
  chunks_.erase(it);
  WriteChunk(file_index, ready);
  Pump();
}

void FillJob::Impl::StreamWholeFile(size_t file_index) {
  FileState& file = files_[file_index];
  if (file.streaming) return;
  file.streaming = true;
  ++counters_.whole_file_streams;
  WholeFileStream& stream = streams_[file_index];
  // Its chunks in flight or waiting for a retry give way to the stream, and so do the
  // chunks not started yet (Pump skips them from now on).
  for (auto it = chunks_.begin(); it != chunks_.end();) {
    ActiveChunk& active = it->second;
    if (active.chunk.file_index != file_index) {
      ++it;
      continue;
    }
    if (active.fetching) {
      fetcher_->Cancel(active.fetch_id);
      --fetching_;
    }
    if (!stream.spare) {
      stream.spare = active.buffer;
    } else {
      free_buffers_.push_back(active.buffer);
    }
    stream.wanted.emplace(active.chunk.offset, active.chunk.length);
    it = chunks_.erase(it);
  }
  for (size_t i = next_planned_; i < plan_.size(); ++i) {
    if (plan_[i].file_index == file_index) stream.wanted.emplace(plan_[i].offset, plan_[i].length);
  }
  spdlog::info("origin ignores range requests: fetching the file as one stream {}",
               LogFields()
                   .Add("model", name_)
                   .Add("version", version_)
                   .Add("file", file.source.path)
                   .Add("ranges_ignored", file.range_answers.ignored)
                   .Add("ranges_served", file.range_answers.served));
  if (stream.wanted.empty()) {
    EndStream(file_index);
    return;
  }
  IssueStream(file_index);
}

void FillJob::Impl::EndStream(size_t file_index) {
  auto found = streams_.find(file_index);
  if (found == streams_.end()) return;
  if (found->second.spare) free_buffers_.push_back(*found->second.spare);
  if (found->second.buffer) free_buffers_.push_back(*found->second.buffer);
  streams_.erase(found);
}

void FillJob::Impl::IssueStream(size_t file_index) {
  WholeFileStream& stream = streams_.at(file_index);
  stream.fetching = true;
  stream.waiting_for_buffer = false;
  stream.finish_posted = false;
  ++fetching_;
  // The callbacks capture `this` only: StopActivity cancels the stream before the job goes.
  uint64_t fetch_id = fetcher_->Stream(
      files_[file_index].source,
      [this, file_index](uint64_t offset, std::span<const std::byte> data) {
        return TakeStreamData(file_index, offset, data);
      },
      [this, file_index](absl::Status status) { OnStreamDone(file_index, std::move(status)); });
  if (fetch_id == 0) {
    stream.fetching = false;
    --fetching_;
    return Fail(FileError(file_index, absl::InternalError("this source cannot be read as one stream")));
  }
  stream.fetch_id = fetch_id;
}

size_t FillJob::Impl::TakeStreamData(size_t file_index, uint64_t offset, std::span<const std::byte> data) {
  // Runs inside the fetcher's callbacks: it may write chunks and take buffers, but must not
  // call the fetcher or end the fill.
  auto found = streams_.find(file_index);
  if (phase_ != Phase::kFilling || found == streams_.end()) return data.size();
  WholeFileStream& stream = found->second;
  size_t taken = 0;
  while (taken < data.size()) {
    const uint64_t at = offset + taken;
    if (stream.buffer) {
      const uint64_t length = stream.wanted.at(stream.piece_offset);
      const uint64_t room = length - stream.piece_filled;
      const size_t bytes = static_cast<size_t>(std::min<uint64_t>(room, data.size() - taken));
      std::memcpy(buffers_[*stream.buffer].get() + stream.piece_filled, data.data() + taken, bytes);
      stream.piece_filled += bytes;
      taken += bytes;
      if (stream.piece_filled == length) {
        ReadyChunk ready{stream.piece_offset,
                         std::span<const std::byte>(buffers_[*stream.buffer].get(), length),
                         *stream.buffer};
        stream.wanted.erase(stream.piece_offset);
        stream.buffer.reset();
        stream.piece_filled = 0;
        WriteChunk(file_index, ready);
      }
      continue;
    }
    if (stream.wanted.empty()) {
      // Everything this fill still wanted from the file is here; the rest of the body is not.
      if (!stream.finish_posted) {
        stream.finish_posted = true;
        loop_.Post([self = shared_from_this(), file_index] { self->FinishStreamEarly(file_index); });
      }
      return data.size();
    }
    auto next = stream.wanted.lower_bound(at);
    if (next != stream.wanted.end() && next->first == at) {
      std::optional<size_t> buffer = std::exchange(stream.spare, std::nullopt);
      if (!buffer) buffer = AcquireBuffer();
      if (!buffer) {
        stream.waiting_for_buffer = true;  // the fetcher pauses; Pump resumes it
        return taken;
      }
      stream.buffer = *buffer;
      stream.piece_offset = at;
      stream.piece_filled = 0;
      continue;
    }
    // Bytes no chunk wants (already fetched, or a resumed prefix): skip to the next one.
    const uint64_t skip_to = next == stream.wanted.end() ? offset + data.size() : next->first;
    taken += static_cast<size_t>(std::min<uint64_t>(skip_to - at, data.size() - taken));
  }
  return taken;
}

void FillJob::Impl::FinishStreamEarly(size_t file_index) {
  auto found = streams_.find(file_index);
  if (phase_ != Phase::kFilling || found == streams_.end() || !found->second.fetching ||
      !found->second.wanted.empty()) {
    return;
  }
  fetcher_->Cancel(found->second.fetch_id);
  --fetching_;
  EndStream(file_index);
  Pump();
}

void FillJob::Impl::OnStreamDone(size_t file_index, absl::Status status) {
  auto found = streams_.find(file_index);
  if (found == streams_.end() || !found->second.fetching) return;
  WholeFileStream& stream = found->second;
  stream.fetching = false;
  --fetching_;
  if (phase_ != Phase::kFilling) return;
  if (status.ok() && !stream.wanted.empty()) {
    status = absl::UnavailableError(absl::StrCat("GET ", files_[file_index].source.location,
                                                 " (whole file): the body ended before offset ",
                                                 stream.wanted.begin()->first));
  }
  if (status.ok()) {
    EndStream(file_index);
    Pump();
    return;
  }
  // The chunk being filled starts over with the next attempt, which reads from byte 0; its
  // buffer waits for it.
  if (stream.buffer && !stream.spare) {
    stream.spare = stream.buffer;
  } else if (stream.buffer) {
    free_buffers_.push_back(*stream.buffer);
  }
  stream.buffer.reset();
  stream.piece_filled = 0;
  ++stream.attempts;
  if (!retry_.ShouldRetry(stream.attempts, status)) return Fail(FileError(file_index, status));
  ++counters_.chunk_retries;
  std::chrono::milliseconds delay = retry_.Backoff(stream.attempts);
  spdlog::debug("fill {}@{}: retrying the stream of {} in {} ms after: {}", name_, version_,
                files_[file_index].source.path, delay.count(), status);
  stream.retry_timer = std::make_unique<Timer>(
      loop_.Raw(), static_cast<uint64_t>(delay.count()), 0, [this, file_index] {
        auto retry = streams_.find(file_index);
        if (retry == streams_.end() || phase_ != Phase::kFilling) return;
        retry->second.retry_timer.reset();
        IssueStream(file_index);
      });
  Pump();
}

void FillJob::Impl::ResumeWaitingStreams() {
  for (auto& [file_index, stream] : streams_) {
    if (phase_ != Phase::kFilling) return;
    if (!stream.fetching || !stream.waiting_for_buffer) continue;
    if (free_buffers_.empty() && buffers_.size() >= max_buffers_) return;
    stream.waiting_for_buffer = false;
    fetcher_->Resume(stream.fetch_id);  // may call TakeStreamData, which may wait again
    if (stream.waiting_for_buffer) return;
  }
}

void FillJob::Impl::WriteChunk(size_t file_index, ReadyChunk chunk) {
  // Written at once, in any order and in parallel; hashed in file order once written, so
  // the committed prefix (what the journal claims) is always on disk.
  Run([writer = files_[file_index].writer, chunk] { return writer->WriteAt(chunk.offset, chunk.data); },
      [this, file_index, chunk](absl::Status status) {
        if (!status.ok()) {
          free_buffers_.push_back(chunk.buffer);
          return Fail(FileError(file_index, status));
        }
        if (phase_ != Phase::kFilling) {
          free_buffers_.push_back(chunk.buffer);
          return;
        }
        ++files_[file_index].writes;
        ++journal_changes_;
        files_[file_index].pipeline.Add(chunk);
        StartRun(file_index);
      });
}

void FillJob::Impl::StartRun(size_t file_index) {
  FileState& file = files_[file_index];
  std::vector<ReadyChunk> run = file.pipeline.TakeRun();
  if (run.empty()) return;
  auto shared_run = std::make_shared<std::vector<ReadyChunk>>(std::move(run));
  Run([writer = file.writer, shared_run] { return writer->HashRun(*shared_run); },
      [this, file_index, shared_run](absl::Status status) {
        OnRunDone(file_index, *shared_run, std::move(status));
      });
}

void FillJob::Impl::OnRunDone(size_t file_index, const std::vector<ReadyChunk>& run,
                              absl::Status status) {
  uint64_t bytes = 0;
  uint64_t fetched = 0;  // chunks from an interrupted fill were counted as done at the start
  for (const ReadyChunk& chunk : run) {
    bytes += chunk.Length();
    if (chunk.OnDisk()) continue;
    fetched += chunk.Length();
    free_buffers_.push_back(chunk.buffer);
  }
  FileState& file = files_[file_index];
  if (!status.ok()) {
    file.pipeline.RunFailed();
    return Fail(FileError(file_index, status));
  }
  // Counted even when the fill is failing: the journal saved for a resume can claim it.
  file.pipeline.RunCommitted(bytes);
  ++journal_changes_;
  progress_.set_bytes_done(progress_.bytes_done() + fetched);
  counters_.bytes_fetched += fetched;
  if (phase_ != Phase::kFilling) return;
  if (file.writer->complete()) FileComplete(file_index);
  if (phase_ != Phase::kFilling) return;
  StartRun(file_index);
  Pump();
}

void FillJob::Impl::FileComplete(size_t file_index) {
  FileState& file = files_[file_index];
  if (file.done) return;
  std::string want = absl::AsciiStrToLower(file.source.expected_sha256);
  const std::string& got = file.writer->Sha256Hex();
  if (!want.empty() && want != got) {
    return Fail(FileError(file_index, absl::DataLossError(absl::StrCat(
                                          "sha256 mismatch (want ", want, ", got ", got, ")"))));
  }
  file.done = true;
  file.sha256 = got;
  progress_.set_files_done(progress_.files_done() + 1);
  MaybePublish();
}

v1::FillJournal FillJob::Impl::JournalSnapshot() const {
  v1::FillJournal journal;
  journal.set_name(name_);
  journal.set_version(version_);
  journal.set_source(source_uri_);
  for (const FileState& file : files_) {
    auto* entry = journal.add_files();
    entry->set_path(file.source.path);
    entry->set_size(file.source.size);
    entry->set_etag(file.source.etag);
    entry->set_committed_bytes(file.pipeline.committed_bytes());
    for (const ByteRange& range : file.pipeline.Uncommitted()) {
      auto* written = entry->add_written();
      written->set_offset(range.offset);
      written->set_length(range.length);
    }
  }
  return journal;
}

void FillJob::Impl::OnJournalTick() {
  if (phase_ != Phase::kFilling || journal_running_ || journal_changes_ == journaled_changes_) {
    return;
  }
  std::vector<std::shared_ptr<FileWriter>> dirty;
  std::vector<std::pair<size_t, uint64_t>> writes;
  for (size_t i = 0; i < files_.size(); ++i) {
    if (files_[i].writes > files_[i].synced_writes) {
      dirty.push_back(files_[i].writer);
      writes.emplace_back(i, files_[i].writes);
    }
  }
  journal_running_ = true;
  // The snapshot claims chunks whose pwrite returned (committed or waiting to be hashed);
  // fdatasync makes them durable before the journal says so.
  Run(
      [dirty = std::move(dirty), journal = JournalSnapshot(),
       path = layout_.JournalPath(name_, version_)]() -> absl::Status {
        for (const auto& writer : dirty) RETURN_IF_ERROR(writer->Sync());
        return WriteJournal(path, journal);
      },
      [this, writes = std::move(writes), changes = journal_changes_](absl::Status status) {
        journal_running_ = false;
        if (phase_ != Phase::kFilling) return;
        if (!status.ok()) return Fail(ModelError(status));
        journaled_changes_ = changes;
        for (const auto& [file, count] : writes) {
          files_[file].synced_writes = std::max(files_[file].synced_writes, count);
        }
      });
}

void FillJob::Impl::OnProgressTick() {
  CountArchiveBytes();
  uint64_t now = uv_now(loop_.Raw());
  rate_samples_.emplace_back(now, progress_.bytes_done());
  while (rate_samples_.size() > 2 && now - rate_samples_.front().first > kRateWindowMs) {
    rate_samples_.pop_front();
  }
  const auto& [first_ms, first_bytes] = rate_samples_.front();
  double seconds = static_cast<double>(now - first_ms) / 1000.0;
  double rate = seconds > 0 ? static_cast<double>(progress_.bytes_done() - first_bytes) / seconds : 0;
  progress_.set_bytes_per_second(rate);
  progress_.set_eta_seconds(
      rate > 0 ? static_cast<double>(progress_.bytes_total() - progress_.bytes_done()) / rate : 0);
  if (progress_.bytes_done() != emitted_bytes_ || progress_.files_done() != emitted_files_) Emit();
}

void FillJob::Impl::StartPublish() {
  phase_ = Phase::kPublishing;
  journal_timer_.reset();
  progress_timer_.reset();
  progress_.set_state(v1::EnsureProgress::PUBLISHING);
  progress_.set_eta_seconds(0);
  Emit();
  ContinuePublish();
}

void FillJob::Impl::ContinuePublish() {
  // A journal write may still be running: publishing moves the folder it writes into.
  if (pending_work_ > 0 || publish_started_) return;
  publish_started_ = true;
  fetcher_.reset();
  for (FileState& file : files_) file.writer.reset();

  Clock::TimePoint now = clock_.Now();
  auto manifest = std::make_shared<v1::Manifest>();
  manifest->set_name(name_);
  manifest->set_version(version_);
  manifest->set_source(source_uri_);
  manifest->set_fetched_unix_ms(ToUnixMillis(now));
  uint64_t model_bytes = 0;
  for (const FileState& file : files_) {
    auto* entry = manifest->add_files();
    entry->set_path(file.source.path);
    entry->set_size(file.source.size);
    entry->set_sha256(file.sha256);
    // The identity the source gave, so `stat` shows what exactly was filled.
    entry->set_etag(file.source.etag);
    entry->set_version_id(file.source.version_id);
    entry->set_source_sha256(file.source.expected_sha256);
    model_bytes += file.source.size;
  }
  for (const UnpackedFile& file : unpacked_) {
    auto* entry = manifest->add_files();
    entry->set_path(file.path);
    entry->set_size(file.size);
    entry->set_sha256(file.sha256);
    model_bytes += file.size;
  }
  manifest->set_total_bytes(model_bytes);
  const ResolvedRevision resolved = source_->Resolved();
  if (!resolved.revision.empty() || !resolved.digest.empty()) {
    manifest->mutable_source_revision()->set_revision(resolved.revision);
    manifest->mutable_source_revision()->set_digest(resolved.digest);
  }
  auto refused = std::make_shared<bool>(false);
  Run(
      [layout = layout_, manifest, now, check = before_publish_, refused]() -> absl::Status {
        if (check) {
          absl::Status held = check();
          if (!held.ok()) {
            *refused = true;
            return held;
          }
        }
        absl::Status published = Publish(layout, *manifest);
        if (absl::IsAlreadyExists(published)) {
          // Another agent of this volume published it first: theirs is the result.
          ASSIGN_OR_RETURN(*manifest, ReadManifest(layout.ManifestPath(manifest->name(), manifest->version())));
          auto trashed = MoveToTrash(layout, layout.StagingFor(manifest->name(), manifest->version()));
          if (trashed.ok()) (void)EmptyTrash(layout);
        } else if (!published.ok()) {
          return published;
        }
        absl::Status access = PersistAccess(layout, manifest->name(), manifest->version(), now);
        if (!access.ok()) {
          spdlog::warn("last use not saved {}",
                       LogFields()
                           .Add("model", manifest->name())
                           .Add("version", manifest->version())
                           .Add("error", access)
                           .Add("next", "the model is published; after a restart its fetch time "
                                        "counts as its last use"));
        }
        return absl::OkStatus();
      },
      [this, manifest, refused](absl::Status status) {
        if (phase_ != Phase::kPublishing) return;
        if (*refused) keep_staging_ = true;
        if (!status.ok()) return Fail(ModelError(status));
        ReleaseReservation();
        phase_ = Phase::kDone;
        progress_.set_state(v1::EnsureProgress::READY);
        progress_.set_path(layout_.ModelDir(name_, version_).string());
        Deliver(*manifest);
      });
}

void FillJob::Impl::Fail(absl::Status status) {
  if (phase_ == Phase::kCleaningUp || phase_ == Phase::kDone || phase_ == Phase::kCancelled) return;
  failure_ = std::move(status);
  phase_ = Phase::kCleaningUp;
  StopActivity();
  ReleaseReservation();
  ContinueCleanup();
}

void FillJob::Impl::ContinueCleanup() {
  // Wait until no worker writes into staging any more.
  if (pending_work_ > 0 || cleanup_started_) return;
  cleanup_started_ = true;
  if (keep_staging_ || KeepsStagingAfter(failure_)) {
    if (files_.empty() || !files_[0].writer) return Deliver(failure_);
    std::vector<std::shared_ptr<FileWriter>> writers;
    for (const FileState& file : files_) writers.push_back(file.writer);
    Run(
        [writers = std::move(writers), journal = JournalSnapshot(),
         path = layout_.JournalPath(name_, version_)]() -> absl::Status {
          for (const auto& writer : writers) RETURN_IF_ERROR(writer->Sync());
          return WriteJournal(path, journal);
        },
        [this](absl::Status status) {
          if (!status.ok()) {
            spdlog::warn("fill journal not saved {}",
                         LogFields()
                             .Add("model", name_)
                             .Add("version", version_)
                             .Add("error", status)
                             .Add("next", "staging kept; the next fill resumes from the journal "
                                          "saved before, or starts over without one"));
          }
          Deliver(failure_);
        });
    return;
  }
  // Close our descriptors before the tree goes (NFS keeps deleted open files around).
  for (FileState& file : files_) file.writer.reset();
  Run(
      [layout = layout_, staging = layout_.StagingFor(name_, version_)]() -> absl::Status {
        auto trashed = MoveToTrash(layout, staging);
        if (!trashed.ok() && !absl::IsNotFound(trashed.status())) return trashed.status();
        if (trashed.ok()) RETURN_IF_ERROR(EmptyTrash(layout).status());
        return absl::OkStatus();
      },
      [this](absl::Status status) {
        if (!status.ok()) {
          spdlog::warn("fill staging not removed {}",
                       LogFields()
                           .Add("model", name_)
                           .Add("version", version_)
                           .Add("error", status)
                           .Add("next", "the fill's failure is reported; the next fill reuses or "
                                        "replaces the staging"));
        }
        Deliver(failure_);
      });
}

void FillJob::Impl::StopActivity() {
  archives_cancelled_->store(true);
  journal_timer_.reset();
  progress_timer_.reset();
  for (auto& [chunk_id, active] : chunks_) {
    if (active.fetching && fetcher_) fetcher_->Cancel(active.fetch_id);
  }
  chunks_.clear();
  for (auto& [file_index, stream] : streams_) {
    if (stream.fetching && fetcher_) fetcher_->Cancel(stream.fetch_id);
  }
  streams_.clear();
  fetching_ = 0;
}

void FillJob::Impl::ReleaseReservation() {
  if (!reserved_) return;
  reserved_ = false;
  space_.Release(owner_);
}

void FillJob::Impl::Deliver(absl::StatusOr<v1::Manifest> result) {
  phase_ = Phase::kDone;
  on_progress_ = nullptr;
  DoneFn done = std::move(on_done_);
  on_done_ = nullptr;
  auto keep_alive = shared_from_this();
  if (done) done(std::move(result));
}

void FillJob::Impl::Emit() {
  emitted_bytes_ = progress_.bytes_done();
  emitted_files_ = progress_.files_done();
  if (on_progress_) on_progress_(progress_);
}

void FillJob::Impl::Cancel(std::function<void()> drained) {
  if (phase_ != Phase::kDone && phase_ != Phase::kCancelled) {
    phase_ = Phase::kCancelled;
    StopActivity();
    ReleaseReservation();
    on_progress_ = nullptr;
    on_done_ = nullptr;
  }
  if (!drained) return;
  if (pending_work_ == 0) {
    drained();
  } else if (phase_ == Phase::kCancelled) {
    drained_ = std::move(drained);
  } else {
    // Done but a blocking step is still out (cannot happen: Deliver runs last).
    drained();
  }
}

FillJob::FillJob(EventLoop& loop, const Clock& clock, const CacheLayout& layout,
                 SpaceReservations& space, FillRequest request, ProgressFn on_progress,
                 DoneFn on_done)
    : impl_(std::make_shared<Impl>(loop, clock, layout, space, std::move(request),
                                   std::move(on_progress), std::move(on_done))) {}

FillJob::~FillJob() { impl_->Cancel(nullptr); }

void FillJob::Start() { impl_->Start(); }

void FillJob::Cancel(std::function<void()> drained) { impl_->Cancel(std::move(drained)); }

const v1::EnsureProgress& FillJob::Progress() const { return impl_->progress_; }

const FillJob::Counters& FillJob::GetCounters() const { return impl_->counters_; }

}  // namespace modelcache
