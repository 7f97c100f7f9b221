#include "agent/store/migrate.h"

#include "common/file_descriptor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include "agent/store/manifest.h"
#include "agent/store/publish.h"
#include "agent/store/trash.h"
#include "common/fs.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

constexpr uint64_t kChunkBytes = 16ull << 20;
constexpr size_t kBufferBytes = 1 << 20;
constexpr int kMaxParallelism = 64;

// What one worker thread owns.
struct Worker {
  std::vector<std::byte> buffer;  // for pread/pwrite, allocated on first use
};

// Runs task(0..count-1) on up to `parallelism` threads (the caller's included) and returns the
// first error; after an error no new task starts. Exceptions never leave a thread.
absl::Status RunParallel(size_t count, int parallelism,
                         const std::function<absl::Status(size_t, Worker&)>& task) {
  std::atomic<size_t> next{0};
  std::mutex mutex;
  absl::Status first_error;
  std::atomic<bool> failed{false};
  auto work = [&]() {
    Worker worker;
    while (!failed.load()) {
      size_t index = next.fetch_add(1);
      if (index >= count) return;
      absl::Status status;
      try {
        status = task(index, worker);
      } catch (const std::exception& error) {
        status = absl::InternalError(fmt::format("copy task: {}", error.what()));
      } catch (...) {
        status = absl::InternalError("copy task: unknown exception");
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mutex);
        if (first_error.ok()) first_error = status;
        failed.store(true);
      }
    }
  };
  std::vector<std::thread> threads;
  int extra = std::clamp(parallelism, 1, kMaxParallelism) - 1;
  extra = static_cast<int>(std::min<size_t>(static_cast<size_t>(extra), count));
  for (int i = 0; i < extra; ++i) {
    try {
      threads.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // fewer threads is slower, not wrong
    }
  }
  work();
  for (std::thread& thread : threads) thread.join();
  return first_error;
}

struct Chunk {
  size_t file_index;
  uint64_t offset;
  uint64_t length;
};

struct CopyContext {
  std::filesystem::path source_dir;
  std::filesystem::path target_dir;
  const v1::Manifest* manifest;
  CopyMethod method;
  std::atomic<bool> used_copy_file_range{false};
};

absl::Status SourceEnded(const std::filesystem::path& path, uint64_t offset, uint64_t size) {
  return absl::DataLossError(fmt::format("copy {}: source ends at byte {}, manifest says {}",
                                         path.string(), offset, size));
}

absl::Status CopyWithReadWrite(int source, int target, uint64_t offset, uint64_t end,
                               const std::filesystem::path& source_path,
                               const std::filesystem::path& target_path, uint64_t size,
                               Worker& worker) {
  if (worker.buffer.empty()) worker.buffer.resize(kBufferBytes);
  while (offset < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(end - offset, worker.buffer.size()));
    ssize_t got = ::pread(source, worker.buffer.data(), want, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", source_path);
    }
    if (got == 0) return SourceEnded(source_path, offset, size);
    size_t written = 0;
    while (written < static_cast<size_t>(got)) {
      ssize_t put =
          ::pwrite(target, worker.buffer.data() + written, static_cast<size_t>(got) - written,
                   static_cast<off_t>(offset + written));
      if (put < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write", target_path);
      }
      written += static_cast<size_t>(put);
    }
    offset += static_cast<uint64_t>(got);
  }
  return absl::OkStatus();
}

