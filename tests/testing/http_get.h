#pragma once
// A blocking HTTP GET for tests (metrics, health probes).
#include <string>

namespace modelcache::testing {

struct HttpResponse {
  long status = 0;  // 0 when no answer came (connection refused, timeout)
  std::string body;
};

HttpResponse HttpGet(const std::string& url);

}  // namespace modelcache::testing
