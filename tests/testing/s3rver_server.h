#pragma once
// Runs s3rver (a Node.js S3 emulator) on 127.0.0.1 for a test. Note that s3rver does not
// verify SigV4 signatures: signing is proven against tests/testing/sigv4_reference.h.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/source/source.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

class S3rverServer {
 public:
  // s3rver's built-in account.
  static constexpr std::string_view kAccessKeyId = "S3RVER";
  static constexpr std::string_view kSecretAccessKey = "S3RVER";

  // Starts s3rver with a fresh data directory and `bucket` created, on a free port (s3rver
  // binds port 0 and reports the one it got), and waits until it answers requests. The
  // binary is $MODELCACHE_S3RVER, else <source dir>/build/tools/node_modules/.bin/s3rver.
  static absl::StatusOr<std::unique_ptr<S3rverServer>> Start(std::string_view bucket);

  // Stops the process by PID (SIGTERM, then SIGKILL after 5 s) and removes the data directory.
  ~S3rverServer();
  S3rverServer(const S3rverServer&) = delete;
  S3rverServer& operator=(const S3rverServer&) = delete;

  uint16_t port() const { return port_; }
  std::string Endpoint() const;  // "http://127.0.0.1:<port>"
  pid_t pid() const { return process_->Pid(); }

  // Options for a source reading from this server: endpoint, path-style, and the built-in
  // account's credentials (clear `aws` for anonymous access).
  SourceOptions Options() const;

  // PUTs an object (signed with the built-in account). Errors name the key.
  absl::Status PutObject(std::string_view bucket, std::string_view key, std::string_view body) const;

 private:
  S3rverServer() = default;

  std::unique_ptr<TempDir> dir_;  // outlives the process using it
  std::unique_ptr<Subprocess> process_;
  uint16_t port_ = 0;
};

}  // namespace modelcache::testing
