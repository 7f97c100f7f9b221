#pragma once
// Appends one JSON line per API request (a daemon's kubernetes.requestLog): the RBAC test
// (tests/testing/rbac_rules.h) compares them with the rules in deploy/. Lines are flushed one
// by one, as the process may be killed. Thread-safe: KubeClientOptions::on_request may run on
// several threads at once.
#include <fstream>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "kube/kube_client.h"

namespace modelcache::kube {

class RequestLog {
 public:
  // INVALID_ARGUMENT naming `key` (the config key, "kubernetes.requestLog") and the path.
  absl::Status Open(const std::string& path, const std::string& key = "kubernetes.requestLog");
  void Write(const RequestRecord& record);

 private:
  std::mutex mutex_;
  std::ofstream file_;  // guarded by mutex_
};

// Points options.on_request at a log of `path` (opened now, shared by every copy of the hook);
// nothing when `path` is empty. Errors as Open.
absl::Status LogRequestsTo(const std::string& path, KubeClientOptions& options,
                           const std::string& key = "kubernetes.requestLog");

}  // namespace modelcache::kube