absl::Status CopyChunk(CopyContext& context, const Chunk& chunk, Worker& worker) {
  const v1::ManifestFile& file = context.manifest->files(static_cast<int>(chunk.file_index));
  std::filesystem::path source_path = context.source_dir / file.path();
  std::filesystem::path target_path = context.target_dir / file.path();
  FileDescriptor source(::open(source_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (source.get() < 0) return ErrnoStatus(errno, "open", source_path);
  FileDescriptor target(::open(target_path.c_str(), O_WRONLY | O_CLOEXEC));
  if (target.get() < 0) return ErrnoStatus(errno, "open", target_path);
  uint64_t offset = chunk.offset;
  uint64_t end = chunk.offset + chunk.length;
  if (context.method == CopyMethod::kAuto) {
    while (offset < end) {
      loff_t in_offset = static_cast<loff_t>(offset);
      loff_t out_offset = static_cast<loff_t>(offset);
      ssize_t copied = ::copy_file_range(source.get(), &in_offset, target.get(), &out_offset,
                                         static_cast<size_t>(end - offset), 0);
      if (copied < 0) {
        if (errno == EINTR) continue;
        // Different filesystems (EXDEV), a kernel or filesystem without it: copy by hand.
        if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
            errno == EBADF) {
          break;
        }
        return ErrnoStatus(errno, "copy_file_range to", target_path);
      }
      if (copied == 0) return SourceEnded(source_path, offset, file.size());
      context.used_copy_file_range.store(true);
      offset += static_cast<uint64_t>(copied);
    }
  }
  RETURN_IF_ERROR(CopyWithReadWrite(source.get(), target.get(), offset, end, source_path,
                                    target_path, file.size(), worker));
  if (target.Close() != 0) return ErrnoStatus(errno, "close", target_path);
  return absl::OkStatus();
}

// Creates the staging tree with every file at its final size, and lists the chunks to copy.
absl::StatusOr<std::vector<Chunk>> PrepareTarget(const std::filesystem::path& source_dir,
                                                 const std::filesystem::path& target_dir,
                                                 const v1::Manifest& manifest) {
  std::vector<Chunk> chunks;
  for (int index = 0; index < manifest.files_size(); ++index) {
    const v1::ManifestFile& file = manifest.files(index);
    std::filesystem::path source_path = source_dir / file.path();
    struct stat info;
    if (::stat(source_path.c_str(), &info) != 0) return ErrnoStatus(errno, "stat", source_path);
    if (static_cast<uint64_t>(info.st_size) != file.size()) {
      return absl::DataLossError(fmt::format("copy {}: source has {} bytes, manifest says {}",
                                             source_path.string(), info.st_size, file.size()));
    }
    std::filesystem::path target_path = target_dir / file.path();
    RETURN_IF_ERROR(CreateDirectories(target_path.parent_path()));
    FileDescriptor target(
        ::open(target_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (target.get() < 0) return ErrnoStatus(errno, "create", target_path);
    if (::ftruncate(target.get(), static_cast<off_t>(file.size())) != 0) {
      return ErrnoStatus(errno, "truncate", target_path);
    }
    if (target.Close() != 0) return ErrnoStatus(errno, "close", target_path);
    for (uint64_t offset = 0; offset < file.size(); offset += kChunkBytes) {
      chunks.push_back({static_cast<size_t>(index), offset,
                        std::min<uint64_t>(kChunkBytes, file.size() - offset)});
    }
  }
  return chunks;
}

absl::StatusOr<std::string> HashFile(const std::filesystem::path& path, Worker& worker) {
  if (worker.buffer.empty()) worker.buffer.resize(kBufferBytes);
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open", path);
  Sha256 hash;
  while (true) {
    ssize_t got = ::read(fd.get(), worker.buffer.data(), worker.buffer.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (got == 0) break;
    hash.Update(std::span<const std::byte>(worker.buffer.data(), static_cast<size_t>(got)));
  }
  return hash.FinishHex();
}

// Hashes every copied file; fills in hashes the manifest lacks from the source files.
absl::Status VerifyCopies(const std::filesystem::path& source_dir,
                          const std::filesystem::path& target_dir, v1::Manifest& manifest,
                          int parallelism) {
  std::vector<std::string> expected(static_cast<size_t>(manifest.files_size()));
  RETURN_IF_ERROR(
      RunParallel(expected.size(), parallelism, [&](size_t index, Worker& worker) -> absl::Status {
        const v1::ManifestFile& file = manifest.files(static_cast<int>(index));
        std::string want = file.sha256();
        if (want.empty()) {
          ASSIGN_OR_RETURN(want, HashFile(source_dir / file.path(), worker));
        }
        std::filesystem::path target_path = target_dir / file.path();
        ASSIGN_OR_RETURN(std::string got, HashFile(target_path, worker));
        if (got != want) {
          return absl::DataLossError(fmt::format(
              "model {}@{}: file {}: sha256 mismatch after copy (want {}, got {}); the source "
              "copy does not match its manifest",
              manifest.name(), manifest.version(), file.path(), want, got));
        }
        expected[index] = std::move(want);
        return absl::OkStatus();
      }));
  for (int index = 0; index < manifest.files_size(); ++index) {
    manifest.mutable_files(index)->set_sha256(expected[static_cast<size_t>(index)]);
  }
  return absl::OkStatus();
}

v1::FillJournal JournalFor(const v1::Manifest& manifest) {
  v1::FillJournal journal;
  journal.set_name(manifest.name());
  journal.set_version(manifest.version());
  journal.set_source(manifest.source());
  for (const v1::ManifestFile& file : manifest.files()) {
    v1::FillJournal::File* entry = journal.add_files();
    entry->set_path(file.path());
    entry->set_size(file.size());
  }
  return journal;
}

bool Exists(const std::filesystem::path& path) {
  struct stat info;
  return ::lstat(path.c_str(), &info) == 0;
}

// Copies into a staging folder this call created; the caller trashes it on error.
absl::Status CopyAndPublish(const CacheLayout& from, const CacheLayout& to, v1::Manifest& manifest,
                            int parallelism, CopyMethod method, MigrateReport& report) {
  const std::string& name = manifest.name();
  const std::string& version = manifest.version();
  RETURN_IF_ERROR(WriteJournal(to.JournalPath(name, version), JournalFor(manifest)));
  std::filesystem::path source_dir = from.ModelDir(name, version);
  std::filesystem::path target_dir = to.StagingTree(name, version);
  RETURN_IF_ERROR(CreateDirectories(target_dir));
  ASSIGN_OR_RETURN(std::vector<Chunk> chunks, PrepareTarget(source_dir, target_dir, manifest));

  CopyContext context;
  context.source_dir = source_dir;
  context.target_dir = target_dir;
  context.manifest = &manifest;
  context.method = method;
  RETURN_IF_ERROR(RunParallel(chunks.size(), parallelism, [&](size_t index, Worker& worker) {
    return CopyChunk(context, chunks[index], worker);
  }));
  report.used_copy_file_range = context.used_copy_file_range.load();
  RETURN_IF_ERROR(VerifyCopies(source_dir, target_dir, manifest, parallelism));
  report.files = static_cast<uint64_t>(manifest.files_size());
  for (const v1::ManifestFile& file : manifest.files()) report.bytes_copied += file.size();
  return Publish(to, manifest);
}

}  // namespace

absl::StatusOr<MigrateReport> CopyModelBetweenVolumes(const CacheLayout& from,
                                                      const CacheLayout& to, std::string_view name,
                                                      std::string_view version, int parallelism,
                                                      CopyMethod method) {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateModelVersion(version));
  MigrateReport report;
  report.name = std::string(name);
  report.version = std::string(version);
  ASSIGN_OR_RETURN(v1::Manifest manifest, ReadManifest(from.ManifestPath(name, version)));
  if (Exists(to.ModelDir(name, version))) {
    report.skipped = true;
    return report;
  }
  RETURN_IF_ERROR(to.CreateDirectories());
  std::filesystem::path staging = to.StagingFor(name, version);
  // mkdir is the exclusive claim on the staging folder: a fill there must not be clobbered.
  if (::mkdir(staging.c_str(), 0755) != 0) {
    if (errno == EEXIST) {
      return absl::AbortedError(fmt::format(
          "migrate {}@{}: {} exists: a fill is in progress on the target (or was abandoned; "
          "cleanup removes it)",
          name, version, staging.string()));
    }
    return ErrnoStatus(errno, "create", staging);
  }
  absl::Status status = CopyAndPublish(from, to, manifest, parallelism, method, report);
  if (status.ok()) return report;
  // Publish leaves the staging tree on ALREADY_EXISTS; either way it is garbage now.
  absl::StatusOr<std::filesystem::path> trashed = MoveToTrash(to, staging);
  if (trashed.ok()) (void)RemoveTree(*trashed);
  if (absl::IsAlreadyExists(status) && Exists(to.ModelDir(name, version))) {
    report.skipped = true;
    report.files = 0;
    report.bytes_copied = 0;
    return report;
  }
  return status;
}

}  // namespace modelcache
