#include "kube/request_log.h"

#include <memory>

#include <nlohmann/json.hpp>

#include "spdlog/fmt/fmt.h"

namespace modelcache::kube {

absl::Status RequestLog::Open(const std::string& path, const std::string& key) {
  std::lock_guard lock(mutex_);
  file_.open(path, std::ios::app);
  if (!file_) return absl::InvalidArgumentError(fmt::format("{}: cannot open \"{}\"", key, path));
  return absl::OkStatus();
}

void RequestLog::Write(const RequestRecord& record) {
  nlohmann::json line = {{"method", record.method},           {"path", record.path},
                         {"query", record.query},             {"verb", record.verb},
                         {"apiGroup", record.api_group},      {"resource", record.resource},
                         {"subresource", record.subresource}, {"namespace", record.namespace_name},
                         {"name", record.name},               {"status", record.http_status}};
  std::lock_guard lock(mutex_);
  file_ << line.dump() << '\n';
  file_.flush();
}

absl::Status LogRequestsTo(const std::string& path, KubeClientOptions& options, const std::string& key) {
  if (path.empty()) return absl::OkStatus();
  auto log = std::make_shared<RequestLog>();
  absl::Status opened = log->Open(path, key);
  if (!opened.ok()) return opened;
  options.on_request = [log](const RequestRecord& record) { log->Write(record); };
  return absl::OkStatus();
}

}  // namespace modelcache::kube
