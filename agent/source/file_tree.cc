#include "agent/source/file_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>

#include "absl/status/status.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxLinks = 40;     // as the kernel's own limit for one path resolution
constexpr int kRaceRetries = 16;  // a rename or a swapped link met mid-resolution: resolve again
// Opening for reading must not block on a FIFO nor make a terminal ours; a FIFO, device or
// socket is refused after fstat either way.
constexpr int kReadFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

long Openat2(int dir_fd, const char* path, int flags, uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = resolve;
  return ::syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
}

int Openat2Beneath(int dir_fd, const std::string& relative, int flags) {
  for (int attempt = 0;; ++attempt) {
    const long fd = Openat2(dir_fd, relative.c_str(), flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == EINTR || (errno == EAGAIN && attempt < kRaceRetries)) continue;
    return -errno;
  }
}

void AppendComponents(std::string_view path, std::deque<std::string>& out, bool front) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (front) {
    out.insert(out.begin(), parts.begin(), parts.end());
  } else {
    out.insert(out.end(), parts.begin(), parts.end());
  }
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// One walk; -EAGAIN when a component changed between two looks at it.
int WalkOnce(int dir_fd, std::string_view relative, int flags) {
  if (!relative.empty() && relative.front() == '/') return -EXDEV;
  std::deque<std::string> pending;
  AppendComponents(relative, pending, /*front=*/false);
  std::vector<FileDescriptor> entered;  // directories below dir_fd, outermost first
  auto current = [&] { return entered.empty() ? dir_fd : entered.back().get(); };
  int links = 0;
  while (true) {
    if (pending.empty()) {  // the path ends at a directory already entered (or dir_fd itself)
      const int fd = ::openat(current(), ".", flags | O_CLOEXEC);
      return fd >= 0 ? fd : -errno;
    }
    const std::string name = std::move(pending.front());
    pending.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      if (entered.empty()) return -EXDEV;
      entered.pop_back();
      continue;
    }
    FileDescriptor node(::openat(current(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (node.get() < 0) return -errno;
    struct stat info {};
    if (::fstat(node.get(), &info) != 0) return -errno;
    if (S_ISLNK(info.st_mode)) {
      if (++links > kMaxLinks) return -ELOOP;
      char target[PATH_MAX];
      const ssize_t length = ::readlinkat(node.get(), "", target, sizeof(target));
      if (length < 0) return -errno;
      if (static_cast<size_t>(length) >= sizeof(target)) return -ENAMETOOLONG;
      const std::string_view link(target, static_cast<size_t>(length));
      if (link.empty()) return -ENOENT;
      if (link.front() == '/') return -EXDEV;  // as RESOLVE_BENEATH: absolute links never
      AppendComponents(link, pending, /*front=*/true);
      continue;
    }
    const bool last = std::all_of(pending.begin(), pending.end(), [](const std::string& part) {
      return part == ".";
    });
    if (!last) {
      if (!S_ISDIR(info.st_mode)) return -ENOTDIR;
      entered.push_back(std::move(node));
      continue;
    }
    if ((flags & O_DIRECTORY) != 0 && !S_ISDIR(info.st_mode)) return -ENOTDIR;
    if ((flags & O_PATH) != 0) {
      const int fd = ::fcntl(node.get(), F_DUPFD_CLOEXEC, 0);
      return fd >= 0 ? fd : -errno;
    }
    // Open the very object looked at: no link may have taken its place meanwhile.
    FileDescriptor opened(::openat(current(), name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
    if (opened.get() < 0) return errno == ELOOP ? -EAGAIN : -errno;
    struct stat opened_info {};
    if (::fstat(opened.get(), &opened_info) != 0) return -errno;
    if (!SameFile(info, opened_info)) return -EAGAIN;
    const int fd = ::fcntl(opened.get(), F_DUPFD_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
  }
}

int WalkBeneath(int dir_fd, std::string_view relative, int flags) {
  for (int attempt = 0;; ++attempt) {
    const int result = WalkOnce(dir_fd, relative, flags);
    if (result == -EINTR || (result == -EAGAIN && attempt < kRaceRetries)) continue;
    return result;
  }
}

std::string Etag(const struct stat& info) {
  const int64_t mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
  return fmt::format("{}-{}", static_cast<uint64_t>(info.st_size), mtime_ns);
}

std::string_view TypeName(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

fs::path Normalized(const fs::path& path) {
  fs::path normal = path.lexically_normal();
  // "/models/llama/" has an empty last element that would break the component comparison.
  if (!normal.has_filename() && normal.has_parent_path() && normal != normal.root_path()) {
    normal = normal.parent_path();
  }
  return normal;
}

bool IsBeneath(const fs::path& path, const fs::path& folder) {
  const auto [folder_end, path_it] = std::mismatch(folder.begin(), folder.end(), path.begin(), path.end());
  return folder_end == folder.end();
}

std::string RootsText(const std::vector<fs::path>& roots) {
  if (roots.empty()) return "none";
  std::vector<std::string> texts;
  for (const fs::path& root : roots) texts.push_back(root.string());
  return fmt::format("[{}]", fmt::join(texts, ", "));
}


}  // namespace

absl::Status SourceErrnoStatus(int error, std::string message) {
  message = fmt::format("{}: {}", message, std::strerror(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EIO:
    case EAGAIN:
    case EINTR:
    case ESTALE:
    case ETIMEDOUT:
      return absl::UnavailableError(message);  // network file systems recover from these
    default:
      return absl::InternalError(message);
  }
}

ResolveMethod DetectResolveMethod() {
  const long fd = Openat2(AT_FDCWD, "/", O_PATH, 0);
  if (fd < 0) return ResolveMethod::kWalk;  // ENOSYS (before Linux 5.6), EPERM (seccomp)
  ::close(static_cast<int>(fd));
  return ResolveMethod::kOpenat2;
}

int OpenBeneath(int dir_fd, std::string_view relative, int flags, ResolveMethod method) {
  if (relative.empty()) return -ENOENT;
  if (method == ResolveMethod::kOpenat2) return Openat2Beneath(dir_fd, std::string(relative), flags);
  return WalkBeneath(dir_fd, relative, flags);
}

absl::StatusOr<std::shared_ptr<const FileTree>> FileTree::Open(
    const fs::path& source, const std::optional<std::vector<fs::path>>& allowed_roots,
    ResolveMethod method) {
  std::shared_ptr<FileTree> tree(new FileTree());
  tree->source_ = Normalized(source);
  tree->method_ = method;
  const std::string where = fmt::format("file source {}", tree->source_.string());
  if (!tree->source_.is_absolute()) return absl::InvalidArgumentError(where + ": not an absolute path");
  int error = 0;
  if (allowed_roots) {
    tree->restricted_ = true;
    tree->roots_text_ = RootsText(*allowed_roots);
    // The outermost allowed folder holding the source (folders may nest): links are followed
    // anywhere beneath it.
    std::optional<fs::path> best;
    for (const fs::path& root : *allowed_roots) {
      const fs::path normal = Normalized(root);
      if (IsBeneath(tree->source_, normal) &&
          (!best || std::distance(normal.begin(), normal.end()) < std::distance(best->begin(), best->end()))) {
        best = normal;
      }
    }
    if (!best) {
      return absl::PermissionDeniedError(fmt::format(
          "{}: not in a folder this agent serves file:// sources from (fileSources: {}); an "
          "operator allows a folder by adding it to fileSources in the agent's config",
          where, tree->roots_text_));
    }
    tree->root_ = *best;
    tree->root_fd_ = FileDescriptor(::open(tree->root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (tree->root_fd_.get() < 0) {
      return SourceErrnoStatus(errno, fmt::format("{}: fileSources folder {}", where, tree->root_.string()));
    }
    const fs::path relative = tree->source_.lexically_relative(tree->root_);
    tree->source_relative_ = relative.empty() ? "." : relative.generic_string();
    const int fd = OpenBeneath(tree->root_fd_.get(), tree->source_relative_, O_PATH, method);
    tree->source_fd_ = FileDescriptor(fd);
    error = fd < 0 ? -fd : 0;
    if (error != 0) return tree->OpenError(where, error, tree->root_.string());
  } else {
    tree->source_fd_ = FileDescriptor(::open(tree->source_.c_str(), O_PATH | O_CLOEXEC));
    if (tree->source_fd_.get() < 0) return SourceErrnoStatus(errno, where);
  }
  if (::fstat(tree->source_fd_.get(), &tree->info_) != 0) return SourceErrnoStatus(errno, where);
  if (!S_ISREG(tree->info_.st_mode) && !S_ISDIR(tree->info_.st_mode)) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: {}, neither a regular file nor a directory", where, TypeName(tree->info_.st_mode)));
  }
  return std::shared_ptr<const FileTree>(std::move(tree));
}

absl::Status FileTree::OpenError(std::string_view what, int error, std::string_view folder) const {
  if (error == EXDEV) {
    return absl::PermissionDeniedError(fmt::format(
        "{}: a symlink on the path leads outside {} (links are followed only when relative and "
        "inside it; file:// sources are read only in the folders in fileSources: {})",
        what, folder, restricted_ ? roots_text_ : "none set, local read"));
  }
  if (error == ELOOP) {
    return absl::InvalidArgumentError(
        fmt::format("{}: too many levels of symlinks, or a /proc magic link", what));
  }
  return SourceErrnoStatus(error, std::string(what));
}

absl::StatusOr<std::vector<SourceFile>> FileTree::List() const {
  std::vector<SourceFile> files;
  const std::string where = fmt::format("file source {}", source_.string());
  if (S_ISREG(info_.st_mode)) {
    SourceFile file;
    file.path = source_.filename().string();
    if (absl::Status valid = ValidateRelativeFilePath(file.path); !valid.ok()) {
      return absl::InvalidArgumentError(fmt::format("{}: {}", where, std::string(valid.message())));
    }
    file.size = static_cast<uint64_t>(info_.st_size);
    file.location = source_.string();
    file.etag = Etag(info_);
    files.push_back(std::move(file));
    return files;
  }
  FileDescriptor directory(::openat(source_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory.get() < 0) return SourceErrnoStatus(errno, fmt::format("{}: list directory", where));
  RETURN_IF_ERROR(ListDirectory(directory.get(), "", files));
  std::sort(files.begin(), files.end(), [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return files;
}

absl::Status FileTree::ListDirectory(int dir_fd, const std::string& prefix,
                                     std::vector<SourceFile>& files) const {
  const std::string where = fmt::format("file source {}", source_.string());
  const int listed_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (listed_fd < 0) return SourceErrnoStatus(errno, fmt::format("{}: list {}", where, prefix));
  DIR* stream = ::fdopendir(listed_fd);
  if (stream == nullptr) {
    const int error = errno;
    ::close(listed_fd);
    return SourceErrnoStatus(error, fmt::format("{}: list {}", where, prefix));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(stream, &::closedir);
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(stream);
    if (entry == nullptr) {
      if (errno != 0) return SourceErrnoStatus(errno, fmt::format("{}: list {}", where, prefix));
      break;
    }
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  for (const std::string& name : names) {
    const std::string relative = prefix.empty() ? name : prefix + "/" + name;
    struct stat info {};
    if (::fstatat(dir_fd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while listed
      return SourceErrnoStatus(errno, fmt::format("{}: stat {}", where, relative));
    }
    if (S_ISDIR(info.st_mode)) {
      FileDescriptor child(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (child.get() < 0) return SourceErrnoStatus(errno, fmt::format("{}: list {}", where, relative));
      RETURN_IF_ERROR(ListDirectory(child.get(), relative, files));
      continue;
    }
    if (S_ISLNK(info.st_mode)) {
      FileDescriptor target(OpenBeneath(source_fd_.get(), relative, O_PATH, method_));
      if (target.get() < 0) return LinkError(relative, -target.get(), dir_fd, name);
      if (::fstat(target.get(), &info) != 0) return SourceErrnoStatus(errno, fmt::format("{}: stat {}", where, relative));
      // A link to a directory inside the tree is not descended: its files are listed under
      // their own paths already.
    }
    if (!S_ISREG(info.st_mode)) continue;  // FIFOs, devices, sockets: never opened
    SourceFile file;
    file.path = relative;
    if (absl::Status valid = ValidateRelativeFilePath(file.path); !valid.ok()) {
      return absl::InvalidArgumentError(fmt::format("{}: {}", where, std::string(valid.message())));
    }
    file.size = static_cast<uint64_t>(info.st_size);
    file.location = (source_ / relative).string();
    file.etag = Etag(info);
    files.push_back(std::move(file));
  }
  return absl::OkStatus();
}

absl::Status FileTree::LinkError(const std::string& relative, int error, int dir_fd,
                                 const std::string& name) const {
  char target[PATH_MAX];
  const ssize_t length = ::readlinkat(dir_fd, name.c_str(), target, sizeof(target) - 1);
  const std::string link = length >= 0 ? std::string(target, static_cast<size_t>(length)) : "?";
  const std::string what = fmt::format("file source {}: symlink {} -> {}", source_.string(), relative, link);
  if (error != EXDEV) return OpenError(what, error, source_.string());
  const std::string hint = link.starts_with('/') ? " (absolute links are not followed)" : "";
  if (restricted_) {
    // Out of the model's directory; out of the allowed folders too?
    const std::string beneath_root = source_relative_ == "." ? relative : source_relative_ + "/" + relative;
    FileDescriptor in_root(OpenBeneath(root_fd_.get(), beneath_root, O_PATH, method_));
    if (in_root.get() == -EXDEV) {
      return absl::PermissionDeniedError(fmt::format(
          "{}: leads outside the folders this agent serves file:// sources from (fileSources: "
          "{}){}", what, roots_text_, hint));
    }
  }
  return absl::InvalidArgumentError(
      fmt::format("{}: points outside the directory {}{}", what, source_.string(), hint));
}

absl::StatusOr<FileDescriptor> FileTree::OpenForRead(std::string_view location, bool direct) const {
  const int flags = kReadFlags | (direct ? O_DIRECT : 0);
  const std::string what = fmt::format("open {}", location);
  int fd = -1;
  if (S_ISDIR(info_.st_mode)) {
    const std::string prefix = source_.string() == "/" ? "/" : source_.string() + "/";
    if (!location.starts_with(prefix) || location.size() == prefix.size()) {
      return absl::InvalidArgumentError(fmt::format("{}: not in the source {}", what, source_.string()));
    }
    fd = OpenBeneath(source_fd_.get(), location.substr(prefix.size()), flags, method_);
    if (fd < 0) return OpenError(what, -fd, source_.string());
  } else if (location != source_.string()) {
    return absl::InvalidArgumentError(fmt::format("{}: not the source {}", what, source_.string()));
  } else if (restricted_) {
    fd = OpenBeneath(root_fd_.get(), source_relative_, flags, method_);
    if (fd < 0) return OpenError(what, -fd, root_.string());
  } else {
    fd = ::open(source_.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return SourceErrnoStatus(errno, what);
  }
  FileDescriptor opened(fd);
  struct stat info {};
  if (::fstat(opened.get(), &info) != 0) return SourceErrnoStatus(errno, what);
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(fmt::format("{}: {}, not a regular file", what, TypeName(info.st_mode)));
  }
  return opened;
}

}  // namespace modelcache
