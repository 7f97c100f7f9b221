#pragma once
// The agent's answers to coordinator commands, by command id, so that a command the
// coordinator sends again (after a reconnect, or after this agent restarted) is answered
// with the recorded result instead of running twice. With a file, every answer is appended
// and fsynced before it is sent; Open reads the file back. Without one (tests, no state
// dir) the answers live in memory only.
//
// File format: records of a 4-byte little-endian length and a serialised CommandResult. A
// torn last record (crash while appending) is dropped on Open. When the file holds twice
// `capacity` records it is rewritten (atomically) with the newest `capacity`.
// Thread-safe.
#include <cstddef>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class CommandAnswers {
 public:
  // Reads `path` (a missing file is an empty record; its folder is created). Keeps the newest
  // `capacity` (> 0) answers.
  static absl::StatusOr<std::unique_ptr<CommandAnswers>> Open(const std::filesystem::path& path,
                                                              size_t capacity);
  static std::unique_ptr<CommandAnswers> InMemory(size_t capacity);

  // The recorded answer to command `id`, if any.
  std::optional<v1::CommandResult> Find(std::string_view id) const;
  // Remembers `result` (by its command_id); with a file, durably before returning. On a
  // write error the answer is still remembered in memory and the error returned.
  absl::Status Record(const v1::CommandResult& result);
  size_t size() const;

 private:
  CommandAnswers(std::filesystem::path path, size_t capacity)
      : path_(std::move(path)), capacity_(capacity) {}
  void RememberLocked(const v1::CommandResult& result);
  absl::Status AppendLocked(const v1::CommandResult& result);
  absl::Status CompactLocked();

  const std::filesystem::path path_;  // empty: memory only
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, v1::CommandResult> by_id_;  // guarded by mutex_
  std::deque<std::string> order_;                             // oldest first; guarded by mutex_
  size_t records_in_file_ = 0;                                // guarded by mutex_
};

}  // namespace modelcache
