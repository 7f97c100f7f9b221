#pragma once
// Create-if-absent for the small control files that agents on several nodes race to write.
#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/fs.h"

namespace modelcache {

// Creates `path` holding `contents` only if nothing exists there; exactly one of several
// concurrent callers (threads, processes or NFS clients) succeeds. The file appears complete
// or not at all: it is written and fsynced under a unique temporary name beside `path`, then
// link(2)ed to `path` (link never replaces, and unlike O_EXCL-then-write no reader can see it
// empty). A lost NFS reply to a link that did happen is detected by the link count.
// `modified` sets the file's mtime before it becomes visible.
// ALREADY_EXISTS when `path` exists; other errors name the path.
absl::Status CreateFileExclusive(const std::filesystem::path& path, std::string_view contents,
                                 std::optional<Clock::TimePoint> modified = std::nullopt);

// Writes `contents` under a unique temporary name beside `path` (mtime `modified`), fsyncs it
// and renames it over `path`: readers see the old file or the new one, never a missing or
// partial one.
absl::Status ReplaceFile(const std::filesystem::path& path, std::string_view contents,
                         Clock::TimePoint modified);

// The mtime of a stat result as a Clock time.
Clock::TimePoint ModifiedTime(const struct stat& info);

}  // namespace modelcache
