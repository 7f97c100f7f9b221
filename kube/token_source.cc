#include "kube/token_source.h"

#include <sys/stat.h>

#include <cerrno>

#include "common/fs.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube {
namespace {

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
    text.pop_back();
  }
  size_t start = 0;
  while (start < text.size() && (text[start] == ' ' || text[start] == '\t')) ++start;
  return text.substr(start);
}

}  // namespace

TokenSource TokenSource::Fixed(std::string token) {
  TokenSource source;
  source.token_ = std::move(token);
  source.loaded_ = true;
  return source;
}

TokenSource TokenSource::FromFile(std::filesystem::path file) {
  TokenSource source;
  source.file_ = std::move(file);
  return source;
}

TokenSource::TokenSource(TokenSource&& other) noexcept { *this = std::move(other); }

TokenSource& TokenSource::operator=(TokenSource&& other) noexcept {
  if (this == &other) return *this;
  std::scoped_lock lock(mutex_, other.mutex_);
  token_ = std::move(other.token_);
  file_ = std::move(other.file_);
  loaded_ = other.loaded_;
  inode_ = other.inode_;
  size_ = other.size_;
  modified_ = other.modified_;
  return *this;
}

absl::StatusOr<std::string> TokenSource::ReadLocked(bool force) {
  if (file_.empty()) return token_;
  struct stat info {};
  if (::stat(file_.c_str(), &info) != 0) return ErrnoStatus(errno, "kubernetes: token file", file_);
  const bool changed = info.st_ino != inode_ || info.st_size != size_ ||
                       info.st_mtim.tv_sec != modified_.tv_sec || info.st_mtim.tv_nsec != modified_.tv_nsec;
  if (loaded_ && !changed && !force) return token_;
  auto contents = ReadFileToString(file_);
  if (!contents.ok()) return contents.status();
  std::string token = Trimmed(std::move(*contents));
  if (token.empty()) {
    return absl::FailedPreconditionError(fmt::format("kubernetes: token file {} is empty", file_.string()));
  }
  token_ = std::move(token);
  inode_ = info.st_ino;
  size_ = info.st_size;
  modified_ = info.st_mtim;
  loaded_ = true;
  return token_;
}

absl::StatusOr<std::string> TokenSource::Current() {
  std::lock_guard lock(mutex_);
  return ReadLocked(false);
}

absl::StatusOr<bool> TokenSource::Reload(std::string_view sent) {
  std::lock_guard lock(mutex_);
  if (file_.empty()) return false;
  auto token = ReadLocked(true);
  if (!token.ok()) return token.status();
  return *token != sent;
}

std::string TokenSource::Describe() const {
  std::lock_guard lock(mutex_);
  if (!file_.empty()) return "token file " + file_.string();
  return token_.empty() ? "no token" : "fixed token";
}

}  // namespace modelcache::kube
