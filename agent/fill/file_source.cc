#include "agent/fill/file_source.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "absl/status/status.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

absl::Status ErrorCodeStatus(const std::error_code& error, std::string_view what, const fs::path& path) {
  const std::string message = fmt::format("{} {}: {}", what, path.string(), error.message());
  if (error == std::errc::no_such_file_or_directory || error == std::errc::not_a_directory) {
    return absl::NotFoundError(message);
  }
  if (error == std::errc::permission_denied || error == std::errc::operation_not_permitted) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
}

// stat() follows symlinks, so a link reports its target's size and mtime.
absl::StatusOr<struct stat> Stat(const fs::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return ErrorCodeStatus(std::error_code(errno, std::generic_category()), "stat", path);
  }
  return info;
}

std::string Etag(const struct stat& info) {
  const int64_t mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
  return fmt::format("{}-{}", static_cast<uint64_t>(info.st_size), mtime_ns);
}

bool IsInside(const fs::path& path, const fs::path& directory) {
  const auto [dir_end, path_it] = std::mismatch(directory.begin(), directory.end(), path.begin(), path.end());
  return dir_end == directory.end();
}

class FileSource final : public Source {
 public:
  explicit FileSource(fs::path root) : root_(std::move(root)) {}

  absl::StatusOr<std::vector<SourceFile>> List() override {
    ASSIGN_OR_RETURN(const struct stat root_info, Stat(root_));
    if (S_ISREG(root_info.st_mode)) return ListSingleFile(root_info);
    if (!S_ISDIR(root_info.st_mode)) {
      return absl::InvalidArgumentError(
          fmt::format("file source {}: neither a regular file nor a directory", root_.string()));
    }
    return ListDirectory();
  }

  bool IsLocal() const override { return true; }
  HttpAuth Auth() const override { return {}; }

 private:
  absl::StatusOr<std::vector<SourceFile>> ListSingleFile(const struct stat& info) {
    SourceFile file;
    file.path = root_.filename().string();
    RETURN_IF_ERROR(ValidateRelativeFilePath(file.path));
    file.size = static_cast<uint64_t>(info.st_size);
    file.location = root_.string();
    file.etag = Etag(info);
    return std::vector<SourceFile>{std::move(file)};
  }

  absl::StatusOr<std::vector<SourceFile>> ListDirectory() {
    std::error_code error;
    const fs::path canonical_root = fs::canonical(root_, error);
    if (error) return ErrorCodeStatus(error, "resolve", root_);

    std::vector<SourceFile> files;
    fs::recursive_directory_iterator it(root_, fs::directory_options::none, error);
    if (error) return ErrorCodeStatus(error, "list directory", root_);
    for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (error) return ErrorCodeStatus(error, "list directory", root_);
      const fs::directory_entry& entry = *it;
      const fs::path relative = entry.path().lexically_relative(root_);
      if (entry.is_symlink(error)) {
        const fs::path target = fs::canonical(entry.path(), error);
        if (error) return ErrorCodeStatus(error, "resolve symlink", entry.path());
        if (!IsInside(target, canonical_root)) {
          return absl::InvalidArgumentError(fmt::format(
              "file source {}: symlink {} points outside the directory (to {})", root_.string(),
              relative.generic_string(), target.string()));
        }
        // A link to a directory inside the tree is not descended: its files are listed
        // under their own paths already.
      }
      ASSIGN_OR_RETURN(const struct stat info, Stat(entry.path()));
      if (!S_ISREG(info.st_mode)) continue;
      SourceFile file;
      file.path = relative.generic_string();
      if (absl::Status valid = ValidateRelativeFilePath(file.path); !valid.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("file source {}: {}", root_.string(), std::string(valid.message())));
      }
      file.size = static_cast<uint64_t>(info.st_size);
      file.location = entry.path().string();
      file.etag = Etag(info);
      files.push_back(std::move(file));
    }
    if (error) return ErrorCodeStatus(error, "list directory", root_);
    std::sort(files.begin(), files.end(),
              [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
    return files;
  }

  fs::path root_;
};

}  // namespace

std::unique_ptr<Source> MakeFileSource(fs::path root) {
  fs::path normal = fs::absolute(std::move(root)).lexically_normal();
  // "/models/llama/" has an empty last element that would break lexically_relative.
  if (!normal.has_filename() && normal.has_parent_path() && normal != normal.root_path()) {
    normal = normal.parent_path();
  }
  return std::make_unique<FileSource>(std::move(normal));
}

}  // namespace modelcache
