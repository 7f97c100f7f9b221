#pragma once
// Appends one JSON line per API request (a KubeClientOptions::on_request hook): the RBAC tests
// compare them with the rules in deploy/. Lines are flushed one by one, as the process may be
// killed; several logs (the cache claims' and the reviews' clients) may append to one file.
// Thread-safe.
#include <fstream>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "kube/kube_client.h"

namespace modelcache::kube {

class RequestLog {
 public:
  // INVALID_ARGUMENT naming `key` (the configuration key) and the path when it cannot open.
  absl::Status Open(const std::string& path, std::string_view key);
  void Write(const RequestRecord& record);

 private:
  std::mutex mutex_;
  std::ofstream file_;  // guarded by mutex_
};

}  // namespace modelcache::kube
