#pragma once
// The bearer token a request carries: a fixed one, or a file's contents kept current. Bound
// ServiceAccount tokens are rotated by the kubelet (an atomic swap of the projected volume's
// files), so a token file is stat()ed on every use and re-read when it changed (inode, size
// or modification time), and re-read unconditionally when the server answered 401.
// Thread-safe.
#include <sys/types.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache::kube {

class TokenSource {
 public:
  // No token (client-certificate or anonymous access).
  TokenSource() = default;
  static TokenSource Fixed(std::string token);
  static TokenSource FromFile(std::filesystem::path file);

  TokenSource(TokenSource&& other) noexcept;
  TokenSource& operator=(TokenSource&& other) noexcept;

  // The token to send ("" for none). For a file: re-read when it changed since the last read.
  // An error names the file (NOT_FOUND, PERMISSION_DENIED) or says it is empty.
  absl::StatusOr<std::string> Current();
  // After a 401 for a request that carried `sent`: re-reads the file even if it looks
  // unchanged. True when the token now differs from `sent` (so a retry can succeed); always
  // false for a fixed token.
  absl::StatusOr<bool> Reload(std::string_view sent);

  std::string Describe() const;  // "token file /path", "fixed token", "no token"

 private:
  absl::StatusOr<std::string> ReadLocked(bool force);

  mutable std::mutex mutex_;
  std::string token_;
  std::filesystem::path file_;
  bool loaded_ = false;
  // What the file looked like when it was read.
  ino_t inode_ = 0;
  off_t size_ = -1;
  struct timespec modified_ {};
};

}  // namespace modelcache::kube
