#include "agent/coordination/command_answers.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "common/file_descriptor.h"
#include "common/fs.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// A record bigger than this is corruption, not an answer (messages are short).
constexpr uint32_t kMaxRecordBytes = 1u << 20;

std::string Frame(const v1::CommandResult& result) {
  std::string body = result.SerializeAsString();
  const uint32_t size = static_cast<uint32_t>(body.size());
  std::string record;
  record.reserve(4 + body.size());
  for (int shift = 0; shift < 32; shift += 8) record.push_back(static_cast<char>(size >> shift));
  record += body;
  return record;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CommandAnswers>> CommandAnswers::Open(
    const std::filesystem::path& path, size_t capacity) {
  if (capacity == 0) return absl::InvalidArgumentError("command answers: capacity must be > 0");
  std::unique_ptr<CommandAnswers> answers(new CommandAnswers(path, capacity));
  RETURN_IF_ERROR(CreateDirectories(path.parent_path()));
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (absl::IsNotFound(contents.status())) return answers;
  if (!contents.ok()) return contents.status();
  size_t at = 0;
  std::lock_guard lock(answers->mutex_);
  while (contents->size() - at >= 4) {
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i) {
      size |= uint32_t{static_cast<unsigned char>((*contents)[at + i])} << (8 * i);
    }
    if (size > kMaxRecordBytes || contents->size() - at - 4 < size) break;  // torn tail
    v1::CommandResult result;
    if (!result.ParseFromArray(contents->data() + at + 4, static_cast<int>(size))) break;
    at += 4 + size;
    answers->RememberLocked(result);
    ++answers->records_in_file_;
  }
  // Rewrite at once if the tail was torn, so that new records are not appended after garbage.
  if (at != contents->size()) RETURN_IF_ERROR(answers->CompactLocked());
  return answers;
}

std::unique_ptr<CommandAnswers> CommandAnswers::InMemory(size_t capacity) {
  return std::unique_ptr<CommandAnswers>(new CommandAnswers({}, capacity == 0 ? 1 : capacity));
}

std::optional<v1::CommandResult> CommandAnswers::Find(std::string_view id) const {
  std::lock_guard lock(mutex_);
  auto found = by_id_.find(std::string(id));
  if (found == by_id_.end()) return std::nullopt;
  return found->second;
}

absl::Status CommandAnswers::Record(const v1::CommandResult& result) {
  std::lock_guard lock(mutex_);
  RememberLocked(result);
  if (path_.empty()) return absl::OkStatus();
  if (records_in_file_ + 1 > 2 * capacity_) return CompactLocked();
  return AppendLocked(result);
}

size_t CommandAnswers::size() const {
  std::lock_guard lock(mutex_);
  return by_id_.size();
}

void CommandAnswers::RememberLocked(const v1::CommandResult& result) {
  if (by_id_.insert_or_assign(result.command_id(), result).second) {
    order_.push_back(result.command_id());
  }
  while (order_.size() > capacity_) {
    by_id_.erase(order_.front());
    order_.pop_front();
  }
}

absl::Status CommandAnswers::AppendLocked(const v1::CommandResult& result) {
  FileDescriptor file(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (file.get() < 0) return ErrnoStatus(errno, "open", path_);
  const std::string record = Frame(result);
  size_t written = 0;
  while (written < record.size()) {
    ssize_t n = ::write(file.get(), record.data() + written, record.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "append to", path_);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(file.get()) != 0) return ErrnoStatus(errno, "fsync", path_);
  // The first record may have created the file: make its name durable too.
  if (records_in_file_ == 0) RETURN_IF_ERROR(FsyncDirectory(path_.parent_path()));
  ++records_in_file_;
  return absl::OkStatus();
}

absl::Status CommandAnswers::CompactLocked() {
  std::string contents;
  for (const std::string& id : order_) contents += Frame(by_id_.at(id));
  RETURN_IF_ERROR(WriteFileAtomic(path_, contents));
  records_in_file_ = order_.size();
  return absl::OkStatus();
}

}  // namespace modelcache
