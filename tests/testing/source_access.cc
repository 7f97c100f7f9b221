#include "tests/testing/source_access.h"

#include <gtest/gtest.h>

namespace modelcache::testing {

std::vector<std::string> LoopbackOrigins() { return {"127.0.0.1/32"}; }

NetworkPolicy AllowLoopback() {
  NetworkPolicy policy;
  for (const std::string& text : LoopbackOrigins()) {
    absl::StatusOr<IpRange> range = ParseIpRange(text);
    EXPECT_TRUE(range.ok()) << range.status();
    if (range.ok()) policy.allow.push_back(*std::move(range));
  }
  return policy;
}

SourceOptions LoopbackSourceOptions(std::vector<std::filesystem::path> file_roots) {
  SourceOptions options;
  options.network = AllowLoopback();
  options.file_roots = std::move(file_roots);
  return options;
}

}  // namespace modelcache::testing
