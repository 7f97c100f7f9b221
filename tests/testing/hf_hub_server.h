#pragma once
// Runs the test Hugging Face Hub (tests/testing/hf_hub_server.mjs: the Hub API subset the hf://
// source and @huggingface/hub use, and a storage server with expiring signed URLs) on
// 127.0.0.1 for a test, and drives it: repositories, commits from folders, branch moves,
// faults (429s, URL expiry, a slow storage, a branch moved after N storage requests), counters.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

struct HfRepoOptions {
  std::string type = "model";  // or "dataset"
  bool is_private = false;
  bool gated = false;
  std::vector<std::string> tokens;  // bearer tokens granted access
};

class HfHubServer {
 public:
  // Starts `node hf_hub_server.mjs` (node from PATH) and waits for both ports.
  static absl::StatusOr<std::unique_ptr<HfHubServer>> Start();
  // Stops the process by PID.
  ~HfHubServer();
  HfHubServer(const HfHubServer&) = delete;
  HfHubServer& operator=(const HfHubServer&) = delete;

  std::string Endpoint() const;  // "http://127.0.0.1:<hub port>"
  uint16_t hub_port() const { return hub_port_; }
  uint16_t storage_port() const { return storage_port_; }
  pid_t pid() const { return process_->Pid(); }

  absl::Status AddRepo(std::string_view id, const HfRepoOptions& options = {});
  // Commits every file below `dir` to `branch`; files of at least `lfs_min_size` bytes are LFS
  // (their SHA-256 in the tree, served from the storage server). Returns the commit id.
  absl::StatusOr<std::string> Commit(std::string_view id, const std::filesystem::path& dir,
                                     std::string_view branch = "main", uint64_t lfs_min_size = 1024,
                                     std::string_view type = "model");
  absl::Status MoveBranch(std::string_view id, std::string_view branch, std::string_view commit,
                          std::string_view type = "model");
  // Merges `json` into the server's options (see hf_hub_server.mjs): pageSize, urlTtlMs,
  // urlMaxUses, rateLimit, storageBytesPerSecond, moveBranch.
  absl::Status SetOptions(std::string_view json);
  // The server's counters (hub_requests, storage_bytes, storage_token_seen, ...).
  absl::StatusOr<std::map<std::string, int64_t>> Stats() const;

 private:
  HfHubServer() = default;
  absl::StatusOr<std::string> Control(std::string_view what, std::string_view json) const;

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> process_;
  uint16_t hub_port_ = 0;
  uint16_t storage_port_ = 0;
};

// A JSON string literal for `text` (quotes included).
std::string JsonQuote(std::string_view text);

}  // namespace modelcache::testing
